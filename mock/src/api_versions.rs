//! ApiVersions (KIP-35, KIP-511): the APIs this mock implements and the
//! versions of each, and nothing else: a client never picks an API the
//! mock would refuse.

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::api_versions_response::ApiVersion;
use skotch_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ConsumerGroupDescribeRequest,
    ConsumerGroupHeartbeatRequest, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteTopicsRequest, DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest,
    HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest, Request,
    SaslAuthenticateRequest, SaslHandshakeRequest, SyncGroupRequest,
};

/// The versions of `R` a broker advertises: the definitions' range without
/// a last version Kafka marks unstable (brokers do not advertise those).
fn range<R: Request>() -> (ApiKey, i16, i16) {
    let (min, max) = R::VERSIONS;
    let max = if R::LATEST_VERSION_UNSTABLE {
        max - 1
    } else {
        max
    };
    (R::API_KEY, min, max)
}

/// The implemented APIs and their version ranges.
pub(crate) fn implemented() -> [(ApiKey, i16, i16); 23] {
    [
        range::<ProduceRequest>(),
        range::<FetchRequest>(),
        range::<ListOffsetsRequest>(),
        range::<MetadataRequest>(),
        range::<OffsetCommitRequest>(),
        range::<OffsetFetchRequest>(),
        range::<FindCoordinatorRequest>(),
        range::<JoinGroupRequest>(),
        range::<HeartbeatRequest>(),
        range::<LeaveGroupRequest>(),
        range::<SyncGroupRequest>(),
        range::<DescribeGroupsRequest>(),
        range::<ListGroupsRequest>(),
        range::<SaslHandshakeRequest>(),
        range::<ApiVersionsRequest>(),
        range::<CreateTopicsRequest>(),
        range::<DeleteTopicsRequest>(),
        range::<InitProducerIdRequest>(),
        range::<OffsetForLeaderEpochRequest>(),
        range::<CreatePartitionsRequest>(),
        range::<SaslAuthenticateRequest>(),
        range::<ConsumerGroupHeartbeatRequest>(),
        range::<ConsumerGroupDescribeRequest>(),
    ]
}

/// The version range of an implemented API.
pub(crate) fn supported(key: ApiKey) -> Option<(i16, i16)> {
    implemented()
        .into_iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (min, max))
}

fn entries(only_api_versions: bool) -> Vec<ApiVersion> {
    let mut list: Vec<ApiVersion> = implemented()
        .into_iter()
        .filter(|(k, _, _)| !only_api_versions || *k == ApiKey::ApiVersions)
        .map(|(k, min_version, max_version)| ApiVersion {
            api_key: k.into(),
            min_version,
            max_version,
        })
        .collect();
    list.sort_by_key(|a| a.api_key);
    list
}

/// KIP-511: a client software name or version (v3+) must match
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` (the broker's
/// `ApiVersionsRequest.isValid`).
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.'))
        }
        _ => false,
    }
}

/// The answer to an ApiVersions request at a supported version: the
/// implemented APIs, or INVALID_REQUEST (and no APIs) for a v3+ request
/// whose client software name or version is malformed (KIP-511).
pub(crate) fn handle(req: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    if version >= 3
        && !(valid_software_field(&req.client_software_name)
            && valid_software_field(&req.client_software_version))
    {
        return ApiVersionsResponse {
            error_code: ErrorCode::INVALID_REQUEST.code(),
            ..Default::default()
        };
    }
    ApiVersionsResponse {
        error_code: 0,
        api_keys: entries(false),
        throttle_time_ms: 0,
        ..Default::default()
    }
}

/// The answer to an ApiVersions request at a version the mock does not
/// know: UNSUPPORTED_VERSION in a v0 body listing ApiVersions' own range,
/// so the client can retry at a version both speak (KIP-511; the broker's
/// `ApiVersionsRequest.getErrorResponse`).
pub(crate) fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::UNSUPPORTED_VERSION.code(),
        api_keys: entries(true),
        ..Default::default()
    }
}

/// Summary for the request log.
pub(crate) fn summary(req: &ApiVersionsRequest) -> String {
    format!(
        "client {} {}",
        req.client_software_name, req.client_software_version
    )
}
