//! skotch's driver for `scripts/bench`, the side-by-side benchmark against
//! the Java client, librdkafka and franz-go. Produces N records of S bytes,
//! consumes N records from the beginning of every partition of a topic, or
//! measures end-to-end latency (below), and prints one JSON line:
//! `{"client":"skotch","op":"produce","records":N,"bytes":...,"seconds":...}`.
//!
//! ```text
//! cargo build --release --example bench_client
//! target/release/examples/bench_client produce --bootstrap 127.0.0.1:9092 --topic T \
//!     --records 1000000 --record-size 100 [--linger-ms 5] [--batch-size 1048576] \
//!     [--buffer-memory 16777216] [--acks all|1|0] [--idempotence true|false|default] \
//!     [--compression none|gzip|snappy|lz4|zstd]
//! target/release/examples/bench_client consume --bootstrap 127.0.0.1:9092 --topic T --records 1000000
//! target/release/examples/bench_client latency --bootstrap 127.0.0.1:9092 --topic T \
//!     [--rate 10000] [--seconds 20] [--warmup-seconds 2] [--record-size 100] [--linger-ms L]
//! target/release/examples/bench_client create-topic --bootstrap 127.0.0.1:9092 --topic T --partitions 6
//! target/release/examples/bench_client delete-topic --bootstrap 127.0.0.1:9092 --topic T
//! target/release/examples/bench_client count --bootstrap 127.0.0.1:9092 --topic T
//! ```
//!
//! Options left out keep skotch's defaults (`ProducerConfig::default()`).
//! The timer starts before `Client::connect` and stops once the last record
//! is acknowledged (produce: after `flush` and every delivery result) or
//! read (consume), like the other drivers. Records are unkeyed; the payload
//! is built once and every record gets a `Bytes` clone of it. Logs go to
//! stderr as `SKOTCH_LOG` says (e.g. `SKOTCH_LOG=skotch_client=debug`).
//!
//! `latency` (the same in every driver): a consumer (its own `Client`,
//! default `ConsumerConfig`: fetch.min.bytes 1, fetch.max.wait 500 ms)
//! assigns every partition of a fresh topic at the earliest offset and
//! polls once; then a producer (its own `Client`, default
//! `ProducerConfig`: linger 5 ms, idempotent) sends `--rate` records/s,
//! paced to a schedule (record i is due at start + i/rate; the sender sleeps
//! until the next one is due and sends whatever is due), for
//! `--warmup-seconds` then `--seconds`. Each record's timestamp
//! (CreateTime) is the wall clock in ms just before `send`. The consumer
//! takes the wall clock (µs) whenever `poll` returns and counts, for every
//! record of the measured part (value starting with `M`; warm-up records
//! start with `W`), that time minus the record's timestamp. The JSON line
//! adds `p50_ms`, `p99_ms`, `p999_ms`, `max_ms`, `mean_ms`; its `records`
//! are the measured records and `seconds` the time their sending took.
//! Timestamps have ms resolution, so each latency is 0-1 ms (0.5 ms on
//! average) above the true one, for every driver alike.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::FutureExt;
use skotch::client::{
    Acks, Admin, Client, ClientConfig, Compression, Consumer, ConsumerConfig, NewTopic, Offset,
    Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

#[derive(Parser)]
#[command(about = "skotch's driver for scripts/bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce --records unkeyed records of --record-size bytes.
    Produce(ProduceArgs),
    /// Read --records records from the beginning of every partition.
    Consume(ConsumeArgs),
    /// End-to-end latency: paced producer and consumer in one process.
    Latency(LatencyArgs),
    /// Create a topic (replication factor 1).
    CreateTopic {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 6)]
        partitions: i32,
    },
    /// Delete a topic.
    DeleteTopic {
        #[command(flatten)]
        common: Common,
    },
    /// Print the sum of the topic's partitions' end offsets (its record
    /// count, for a fresh topic without transactions).
    Count {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long)]
    topic: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum AcksArg {
    All,
    #[value(name = "1")]
    One,
    #[value(name = "0")]
    Zero,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Idempotence {
    True,
    False,
    Default,
}

#[derive(Args)]
struct ProduceArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// linger.ms (default: skotch's).
    #[arg(long)]
    linger_ms: Option<u64>,
    /// batch.size in bytes (default: skotch's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// buffer.memory in bytes (default: skotch's).
    #[arg(long)]
    buffer_memory: Option<usize>,
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    #[arg(long, value_enum, default_value = "default")]
    idempotence: Idempotence,
    /// compression.type: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
}

