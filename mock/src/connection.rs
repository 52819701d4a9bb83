//! One client connection: frames in, one request at a time answered in
//! order (a broker handles a connection's requests one after another and
//! answers them in order; protocol guide, "Network"), frames out.
//!
//! Hostile input closes the connection and never panics: a frame above
//! [`MAX_REQUEST_SIZE`] or with a negative size, a header or body that
//! does not decode, an API the mock does not implement (logged), or a
//! version outside the advertised range (except ApiVersions, answered
//! with UNSUPPORTED_VERSION as KIP-511 asks).
//!
//! Connection-level faults act here: latency before the handler, a drop
//! before or after it, silence (see [`fault`](crate::fault)).

use bytes::{Bytes, BytesMut};
use skotch_protocol::frame::{begin_frame, FrameDecoder};
use skotch_protocol::messages::{
    request_header_version, response_header_version, ApiKey, ApiVersionsRequest,
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteTopicsRequest, DescribeGroupsRequest, FetchRequest,
    FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, Message, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest, SyncGroupRequest,
};
use skotch_protocol::Reader;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::broker::Broker;
use crate::fault::{self, FaultAction};
use crate::request_log::LoggedRequest;
use crate::sasl::ConnSasl;
use crate::{
    api_versions, consumer_group, fetch, group, init_producer_id, list_offsets, metadata,
    offset_for_leader_epoch, offsets, produce, sasl, topics,
};

/// The largest request accepted: the broker's `socket.request.max.bytes`
/// default (100 MiB).
pub const MAX_REQUEST_SIZE: usize = 100 * 1024 * 1024;

/// What one connection remembers between requests.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// SASL progress (the connection is authenticated or not).
    pub sasl: ConnSasl,
}

/// What to do once a request is handled.
enum Outcome {
    /// Send this (or nothing, for acks=0) and go on.
    Answer(Option<BytesMut>),
    /// Send this, then close (a failed authentication).
    AnswerAndClose(BytesMut, String),
}

/// Serve a connection until the client closes it or it must be closed.
/// `peer` names the client in log lines.
pub(crate) async fn serve<S>(broker: &Broker, mut stream: S, peer: String)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut decoder = FrameDecoder::new(MAX_REQUEST_SIZE);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut conn = ConnState::default();
    let mut silent = false;
    loop {
        let frame = match decoder.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(broker = broker.node_id, %peer, "closing connection: {e}");
                return;
            }
        };
        if silent {
            // A silenced connection reads and forgets.
            continue;
        }
        let seq = fault::new_request();
        let api = peek_api(&frame);
        let action = api.and_then(|api| fault::connection_action(broker, api, seq));
        match action {
            Some(FaultAction::Latency(d)) => tokio::time::sleep(d).await,
            Some(FaultAction::DropBefore) => {
                tracing::info!(broker = broker.node_id, %peer, "fault: dropping the connection before the request");
                return;
            }
            Some(FaultAction::Silence) => {
                tracing::info!(broker = broker.node_id, %peer, "fault: silent from now on");
                silent = true;
                continue;
            }
            _ => {}
        }
        let throttle = match action {
            Some(FaultAction::Throttle(d)) => d,
            _ => std::time::Duration::ZERO,
        };
        let ctx = fault::RequestCtx {
            seq,
            throttle_ms: i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX),
        };
        let outcome = fault::scope(ctx, answer(broker, &mut conn, frame)).await;
        if action == Some(FaultAction::DropAfter) {
            tracing::info!(broker = broker.node_id, %peer, "fault: dropping the connection after the request");
            return;
        }
        match outcome {
            Ok(Outcome::Answer(Some(out))) => {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                if !throttle.is_zero() {
                    // KIP-219: the channel is muted for the throttle time.
                    tokio::time::sleep(throttle).await;
                }
            }
            Ok(Outcome::Answer(None)) => {}
            Ok(Outcome::AnswerAndClose(out, reason)) => {
                let _ = stream.write_all(&out).await;
                let _ = stream.flush().await;
                tracing::info!(broker = broker.node_id, %peer, "closing connection: {reason}");
                return;
            }
            Err(reason) => {
                tracing::warn!(broker = broker.node_id, %peer, "closing connection: {reason}");
                return;
            }
        }
    }
}

