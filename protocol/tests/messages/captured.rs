//! Responses captured from a real broker (Apache Kafka 4.3.1, the version
//! scripts/kafka runs, single KRaft node on 127.0.0.1:9092), decoded with
//! the generated code. Each file is a response frame without its 4-byte
//! size prefix: the response header, then the body.
//!
//! Captured with a raw socket: ApiVersions v4 (client_software_name
//! "skotch", version "0.1.0") and Metadata v12 with a null topic list.

use bytes::Bytes;
use skotch_protocol::messages::{
    response_header_version, ApiKey, ApiVersionsResponse, Message, MetadataResponse, ResponseHeader,
};
use skotch_protocol::Reader;

fn split<M: Message>(frame: &'static [u8], key: ApiKey, version: i16) -> (ResponseHeader, M) {
    let mut r = Reader::new(Bytes::from_static(frame));
    let header = ResponseHeader::decode(&mut r, response_header_version(key, version)).unwrap();
    let body = M::decode(&mut r, version).unwrap();
    assert!(r.is_empty(), "{} bytes left", r.remaining());
    (header, body)
}

#[test]
fn api_versions_v4_from_kafka_4_3_1() {
    let frame = include_bytes!("captured/api_versions_v4_response_kafka_4.3.1.bin");
    let (header, body): (_, ApiVersionsResponse) = split(frame, ApiKey::ApiVersions, 4);
    assert_eq!(header.correlation_id, 1);
    assert_eq!(body.error_code, 0);
    let range = |key: ApiKey| {
        body.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    let (min, max) = range(ApiKey::Fetch).unwrap();
    assert!(min <= 4 && max >= 17, "Fetch {min}-{max}");
    assert!(range(ApiKey::ApiVersions).is_some_and(|(_, max)| max >= 4));
    // Every key the broker lists is one the definitions know.
    for k in &body.api_keys {
        assert!(
            ApiKey::from_i16(k.api_key).is_some(),
            "unknown key {}",
            k.api_key
        );
    }
    // Tagged fields in the body: the broker's supported and finalized
    // features (KIP-584).
    assert!(!body.supported_features.is_empty());
    assert!(body.finalized_features_epoch >= 0);
    // Re-encoding gives the broker's bytes back.
    let mut buf = bytes::BytesMut::new();
    body.encode(&mut buf, 4).unwrap();
    assert_eq!(&buf[..], &frame[4..]);
}

#[test]
fn metadata_v12_from_kafka_4_3_1() {
    let frame = include_bytes!("captured/metadata_v12_response_kafka_4.3.1.bin");
    let (header, body): (_, MetadataResponse) = split(frame, ApiKey::Metadata, 12);
    assert_eq!(header.correlation_id, 2);
    assert_eq!(body.brokers.len(), 1);
    let b = &body.brokers[0];
    assert_eq!((b.host.as_str(), b.port), ("127.0.0.1", 9092));
    assert!(body.cluster_id.is_some());
    assert_eq!(body.controller_id, b.node_id);
    for t in &body.topics {
        assert_eq!(t.error_code, 0);
        assert!(t.name.is_some());
        assert_ne!(t.topic_id, skotch_protocol::Uuid::ZERO);
    }
    let mut buf = bytes::BytesMut::new();
    body.encode(&mut buf, 12).unwrap();
    assert_eq!(&buf[..], &frame[5..]);
}
