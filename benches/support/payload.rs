//! The benchmark payload shared by `record_batch` and `memcpy`: about 1 MB
//! of JSON application-log records, built the same way every run (a fixed
//! seed, no `rand`), so figures from different runs and machines compare.
//!
//! The records look like what many Kafka topics carry: a key (a user id),
//! a JSON value of 200-1000 bytes whose field names, services, hosts and
//! messages repeat (so it compresses as real data does) beside fields that
//! do not (trace ids, durations, user ids), and two headers (`trace-id`,
//! `content-type`). About one line in twenty is an error with a stack
//! trace, the longest values.
//!
//! The bytes a throughput is counted in are the *record bytes*: the
//! uncompressed v2 encoding of the records (length, attributes, deltas,
//! key, value and headers of each), which is what a codec compresses and
//! what decompression gives back. Batch headers (61 bytes per batch) and
//! compressed sizes are not counted, so every codec is measured against
//! the same amount of work.
//!
//! This file lives in `benches/support/` so cargo does not take it for a
//! benchmark of its own; the benchmarks include it with `#[path]`.

use bytes::Bytes;
use skotch::protocol::record::{
    decode_batches, Compression, Header, Record, RecordBatchBuilder, DEFAULT_BATCH_SIZE,
};

/// The producer batch sizes measured (`batch.size`, bytes): Java's default
/// 16384 and a large 1 MiB, with the names used in benchmark ids.
pub const BATCH_SIZES: [(usize, &str); 2] = [(DEFAULT_BATCH_SIZE, "16KiB"), (1 << 20, "1MiB")];

/// Stop adding records once their keys, values and headers reach this
/// many bytes; with the record framing the whole payload stays just under
/// 1 MiB, so it fits one batch of the larger size.
const TARGET_BYTES: usize = 960_000;

/// First timestamp (ms since the Unix epoch): 2023-11-14T22:13:20Z.
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

const SERVICES: [&str; 6] = [
    "checkout",
    "payments",
    "inventory",
    "search",
    "auth",
    "shipping",
];

const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/payments",
    "/api/v1/items",
    "/api/v2/search",
    "/oauth/token",
    "/api/v1/shipments",
];

const INFO_MESSAGES: [&str; 5] = [
    "request completed",
    "cache hit for product listing",
    "order state changed from PENDING to CONFIRMED",
    "token refreshed for session",
    "published event to downstream topic",
];

const WARN_MESSAGES: [&str; 3] = [
    "slow response from upstream dependency, retrying",
    "connection pool nearly exhausted",
    "deprecated API version used by client",
];

const ERROR_MESSAGES: [&str; 3] = [
    "unhandled exception while processing request",
    "database transaction rolled back after timeout",
    "payment provider returned an invalid response",
];

/// Java-style stack frames an error line picks from.
const FRAMES: [&str; 12] = [
    "at com.example.shop.orders.OrderService.place(OrderService.java:214)",
    "at com.example.shop.orders.OrderController.create(OrderController.java:88)",
    "at com.example.shop.payments.PaymentClient.charge(PaymentClient.java:131)",
    "at com.example.shop.db.TransactionTemplate.execute(TransactionTemplate.java:57)",
    "at org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "at org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
    "at io.netty.channel.AbstractChannelHandlerContext.invokeChannelRead(AbstractChannelHandlerContext.java:379)",
    "at java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1136)",
    "at java.base/java.lang.Thread.run(Thread.java:840)",
    "at com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
    "at com.example.shop.inventory.StockRepository.reserve(StockRepository.java:73)",
    "at com.example.shop.common.RetryPolicy.call(RetryPolicy.java:45)",
];

/// splitmix64: a tiny generator with a fixed output for a fixed seed,
/// unlike `rand`'s `StdRng`, whose algorithm may change between versions.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// The payload's records, the same on every call.
pub fn records() -> Vec<Record> {
    let mut rng = SplitMix64(0x5EED_0F5C_07C4);
    let mut out = Vec::new();
    let mut total = 0;
    let mut timestamp = BASE_TIMESTAMP;
    while total < TARGET_BYTES {
        let record = log_record(&mut rng, timestamp);
        total += record.key.as_ref().map_or(0, Bytes::len)
            + record.value.as_ref().map_or(0, Bytes::len)
            + record
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
                .sum::<usize>();
        out.push(record);
        timestamp += rng.below(5) as i64;
    }
    out
}

