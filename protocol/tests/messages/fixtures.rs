//! Known bytes, worked out by hand from the protocol guide and the JSON
//! definitions, and the encode-time rules (unsupported fields, ignorable
//! fields, nulls, tagged fields).

use bytes::{Bytes, BytesMut};
use skotch_protocol::messages::{
    api_versions_response, fetch_request, metadata_request, request_header_version,
    response_header_version, ApiKey, ApiVersionsRequest, ApiVersionsResponse,
    ConsumerGroupHeartbeatResponse, FetchRequest, Message, MetadataRequest, Request, RequestHeader,
    ResponseHeader,
};
use skotch_protocol::{EncodeError, Reader};

fn encode<M: Message>(m: &M, version: i16) -> Result<Vec<u8>, EncodeError> {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version)?;
    Ok(buf.to_vec())
}

fn decode<M: Message>(bytes: &[u8], version: i16) -> M {
    let mut r = Reader::new(Bytes::copy_from_slice(bytes));
    let m = M::decode(&mut r, version).unwrap();
    assert!(r.is_empty());
    m
}

#[test]
fn request_header_v2_keeps_a_non_compact_client_id() {
    let h = RequestHeader {
        request_api_key: 18,
        request_api_version: 3,
        correlation_id: 7,
        client_id: Some("ab".into()),
    };
    let bytes = [0, 18, 0, 3, 0, 0, 0, 7, 0, 2, b'a', b'b', 0];
    assert_eq!(encode(&h, 2).unwrap(), bytes);
    assert_eq!(decode::<RequestHeader>(&bytes, 2), h);
    // v1: no tagged fields; a null client id is -1.
    let h1 = RequestHeader {
        client_id: None,
        ..h
    };
    assert_eq!(
        encode(&h1, 1).unwrap(),
        [0, 18, 0, 3, 0, 0, 0, 7, 0xff, 0xff]
    );
}

#[test]
fn response_header_versions() {
    let h = ResponseHeader { correlation_id: 9 };
    assert_eq!(encode(&h, 0).unwrap(), [0, 0, 0, 9]);
    assert_eq!(encode(&h, 1).unwrap(), [0, 0, 0, 9, 0]);
}

#[test]
fn api_versions_request_v3() {
    let req = ApiVersionsRequest {
        client_software_name: "skotch".into(),
        client_software_version: "0.1".into(),
    };
    let mut want = vec![7];
    want.extend_from_slice(b"skotch");
    want.push(4);
    want.extend_from_slice(b"0.1");
    want.push(0);
    assert_eq!(encode(&req, 3).unwrap(), want);
    // v0-2 have no body; the names are ignorable and dropped.
    assert_eq!(encode(&req, 2).unwrap(), Vec::<u8>::new());
}

#[test]
fn api_versions_response_v3_with_tagged_fields() {
    let resp = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![api_versions_response::ApiVersion {
            api_key: 18,
            min_version: 0,
            max_version: 4,
        }],
        throttle_time_ms: 0,
        finalized_features_epoch: 5,
        ..Default::default()
    };
    let bytes = encode(&resp, 3).unwrap();
    // error_code, compact array of 1, (18, 0, 4, no tags), throttle, then
    // the tagged section: one field, tag 1 (FinalizedFeaturesEpoch), 8 bytes.
    let want: &[u8] = &[
        0, 0, 2, 0, 18, 0, 0, 0, 4, 0, 0, 0, 0, 0, 1, 1, 8, 0, 0, 0, 0, 0, 0, 0, 5,
    ];
    assert_eq!(bytes, want);
    assert_eq!(decode::<ApiVersionsResponse>(want, 3), resp);
}

fn fetch_v12() -> FetchRequest {
    FetchRequest {
        cluster_id: Some("c".into()),
        ..Default::default()
    }
}

const FETCH_V12: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, // replica_id -1
    0, 0, 0, 0, // max_wait_ms
    0, 0, 0, 0, // min_bytes
    0x7f, 0xff, 0xff, 0xff, // max_bytes
    0,    // isolation_level
    0, 0, 0, 0, // session_id
    0xff, 0xff, 0xff, 0xff, // session_epoch
    1,    // topics: empty compact array
    1,    // forgotten_topics_data
    1,    // rack_id ""
    1, 0, 2, 2, b'c', // one tagged field: tag 0, 2 bytes, compact "c"
];

#[test]
fn fetch_request_v12_tagged_cluster_id() {
    assert_eq!(encode(&fetch_v12(), 12).unwrap(), FETCH_V12);
    assert_eq!(decode::<FetchRequest>(FETCH_V12, 12), fetch_v12());
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    let mut bytes = FETCH_V12.to_vec();
    let n = bytes.len();
    bytes[n - 5] = 2; // two tagged fields now
    bytes.extend_from_slice(&[9, 3, 0xaa, 0xbb, 0xcc]); // tag 9, 3 bytes
    assert_eq!(decode::<FetchRequest>(&bytes, 12), fetch_v12());
}

