//! Random request bodies for every implemented API at every advertised
//! version, and random frames: the mock never panics, and keeps serving.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use common::RawConn;
use skotch_mock::MockCluster;
use skotch_protocol::frame::begin_frame;
use skotch_protocol::messages::{Message, RequestHeader};
use tokio::io::AsyncWriteExt;

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_never_panic() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counter = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let cluster = MockCluster::start(1).await.unwrap();
    cluster.create_topic("t", 2, 1).unwrap();
    let addr = cluster.broker_addr(0).unwrap();
    let mut conn = RawConn::connect(&addr).await;
    let versions = conn.call(&common::api_versions(), 3).await;
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut sent = 0;
    for api in &versions.api_keys {
        for version in api.min_version..=api.max_version {
            for round in 0..8 {
                let mut out = BytesMut::new();
                let frame = begin_frame(&mut out);
                RequestHeader {
                    request_api_key: api.api_key,
                    request_api_version: version,
                    correlation_id: round,
                    client_id: Some("noise".into()),
                }
                .encode(
                    &mut out,
                    skotch_protocol::messages::request_header_version(
                        skotch_protocol::messages::ApiKey::from_i16(api.api_key).unwrap(),
                        version,
                    ),
                )
                .unwrap();
                let len = (noise.next() % 96) as usize;
                out.extend_from_slice(&noise.bytes(len));
                frame.finish(&mut out).unwrap();
                let mut c = RawConn::connect(&addr).await;
                c.stream.write_all(&out).await.unwrap();
                sent += 1;
            }
        }
    }
    // Valid requests with a few bytes flipped: deeper into the handlers.
    let valid = valid_requests();
    for round in 0..400 {
        let (key, version, body) = &valid[round % valid.len()];
        let mut body = body.clone();
        for _ in 0..1 + noise.next() % 3 {
            let at = (noise.next() as usize) % body.len();
            body[at] ^= 1 << (noise.next() % 8);
        }
        let mut out = BytesMut::new();
        let frame = begin_frame(&mut out);
        RequestHeader {
            request_api_key: *key,
            request_api_version: *version,
            correlation_id: round as i32,
            client_id: None,
        }
        .encode(
            &mut out,
            skotch_protocol::messages::request_header_version(
                skotch_protocol::messages::ApiKey::from_i16(*key).unwrap(),
                *version,
            ),
        )
        .unwrap();
        out.extend_from_slice(&body);
        frame.finish(&mut out).unwrap();
        let mut c = RawConn::connect(&addr).await;
        c.stream.write_all(&out).await.unwrap();
    }
    // Random frames, headers included.
    for _ in 0..200 {
        let len = (noise.next() % 64) as usize;
        let mut out = (len as i32).to_be_bytes().to_vec();
        out.extend(noise.bytes(len));
        let mut c = RawConn::connect(&addr).await;
        c.stream.write_all(&out).await.unwrap();
    }
    assert!(sent > 100);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = RawConn::connect(&addr).await;
    let resp = conn.call(&common::api_versions(), 3).await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a handler panicked");
    cluster.shutdown().await;
}

/// Bodies of valid requests (api key, version, body).
fn valid_requests() -> Vec<(i16, i16, Vec<u8>)> {
    use skotch_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use skotch_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use skotch_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use skotch_protocol::messages::{
        FetchRequest, InitProducerIdRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
        Request,
    };
    fn body<R: Request>(req: &R, version: i16) -> (i16, i16, Vec<u8>) {
        let mut out = BytesMut::new();
        req.encode(&mut out, version).unwrap();
        (R::API_KEY.into(), version, out.to_vec())
    }
    let produce = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 1,
                records: Some(common::batch(3, 5, -1, -1, -1)),
            }],
            ..Default::default()
        }],
    };
    let fetch = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1000,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![FetchPartition {
                partition: 1,
                fetch_offset: 0,
                partition_max_bytes: 100,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let list = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 1,
                current_leader_epoch: 0,
                timestamp: 3,
            }],
        }],
        ..Default::default()
    };
    vec![
        body(&produce, 11),
        body(&produce, 3),
        body(&fetch, 12),
        body(&fetch, 4),
        body(&list, 7),
        body(&MetadataRequest::default(), 12),
        body(&InitProducerIdRequest::default(), 4),
    ]
}