/// One log line as a record.
fn log_record(rng: &mut SplitMix64, timestamp: i64) -> Record {
    let trace_id = format!("{:016x}{:016x}", rng.next(), rng.next());
    let user = format!("u-{}", rng.below(50_000));
    let service = rng.pick(&SERVICES);
    let (level, message) = match rng.below(20) {
        0 => ("ERROR", rng.pick(&ERROR_MESSAGES)),
        1..=2 => ("WARN", rng.pick(&WARN_MESSAGES)),
        3..=5 => ("DEBUG", rng.pick(&INFO_MESSAGES)),
        _ => ("INFO", rng.pick(&INFO_MESSAGES)),
    };
    let status = match level {
        "ERROR" => 500,
        "WARN" => 429,
        _ => 200,
    };
    let ms = timestamp.rem_euclid(1000);
    let secs = timestamp.div_euclid(1000).rem_euclid(86_400);
    let mut value = format!(
        concat!(
            r#"{{"ts":"2023-11-14T{:02}:{:02}:{:02}.{:03}Z","level":"{}","service":"{}","#,
            r#""host":"{}-{:02}.prod.eu-west-1.internal","trace_id":"{}","span_id":"{:016x}","#,
            r#""msg":"{}","http":{{"method":"{}","path":"{}/{}","status":{},"#,
            r#""duration_ms":{},"bytes_out":{}}},"user_id":"{}","client":"{}""#
        ),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms,
        level,
        service,
        service,
        rng.below(12) + 1,
        trace_id,
        rng.next(),
        message,
        if rng.below(3) == 0 { "POST" } else { "GET" },
        rng.pick(&PATHS),
        rng.below(1_000_000),
        status,
        rng.below(2_000),
        rng.below(65_536),
        user,
        rng.pick(&[
            "shop-web/4.12.0",
            "shop-ios/3.8.1",
            "shop-android/3.8.0",
            "partner-api/1.2"
        ]),
    );
    if level == "ERROR" {
        value.push_str(r#","stack":["java.lang.IllegalStateException: "#);
        value.push_str(message);
        value.push('"');
        for _ in 0..4 + rng.below(5) {
            value.push_str(",\"");
            value.push_str(rng.pick(&FRAMES));
            value.push('"');
        }
        value.push(']');
    }
    value.push('}');
    Record {
        offset: 0,
        timestamp,
        key: Some(Bytes::from(user)),
        value: Some(Bytes::from(value)),
        headers: vec![
            Header::new("trace-id", trace_id),
            Header::new("content-type", "application/json"),
        ],
    }
}

/// Encode `records` as a producer does: fill a batch of up to
/// `batch_size` bytes (uncompressed), build it with `codec` at its default
/// level, start the next one with the record that did not fit.
pub fn encode(
    records: impl IntoIterator<Item = Record>,
    batch_size: usize,
    codec: Compression,
) -> Vec<Bytes> {
    let new_builder = || RecordBatchBuilder::new(batch_size).compression(codec, None);
    let mut batches = Vec::new();
    let mut builder = new_builder();
    for record in records {
        if let Err(record) = builder.try_push(record) {
            batches.push(builder.build().expect("batch encodes"));
            builder = new_builder();
            builder
                .try_push(record)
                .expect("a record fits an empty batch");
        }
    }
    if !builder.is_empty() {
        batches.push(builder.build().expect("batch encodes"));
    }
    batches
}

/// The record bytes of `batches` (uncompressed, headers excluded): the
/// figure throughputs are counted in.
pub fn record_bytes(batches: &[Bytes]) -> u64 {
    batches
        .iter()
        .flat_map(|b| decode_batches(b.clone(), true))
        .map(|batch| batch.expect("batch decodes").record_bytes().len() as u64)
        .sum()
}