#[derive(Args)]
struct ConsumeArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
}

#[derive(Args)]
struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    /// Records per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds sent at the same rate before, not measured.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// The producer's linger.ms (default: skotch's, 5 ms); for looking
    /// into the figures by hand, scripts/bench leaves it out.
    #[arg(long)]
    linger_ms: Option<u64>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SKOTCH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .try_init();
    }
}

async fn connect(bootstrap: &str) -> Result<Client, BoxError> {
    let config = ClientConfig::new(bootstrap)?.connect_timeout(Duration::from_secs(20));
    Ok(Client::connect(config).await?)
}

fn emit(op: &str, records: u64, bytes: u64, elapsed: Duration, extra: &str) {
    println!(
        "{{\"client\":\"skotch\",\"op\":\"{op}\",\"records\":{records},\"bytes\":{bytes},\"seconds\":{:.6}{extra}}}",
        elapsed.as_secs_f64()
    );
}

async fn produce(a: ProduceArgs) -> Result<(), BoxError> {
    let compression: Compression = a
        .compression
        .parse()
        .map_err(|e| format!("--compression {}: {e}", a.compression))?;
    let defaults = ProducerConfig::default();
    let config = ProducerConfig {
        acks: match a.acks {
            AcksArg::All => Acks::All,
            AcksArg::One => Acks::Leader,
            AcksArg::Zero => Acks::None,
        },
        linger: a.linger_ms.map_or(defaults.linger, Duration::from_millis),
        batch_size: a.batch_size.unwrap_or(defaults.batch_size),
        buffer_memory: a.buffer_memory.unwrap_or(defaults.buffer_memory),
        compression,
        enable_idempotence: match a.idempotence {
            Idempotence::True => Some(true),
            Idempotence::False => Some(false),
            Idempotence::Default => None,
        },
        ..ProducerConfig::default()
    };
    // Deliveries still pending, oldest first. Those already settled are
    // taken off the front after every send without waiting, so the queue
    // holds about what is in flight. As a backstop at most `window` are
    // kept (then the oldest is awaited); the window is larger than what
    // buffer.memory lets queue, so buffer.memory (send waiting for room),
    // not this window, throttles.
    let per_record = a.record_size + 21;
    let window = (config.buffer_memory / per_record.max(1)).saturating_mul(2) + 1024;
    let payload = Bytes::from(
        (0..a.record_size)
            .map(|i| b'A' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let topic = a.common.topic;

    let start = Instant::now();
    let client = connect(&a.common.bootstrap).await?;
    let producer = Producer::new(client.clone(), config)?;
    let idempotent = producer.is_idempotent();
    let mut pending = VecDeque::with_capacity(window.min(1 << 20));
    let mut failed = 0u64;
    let mut first_error = None;
    for _ in 0..a.records {
        let record = ProducerRecord::new(topic.clone(), payload.clone());
        pending.push_back(producer.send(record).await?);
        loop {
            let full = pending.len() >= window;
            let Some(front) = pending.front_mut() else {
                break;
            };
            let settled = if full {
                Some(front.await)
            } else {
                front.now_or_never()
            };
            let Some(result) = settled else { break };
            pending.pop_front();
            if let Err(e) = result {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    producer.flush().await?;
    for d in pending {
        if let Err(e) = d.await {
            failed += 1;
            first_error.get_or_insert(e);
        }
    }
    let elapsed = start.elapsed();
    if let Some(e) = first_error {
        return Err(format!("{failed} records failed, first: {e}").into());
    }
    emit(
        "produce",
        a.records,
        a.records * a.record_size as u64,
        elapsed,
        &format!(",\"idempotent\":{idempotent}"),
    );
    producer.close().await?;
    client.close();
    Ok(())
}

async fn consume(a: ConsumeArgs) -> Result<(), BoxError> {
    let start = Instant::now();
    let client = connect(&a.common.bootstrap).await?;
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(&a.common.topic, Offset::Earliest)
        .await?;
    let (mut got, mut bytes) = (0u64, 0u64);
    let deadline = start + Duration::from_secs(600);
    while got < a.records {
        if Instant::now() > deadline {
            return Err(format!("timed out after {got} records").into());
        }
        let poll = consumer.poll().await?;
        for r in &poll.records {
            got += 1;
            bytes += (r.key.as_ref().map_or(0, |k| k.len())
                + r.value.as_ref().map_or(0, |v| v.len())) as u64;
        }
        if consumer.at_end() && got < a.records {
            return Err(format!(
                "the topic ends after {got} records, {} asked for",
                a.records
            )
            .into());
        }
    }
    emit("consume", got, bytes, start.elapsed(), "");
    client.close();
    Ok(())
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Nearest-rank percentile of sorted `v` (µs), in ms.
fn percentile_ms(v: &[i64], p: f64) -> f64 {
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] as f64 / 1000.0
}

/// The value of a latency record: `W` (warm-up) or `M` (measured), then
/// filler up to `size` bytes.
fn marked_payload(mark: u8, size: usize) -> Bytes {
    let mut v: Vec<u8> = (0..size.max(1)).map(|i| b'A' + (i % 26) as u8).collect();
    v[0] = mark;
    Bytes::from(v)
}

async fn latency(a: LatencyArgs) -> Result<(), BoxError> {
    if a.rate == 0 || a.seconds == 0 {
        return Err("--rate and --seconds must be positive".into());
    }
    let warm = a.rate * a.warmup_seconds;
    let measured = a.rate * a.seconds;
    let total = warm + measured;
    let topic = a.common.topic.clone();

    // The consumer first, positioned and fetching before anything is sent.
    let consumer_client = connect(&a.common.bootstrap).await?;
    let mut consumer = Consumer::new(consumer_client.clone(), ConsumerConfig::default());
    consumer.assign_topic(&topic, Offset::Earliest).await?;
    let first = consumer.poll_for(Duration::from_millis(200)).await?;
    if !first.records.is_empty() {
        return Err(format!("topic {topic} is not empty").into());
    }

    let producer_client = connect(&a.common.bootstrap).await?;
    let mut config = ProducerConfig::default();
    if let Some(ms) = a.linger_ms {
        config.linger = Duration::from_millis(ms);
    }
    let producer = Producer::new(producer_client.clone(), config)?;
    producer_client.topic(&topic).await?;
    let warm_payload = marked_payload(b'W', a.record_size);
    let payload = marked_payload(b'M', a.record_size);
    let rate = a.rate;
    let producer_task = tokio::spawn(async move {
        let mut pending = VecDeque::new();
        let mut failed = 0u64;
        let mut first_error = None;
        let (mut measured_start, mut measured_end) = (None, None);
        let start = Instant::now();
        let mut i = 0u64;
        while i < total {
            let due = (start.elapsed().as_nanos() * u128::from(rate) / 1_000_000_000) as u64 + 1;
            while i < due.min(total) {
                let value = if i < warm {
                    warm_payload.clone()
                } else {
                    payload.clone()
                };
                let mut record = ProducerRecord::new(topic.clone(), value);
                let now = Instant::now();
                record.timestamp = Some(wall_us() / 1000);
                pending.push_back(producer.send(record).await?);
                if i == warm {
                    measured_start = Some(now);
                }
                measured_end = Some(now);
                i += 1;
                while let Some(result) = pending.front_mut().and_then(|f| f.now_or_never()) {
                    pending.pop_front();
                    if let Err(e) = result {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            if i < total {
                let next = start + Duration::from_nanos(i * 1_000_000_000 / rate);
                tokio::time::sleep_until(next.into()).await;
            }
        }
        producer.flush().await?;
        for d in pending {
            if let Err(e) = d.await {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
        producer.close().await?;
        if let Some(e) = first_error {
            return Err::<Duration, BoxError>(
                format!("{failed} records failed, first: {e}").into(),
            );
        }
        let send_time = match (measured_start, measured_end) {
            (Some(s), Some(e)) => e - s,
            _ => Duration::ZERO,
        };
        Ok(send_time)
    });

    let mut producer_task = Some(producer_task);
    let mut send_time = None;
    let mut latencies: Vec<i64> = Vec::with_capacity(measured as usize);
    let (mut got, mut bytes) = (0u64, 0u64);
    let mut deadline = None;
    while got < total {
        let poll = consumer.poll().await?;
        let now = wall_us();
        for r in &poll.records {
            got += 1;
            let value = r.value.as_deref().unwrap_or_default();
            if value.first() == Some(&b'M') {
                latencies.push(now - r.timestamp * 1000);
                bytes += value.len() as u64;
            }
        }
        if producer_task.as_ref().is_some_and(|t| t.is_finished()) {
            send_time = Some(producer_task.take().unwrap().await??);
            deadline = Some(Instant::now() + Duration::from_secs(30));
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(
                format!("{got} of {total} records arrived within 30 s of the last send").into(),
            );
        }
    }
    if let Some(t) = producer_task {
        send_time = Some(t.await??);
    }
    consumer.close();
    consumer_client.close();
    producer_client.close();
    if latencies.len() as u64 != measured {
        return Err(format!("{} measured records, {measured} sent", latencies.len()).into());
    }
    latencies.sort_unstable();
    let mean = latencies.iter().sum::<i64>() as f64 / latencies.len() as f64 / 1000.0;
    emit(
        "latency",
        measured,
        bytes,
        send_time.unwrap_or_default(),
        &format!(
            ",\"rate\":{rate},\"warmup_records\":{warm},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3},\"mean_ms\":{mean:.3}",
            percentile_ms(&latencies, 0.50),
            percentile_ms(&latencies, 0.99),
            percentile_ms(&latencies, 0.999),
            percentile_ms(&latencies, 1.0),
        ),
    );
    Ok(())
}

async fn create_topic(common: Common, partitions: i32) -> Result<(), BoxError> {
    let client = connect(&common.bootstrap).await?;
    Admin::new(client.clone())
        .create_topic(NewTopic::new(&common.topic, partitions, 1), false)
        .await?;
    client.close();
    Ok(())
}

async fn delete_topic(common: Common) -> Result<(), BoxError> {
    let client = connect(&common.bootstrap).await?;
    let results = Admin::new(client.clone())
        .delete_topics(std::slice::from_ref(&common.topic))
        .await?;
    client.close();
    for r in results {
        r?;
    }
    Ok(())
}

async fn count(common: Common) -> Result<(), BoxError> {
    let client = connect(&common.bootstrap).await?;
    let info = client.topic(&common.topic).await?;
    let partitions: Vec<TopicPartition> = info
        .partitions
        .iter()
        .map(|p| TopicPartition::new(&common.topic, p.partition))
        .collect();
    let ends = Admin::new(client.clone()).end_offsets(&partitions).await?;
    client.close();
    println!("{}", ends.values().sum::<i64>());
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Produce(a) => produce(a).await,
        Command::Consume(a) => consume(a).await,
        Command::Latency(a) => latency(a).await,
        Command::CreateTopic { common, partitions } => create_topic(common, partitions).await,
        Command::DeleteTopic { common } => delete_topic(common).await,
        Command::Count { common } => count(common).await,
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_client: {e}");
            ExitCode::FAILURE
        }
    }
}
