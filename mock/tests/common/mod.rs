//! Talking to a mock broker by hand with skotch-protocol: one request at
//! a time over a TCP connection or an in-memory one
//! (`MockCluster::connect`, deterministic under a paused clock).

#![allow(dead_code)]

pub mod clients;

use bytes::{Bytes, BytesMut};
use skotch_mock::MockCluster;
use skotch_protocol::frame::{begin_frame, FrameDecoder};
use skotch_protocol::messages::{
    request_header_version, response_header_version, Message, Request, RequestHeader,
    ResponseHeader,
};
use skotch_protocol::record::{encode_batch, BatchHeader, Record};
use skotch_protocol::Reader;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;

/// A raw connection to one broker.
pub struct RawConn<S = TcpStream> {
    pub stream: S,
    buf: BytesMut,
    next_correlation_id: i32,
}

impl RawConn {
    /// A TCP connection.
    pub async fn connect(addr: &str) -> RawConn {
        RawConn::over(TcpStream::connect(addr).await.expect("connect"))
    }
}

impl RawConn<DuplexStream> {
    /// An in-memory connection to `broker`.
    pub fn new(cluster: &MockCluster, broker: i32) -> RawConn<DuplexStream> {
        RawConn::over(cluster.connect(broker).expect("connect"))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawConn<S> {
    /// A connection over `stream`.
    pub fn over(stream: S) -> RawConn<S> {
        RawConn {
            stream,
            buf: BytesMut::new(),
            next_correlation_id: 1,
        }
    }

    /// Send a request without waiting for an answer; its correlation id.
    pub async fn send<R: Request>(&mut self, req: &R, version: i16) -> i32 {
        let cid = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut out = BytesMut::new();
        let frame = begin_frame(&mut out);
        RequestHeader {
            request_api_key: R::API_KEY.into(),
            request_api_version: version,
            correlation_id: cid,
            client_id: Some("raw-test".into()),
        }
        .encode(&mut out, request_header_version(R::API_KEY, version))
        .unwrap();
        req.encode(&mut out, version).unwrap();
        frame.finish(&mut out).unwrap();
        self.stream.write_all(&out).await.expect("write");
        cid
    }

    /// The next frame's payload; `None` when the broker closed the
    /// connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut dec = FrameDecoder::default();
        loop {
            if let Some(f) = dec.decode(&mut self.buf).unwrap() {
                return Some(f);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Read the answer to a request of type `R` sent at `version`.
    pub async fn receive<R: Request>(&mut self, cid: i32, version: i16) -> R::Response {
        let frame = self.read_frame().await.expect("an answer");
        let mut r = Reader::new(frame);
        let header =
            ResponseHeader::decode(&mut r, response_header_version(R::API_KEY, version)).unwrap();
        assert_eq!(header.correlation_id, cid);
        R::Response::decode(&mut r, version).unwrap()
    }

    /// Send a request and read its answer.
    pub async fn call<R: Request>(&mut self, req: &R, version: i16) -> R::Response {
        let cid = self.send(req, version).await;
        self.receive::<R>(cid, version).await
    }

    /// Whether the broker closed the connection (reads until EOF, ignoring
    /// any frame).
    pub async fn closed(&mut self) -> bool {
        let mut scratch = [0u8; 1024];
        loop {
            match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.stream.read(&mut scratch),
            )
            .await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// A v2 batch of `n` records with values `v{i}`, timestamps from `ts`,
/// with the given producer id, epoch and base sequence.
pub fn batch(n: usize, ts: i64, producer_id: i64, epoch: i16, base_sequence: i32) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            offset: i as i64,
            timestamp: ts + i as i64,
            key: None,
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Vec::new(),
        })
        .collect();
    let header = BatchHeader {
        last_offset_delta: n as i32 - 1,
        base_timestamp: ts,
        max_timestamp: ts + n as i64 - 1,
        producer_id,
        producer_epoch: epoch,
        base_sequence,
        ..Default::default()
    };
    let mut out = BytesMut::new();
    encode_batch(&header, &records, &mut out).unwrap();
    out.freeze()
}

/// An ApiVersions request with a valid client software name and version.
pub fn api_versions() -> skotch_protocol::messages::ApiVersionsRequest {
    skotch_protocol::messages::ApiVersionsRequest {
        client_software_name: "raw-test".into(),
        client_software_version: "1.0".into(),
    }
}

/// Produce v11 (by topic name, acks=all) of one batch to one partition.
pub fn produce_request(
    topic: &str,
    partition: i32,
    records: Bytes,
) -> skotch_protocol::messages::ProduceRequest {
    use skotch_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    skotch_protocol::messages::ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
            }],
            ..Default::default()
        }],
    }
}