#[test]
fn non_default_fields_a_version_lacks() {
    // forgotten_topics_data (7+) is not ignorable.
    let req = FetchRequest {
        forgotten_topics_data: vec![fetch_request::ForgottenTopic::default()],
        ..Default::default()
    };
    let mut buf = BytesMut::from(&b"xy"[..]);
    let e = req.encode(&mut buf, 6).unwrap_err();
    assert_eq!(
        e,
        EncodeError::UnsupportedField {
            message: "FetchRequest",
            field: "forgotten_topics_data",
            version: 6
        }
    );
    assert_eq!(&buf[..], b"xy", "the buffer is restored on error");
    // rack_id (11+) is ignorable: dropped silently.
    let req = FetchRequest {
        rack_id: "r1".into(),
        ..Default::default()
    };
    let short = encode(&req, 10).unwrap();
    assert_eq!(short, encode(&FetchRequest::default(), 10).unwrap());
    // A non-ignorable tagged field outside its versions.
    let req = FetchRequest {
        replica_state: fetch_request::ReplicaState {
            replica_id: 1,
            replica_epoch: 2,
        },
        ..Default::default()
    };
    assert!(matches!(
        req.encode(&mut BytesMut::new(), 14),
        Err(EncodeError::UnsupportedField {
            field: "replica_state",
            ..
        })
    ));
    assert!(req.encode(&mut BytesMut::new(), 15).is_ok());
}

#[test]
fn null_in_a_non_nullable_version() {
    // MetadataRequest topics are nullable from v1 ("all topics").
    let req = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    assert_eq!(
        req.encode(&mut BytesMut::new(), 0),
        Err(EncodeError::UnexpectedNull { field: "topics" })
    );
    assert_eq!(encode(&req, 1).unwrap()[..4], [0xff, 0xff, 0xff, 0xff]);
    // Decoding a null where the version forbids it is an error too.
    let e =
        MetadataRequest::decode(&mut Reader::new(Bytes::from_static(&[0xff; 4])), 0).unwrap_err();
    assert_eq!(e.field, "topics");
    // Topic names are nullable from v10 only.
    let req = MetadataRequest {
        topics: Some(vec![metadata_request::MetadataRequestTopic {
            name: None,
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert!(req.encode(&mut BytesMut::new(), 9).is_err());
    assert!(req.encode(&mut BytesMut::new(), 10).is_ok());
}

#[test]
fn nullable_struct_has_a_presence_byte() {
    let resp = ConsumerGroupHeartbeatResponse::default();
    assert_eq!(resp.assignment, None);
    let bytes = encode(&resp, 0).unwrap();
    // ..., heartbeat_interval_ms, assignment = -1 (null), no tagged fields.
    assert_eq!(bytes[bytes.len() - 2..], [0xff, 0]);
    let with = ConsumerGroupHeartbeatResponse {
        assignment: Some(Default::default()),
        ..Default::default()
    };
    let bytes = encode(&with, 0).unwrap();
    // 1 (present), empty compact array, no tags (struct), no tags (message).
    assert_eq!(bytes[bytes.len() - 4..], [1, 1, 0, 0]);
    assert_eq!(decode::<ConsumerGroupHeartbeatResponse>(&bytes, 0), with);
}

#[test]
fn defaults_come_from_the_definitions() {
    let f = FetchRequest::default();
    assert_eq!(f.replica_id, -1);
    assert_eq!(f.max_bytes, i32::MAX);
    assert_eq!(f.session_epoch, -1);
    assert_eq!(
        fetch_request::FetchPartition::default().high_watermark,
        i64::MAX
    );
    assert!(MetadataRequest::default().allow_auto_topic_creation);
    assert_eq!(FetchRequest::NAME, "FetchRequest");
    assert_eq!(FetchRequest::VERSIONS, (4, 18));
    assert_eq!(FetchRequest::FLEXIBLE_MIN, Some(12));
    assert_eq!(<FetchRequest as Request>::API_KEY, ApiKey::Fetch);
}

#[test]
fn api_keys() {
    for &k in ApiKey::ALL {
        assert_eq!(ApiKey::from_i16(k as i16), Some(k));
        assert_eq!(k.to_string(), k.name());
        if let Some((lo, hi)) = k.valid_versions() {
            assert!(lo <= hi);
        }
    }
    assert_eq!(ApiKey::from_i16(-1), None);
    assert_eq!(ApiKey::Produce as i16, 0);
    assert_eq!(ApiKey::Metadata as i16, 3);
    assert_eq!(ApiKey::ApiVersions.name(), "ApiVersions");
    assert_eq!(i16::from(ApiKey::SaslAuthenticate), 36);
    assert!(ApiKey::OffsetCommit.latest_version_unstable());
    assert!(!ApiKey::ListOffsets.latest_version_unstable());
    assert!(!ApiKey::Fetch.latest_version_unstable());
    assert_eq!(ApiKey::Fetch.valid_versions(), Some((4, 18)));
    assert_eq!(ApiKey::LeaderAndIsr.valid_versions(), None);
}

#[test]
fn header_versions() {
    assert_eq!(request_header_version(ApiKey::Fetch, 11), 1);
    assert_eq!(request_header_version(ApiKey::Fetch, 12), 2);
    assert_eq!(response_header_version(ApiKey::Fetch, 11), 0);
    assert_eq!(response_header_version(ApiKey::Fetch, 12), 1);
    // KIP-511: ApiVersions responses always use header v0 ...
    assert_eq!(response_header_version(ApiKey::ApiVersions, 3), 0);
    assert_eq!(response_header_version(ApiKey::ApiVersions, 4), 0);
    // ... but flexible ApiVersions requests use header v2.
    assert_eq!(request_header_version(ApiKey::ApiVersions, 3), 2);
    assert_eq!(request_header_version(ApiKey::ApiVersions, 2), 1);
    assert_eq!(request_header_version(ApiKey::SaslHandshake, 1), 1);
}
