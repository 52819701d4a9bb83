//! One client connection: frames in, one request at a time answered in
//! order (a broker handles a connection's requests one after another and
//! answers them in order; protocol guide, "Network"), frames out.
//!
//! Hostile input closes the connection and never panics: a frame above
//! [`MAX_REQUEST_SIZE`] or with a negative size, a header or body that
//! does not decode, an API the mock does not implement (logged), or a
//! version outside the advertised range (except ApiVersions, answered
//! with UNSUPPORTED_VERSION as KIP-511 asks).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use skotch_protocol::frame::{begin_frame, FrameDecoder};
use skotch_protocol::messages::{
    request_header_version, response_header_version, ApiKey, ApiVersionsRequest,
    CreateTopicsRequest, DeleteTopicsRequest, FetchRequest, InitProducerIdRequest,
    ListOffsetsRequest, Message, MetadataRequest, ProduceRequest, RequestHeader, ResponseHeader,
};
use skotch_protocol::Reader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::broker::Broker;
use crate::request_log::LoggedRequest;
use crate::{api_versions, fetch, init_producer_id, list_offsets, metadata, produce, topics};

/// The largest request accepted: the broker's `socket.request.max.bytes`
/// default (100 MiB).
pub const MAX_REQUEST_SIZE: usize = 100 * 1024 * 1024;

/// Serve a connection until the client closes it or it must be closed.
pub(crate) async fn serve(broker: Arc<Broker>, mut stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let _ = stream.set_nodelay(true);
    let mut decoder = FrameDecoder::new(MAX_REQUEST_SIZE);
    let mut buf = BytesMut::with_capacity(64 * 1024);
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
        match answer(&broker, frame).await {
            Ok(Some(out)) => {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(broker = broker.node_id, %peer, "closing connection: {reason}");
                return;
            }
        }
    }
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
) -> Result<Option<BytesMut>, String> {
    let mut out = BytesMut::new();
    let frame = begin_frame(&mut out);
    ResponseHeader { correlation_id }
        .encode(&mut out, response_header_version(api, version))
        .and_then(|()| body.encode(&mut out, version))
        .map_err(|e| format!("cannot encode the {api} v{version} response: {e}"))?;
    frame.finish(&mut out).map_err(|e| e.to_string())?;
    Ok(Some(out))
}

/// Answer one request: `Ok(None)` when no answer is due (acks=0),
/// `Err` when the connection must be closed.
async fn answer(broker: &Broker, frame: Bytes) -> Result<Option<BytesMut>, String> {
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
    match api {
        ApiKey::ApiVersions if !in_range => {
            log(format!("unsupported version {version}"));
            respond(api, cid, &api_versions::unsupported_version(), 0)
        }
        ApiKey::ApiVersions => {
            let req: ApiVersionsRequest = decode(&mut r, version)?;
            log(api_versions::summary(&req));
            respond(api, cid, &api_versions::handle(&req, version), version)
        }
        ApiKey::Metadata => {
            let req: MetadataRequest = decode(&mut r, version)?;
            log(metadata::summary(&req));
            respond(api, cid, &metadata::handle(broker, &req, version), version)
        }
        ApiKey::CreateTopics => {
            let req: CreateTopicsRequest = decode(&mut r, version)?;
            log(topics::create_summary(&req));
            respond(api, cid, &topics::create(broker, &req, version), version)
        }
        ApiKey::DeleteTopics => {
            let req: DeleteTopicsRequest = decode(&mut r, version)?;
            log(topics::delete_summary(&req));
            respond(api, cid, &topics::delete(broker, &req, version), version)
        }
        ApiKey::InitProducerId => {
            let req: InitProducerIdRequest = decode(&mut r, version)?;
            log(init_producer_id::summary(&req));
            respond(api, cid, &init_producer_id::handle(broker, &req), version)
        }
        ApiKey::Produce => {
            let req: ProduceRequest = decode(&mut r, version)?;
            log(produce::summary(&req));
            match produce::handle(broker, &req, version) {
                Some(resp) => respond(api, cid, &resp, version),
                None => Ok(None),
            }
        }
        ApiKey::Fetch => {
            let req: FetchRequest = decode(&mut r, version)?;
            log(fetch::summary(&req));
            let resp = fetch::handle(broker, &req, version).await;
            respond(api, cid, &resp, version)
        }
        ApiKey::ListOffsets => {
            let req: ListOffsetsRequest = decode(&mut r, version)?;
            log(list_offsets::summary(&req));
            respond(
                api,
                cid,
                &list_offsets::handle(broker, &req, version),
                version,
            )
        }
        other => Err(format!("{other} is advertised but has no handler")),
    }
}
