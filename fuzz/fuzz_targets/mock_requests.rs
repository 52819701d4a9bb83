//! Arbitrary request sequences to a mock broker (skotch-mock), over an
//! in-memory connection under tokio's paused clock: the broker never
//! panics, answers or closes the connection, and memory stays bounded
//! (a fresh cluster per input, at most 64 requests of at most 64 KiB).
//!
//! Input: a sequence of `[api selector][version selector][len: u16]
//! [body]`. The selectors pick one of the APIs the mock advertises and a
//! version in its range (out of range now and then), so most requests get
//! past the header and exercise the handlers; the body is raw.
#![no_main]

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use skotch_mock::MockCluster;
use skotch_protocol::messages::{request_header_version, Message, RequestHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests per input.
const MAX_REQUESTS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(run(data));
});

async fn run(data: &[u8]) {
    let cluster = MockCluster::start(2).await.expect("cluster");
    cluster.create_topic("t", 2, 2).expect("topic");
    let apis = cluster.api_versions();
    let mut out = BytesMut::new();
    let mut rest = data;
    let mut correlation_id = 0;
    while rest.len() >= 4 && correlation_id < MAX_REQUESTS as i32 {
        let (api, min, max) = apis[usize::from(rest[0]) % apis.len()];
        let span = i32::from(max) - i32::from(min) + 3;
        let version = (i32::from(min) - 1 + i32::from(rest[1]) % span) as i16;
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        rest = &rest[4..];
        let body = &rest[..len.min(rest.len())];
        rest = &rest[body.len()..];
        let mut frame = BytesMut::new();
        RequestHeader {
            request_api_key: api.into(),
            request_api_version: version,
            correlation_id,
            client_id: Some("fuzz".into()),
        }
        .encode(
            &mut frame,
            if (min..=max).contains(&version) {
                request_header_version(api, version)
            } else {
                1
            },
        )
        .expect("header");
        frame.put_slice(body);
        out.put_i32(frame.len() as i32);
        out.put_slice(&frame);
        correlation_id += 1;
    }
    let broker = i32::from(data.first().copied().unwrap_or(0) & 1);
    let mut conn = cluster.connect(broker).expect("connect");
    // Write everything, then read until the broker closes or goes quiet
    // (virtual time: long polls and rebalance waits pass at once).
    let (mut rd, mut wr) = tokio::io::split(&mut conn);
    let writer = async move {
        let _ = wr.write_all(&out).await;
        let _ = wr.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(600), rd.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(_)) => {}
            }
        }
    };
    tokio::join!(writer, reader);
    cluster.shutdown().await;
}