/// The API of a frame, if its first two bytes name one.
fn peek_api(frame: &Bytes) -> Option<ApiKey> {
    let key = i16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    ApiKey::from_i16(key)
}

/// Decode the request with `R`'s decoder, naming it in any error.
fn decode<R: Message>(r: &mut Reader, version: i16) -> Result<R, String> {
    R::decode(r, version).map_err(|e| format!("undecodable request: {e}"))
}

/// Frame a response.
fn respond<M: Message>(
    api: ApiKey,
    correlation_id: i32,
    body: &M,
    version: i16,
) -> Result<Outcome, String> {
    encode(api, correlation_id, body, version).map(|out| Outcome::Answer(Some(out)))
}

/// A framed response.
fn encode<M: Message>(
    api: ApiKey,
    correlation_id: i32,
    body: &M,
    version: i16,
) -> Result<BytesMut, String> {
    let mut out = BytesMut::new();
    let frame = begin_frame(&mut out);
    ResponseHeader { correlation_id }
        .encode(&mut out, response_header_version(api, version))
        .and_then(|()| body.encode(&mut out, version))
        .map_err(|e| format!("cannot encode the {api} v{version} response: {e}"))?;
    frame.finish(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Answer one request; `Err` when the connection must be closed.
async fn answer(broker: &Broker, conn: &mut ConnState, frame: Bytes) -> Result<Outcome, String> {
    let mut r = Reader::new(frame.clone());
    let key = r.i16("request_api_key").map_err(|e| e.to_string())?;
    let version = r.i16("request_api_version").map_err(|e| e.to_string())?;
    let api = ApiKey::from_i16(key);
    let range = api.and_then(api_versions::supported);
    let (Some(api), Some((min, max))) = (api, range) else {
        // Log what can be read of the header, then close (as a broker
        // does with a request it cannot parse).
        let header = RequestHeader::decode(&mut Reader::new(frame), 1).ok();
        broker.log().push(LoggedRequest {
            api_key: key,
            api_version: version,
            client_id: header.as_ref().and_then(|h| h.client_id.clone()),
            correlation_id: header.as_ref().map_or(-1, |h| h.correlation_id),
            summary: "not implemented".into(),
        });
        return Err(format!(
            "API key {key} ({}) v{version} is not implemented by the mock",
            api.map_or("unknown", ApiKey::name)
        ));
    };
    let in_range = (min..=max).contains(&version);
    if !in_range && api != ApiKey::ApiVersions {
        return Err(format!(
            "{api} v{version} is outside the advertised range {min}-{max}"
        ));
    }
    let header_version = if in_range {
        request_header_version(api, version)
    } else if version >= 3 {
        2
    } else {
        1
    };
    sasl::gate(broker, &mut conn.sasl, api, version)?;
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r, header_version)
        .map_err(|e| format!("undecodable request header: {e}"))?;
    let cid = header.correlation_id;
    let log = |summary: String| {
        broker.log().push(LoggedRequest {
            api_key: key,
            api_version: version,
            client_id: header.client_id.clone(),
            correlation_id: cid,
            summary,
        })
    };
    // Decode the body as `$req`, log its summary, answer with the
    // handler's response.
    macro_rules! serve {
        ($req:ty, $summary:path, |$q:ident| $handle:expr) => {{
            let $q: $req = decode(&mut r, version)?;
            log($summary(&$q));
            respond(api, cid, &$handle, version)
        }};
    }
    match api {
        ApiKey::ApiVersions if !in_range => {
            log(format!("unsupported version {version}"));
            respond(api, cid, &api_versions::unsupported_version(), 0)
        }
        ApiKey::ApiVersions => serve!(ApiVersionsRequest, api_versions::summary, |q| {
            api_versions::handle(&q, version)
        }),
        ApiKey::Metadata => serve!(MetadataRequest, metadata::summary, |q| {
            metadata::handle(broker, &q, version)
        }),
        ApiKey::CreateTopics => serve!(CreateTopicsRequest, topics::create_summary, |q| {
            topics::create(broker, &q, version)
        }),
        ApiKey::DeleteTopics => serve!(DeleteTopicsRequest, topics::delete_summary, |q| {
            topics::delete(broker, &q, version)
        }),
        ApiKey::CreatePartitions => serve!(
            CreatePartitionsRequest,
            topics::create_partitions_summary,
            |q| topics::create_partitions(broker, &q, version)
        ),
        ApiKey::InitProducerId => serve!(InitProducerIdRequest, init_producer_id::summary, |q| {
            init_producer_id::handle(broker, &q)
        }),
        ApiKey::Produce => {
            let req: ProduceRequest = decode(&mut r, version)?;
            log(produce::summary(&req));
            match produce::handle(broker, &req, version) {
                Some(resp) => respond(api, cid, &resp, version),
                None => Ok(Outcome::Answer(None)),
            }
        }
        ApiKey::Fetch => serve!(FetchRequest, fetch::summary, |q| {
            fetch::handle(broker, &q, version).await
        }),
        ApiKey::ListOffsets => serve!(ListOffsetsRequest, list_offsets::summary, |q| {
            list_offsets::handle(broker, &q, version)
        }),
        ApiKey::OffsetForLeaderEpoch => serve!(
            OffsetForLeaderEpochRequest,
            offset_for_leader_epoch::summary,
            |q| offset_for_leader_epoch::handle(broker, &q, version)
        ),
        ApiKey::FindCoordinator => serve!(FindCoordinatorRequest, group::summary, |q| {
            group::find_coordinator(broker, &q, version)
        }),
        ApiKey::JoinGroup => serve!(JoinGroupRequest, group::summary, |q| {
            group::join(broker, &q, version, header.client_id.as_deref()).await
        }),
        ApiKey::SyncGroup => serve!(SyncGroupRequest, group::summary, |q| {
            group::sync(broker, &q, version).await
        }),
        ApiKey::Heartbeat => serve!(HeartbeatRequest, group::summary, |q| {
            group::heartbeat(broker, &q, version)
        }),
        ApiKey::LeaveGroup => serve!(LeaveGroupRequest, group::summary, |q| {
            group::leave(broker, &q, version)
        }),
        ApiKey::ListGroups => serve!(ListGroupsRequest, group::summary, |q| {
            group::list(broker, &q, version)
        }),
        ApiKey::DescribeGroups => serve!(DescribeGroupsRequest, group::summary, |q| {
            group::describe(broker, &q, version)
        }),
        ApiKey::OffsetCommit => serve!(OffsetCommitRequest, offsets::summary, |q| {
            offsets::commit(broker, &q, version)
        }),
        ApiKey::OffsetFetch => serve!(OffsetFetchRequest, offsets::summary, |q| {
            offsets::fetch(broker, &q, version)
        }),
        ApiKey::ConsumerGroupHeartbeat => serve!(
            ConsumerGroupHeartbeatRequest,
            consumer_group::summary,
            |q| consumer_group::heartbeat(broker, &q, version, header.client_id.as_deref()).await
        ),
        ApiKey::ConsumerGroupDescribe => {
            serve!(ConsumerGroupDescribeRequest, consumer_group::summary, |q| {
                consumer_group::describe(broker, &q, version)
            })
        }
        ApiKey::SaslHandshake => {
            let req: SaslHandshakeRequest = decode(&mut r, version)?;
            log(sasl::summary(&req));
            let (resp, verdict) = sasl::handshake(broker, &mut conn.sasl, &req, version);
            let out = encode(api, cid, &resp, version)?;
            Ok(match verdict {
                Ok(()) => Outcome::Answer(Some(out)),
                Err(reason) => Outcome::AnswerAndClose(out, reason),
            })
        }
        ApiKey::SaslAuthenticate => {
            let req: SaslAuthenticateRequest = decode(&mut r, version)?;
            log(sasl::summary(&req));
            let (resp, verdict) = sasl::authenticate(broker, &mut conn.sasl, &req, version);
            let out = encode(api, cid, &resp, version)?;
            Ok(match verdict {
                Ok(()) => Outcome::Answer(Some(out)),
                Err(reason) => Outcome::AnswerAndClose(out, reason),
            })
        }
        other => Err(format!("{other} is advertised but has no handler")),
    }
}
