//! Connections against scripted peers on 127.0.0.1: a broker that hangs up,
//! sends a hostile frame size, answers with the wrong correlation id, or
//! goes silent must each give a clean error, never a hang or a panic; and a
//! Metadata refresh stuck on a frozen broker is hedged to another one.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use skotch_client::conn::{ConnectOptions, Connection};
use skotch_client::{Client, ClientConfig, Error};
use skotch_protocol::messages::api_versions_response::ApiVersion;
use skotch_protocol::messages::metadata_response::MetadataResponseBroker;
use skotch_protocol::messages::{ApiVersionsResponse, Message, MetadataRequest, MetadataResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn opts() -> ConnectOptions {
    ConnectOptions {
        client_id: "test".into(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(500),
        max_response_size: 1024 * 1024,
        security: Default::default(),
    }
}

/// Read one request frame: (api key, version, correlation id).
async fn read_request(s: &mut TcpStream) -> Option<(i16, i16, i32)> {
    let size = s.read_i32().await.ok()?;
    let mut body = vec![0u8; usize::try_from(size).ok()?];
    s.read_exact(&mut body).await.ok()?;
    Some((
        i16::from_be_bytes(body[0..2].try_into().ok()?),
        i16::from_be_bytes(body[2..4].try_into().ok()?),
        i32::from_be_bytes(body[4..8].try_into().ok()?),
    ))
}

/// A size-prefixed frame of `body`.
fn frame(body: BytesMut) -> BytesMut {
    let mut f = BytesMut::new();
    f.put_i32(body.len() as i32);
    f.extend_from_slice(&body);
    f
}

/// A good ApiVersions v3+ answer (response header v0, KIP-511) offering
/// Metadata up to `metadata_max`.
fn api_versions(correlation_id: i32, version: i16, metadata_max: i16) -> BytesMut {
    let resp = ApiVersionsResponse {
        api_keys: vec![
            ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 4,
            },
            ApiVersion {
                api_key: 3,
                min_version: 0,
                max_version: metadata_max,
            },
        ],
        ..Default::default()
    };
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    resp.encode(&mut body, version).unwrap();
    frame(body)
}

async fn peer<F, Fut>(script: F) -> u16
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        if let Ok((s, _)) = l.accept().await {
            script(s).await;
        }
    });
    port
}

#[tokio::test]
async fn refused_connection() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let e = Connection::connect("127.0.0.1", port, opts())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
}

#[tokio::test]
async fn hang_up_during_handshake() {
    let port = peer(|mut s| async move {
        let _ = read_request(&mut s).await;
    })
    .await;
    let e = Connection::connect("127.0.0.1", port, opts())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("closed"), "{e}");
}

#[tokio::test]
async fn hostile_frame_size() {
    let port = peer(|mut s| async move {
        let _ = read_request(&mut s).await;
        let _ = s.write_all(&[0x7f, 0xff, 0xff, 0xff]).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let e = Connection::connect("127.0.0.1", port, opts())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
}

#[tokio::test]
async fn wrong_correlation_id() {
    let port = peer(|mut s| async move {
        let (_, _, id) = read_request(&mut s).await.unwrap();
        let _ = s.write_all(&api_versions(id + 7, 4, 12)).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let e = Connection::connect("127.0.0.1", port, opts())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("correlation id"), "{e}");
}

#[tokio::test]
async fn silent_broker_times_out_and_connection_loss_fails_requests() {
    let port = peer(|mut s| async move {
        let (_, _, id) = read_request(&mut s).await.unwrap();
        s.write_all(&api_versions(id, 4, 12)).await.unwrap();
        // Read the Metadata request and never answer.
        let _ = read_request(&mut s).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let conn = Connection::connect("127.0.0.1", port, opts())
        .await
        .unwrap();
    assert_eq!(conn.version::<MetadataRequest>().unwrap(), 12);
    let e = conn.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    // The connection is closed after a timeout, as the Java client does.
    assert!(conn.is_closed());

    let port = peer(|mut s| async move {
        let (_, _, id) = read_request(&mut s).await.unwrap();
        s.write_all(&api_versions(id, 4, 12)).await.unwrap();
        let _ = read_request(&mut s).await;
        // hang up with the request in flight
    })
    .await;
    let conn = Connection::connect("127.0.0.1", port, opts())
        .await
        .unwrap();
    let e = conn.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(e.is_connection() && e.is_retriable(), "{e}");
}

/// Metadata naming node 1 (`frozen`) and node 2 (`good`); v1-v8 use
/// response header v0.
fn metadata(correlation_id: i32, version: i16, frozen: u16, good: u16) -> BytesMut {
    let broker = |id, port: u16| MetadataResponseBroker {
        node_id: id,
        host: "127.0.0.1".into(),
        port: i32::from(port),
        ..Default::default()
    };
    let resp = MetadataResponse {
        brokers: vec![broker(1, frozen), broker(2, good)],
        controller_id: 2,
        ..Default::default()
    };
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    resp.encode(&mut body, version).unwrap();
    frame(body)
}

/// A Metadata refresh that goes to a frozen broker (it accepts the
/// connection and answers ApiVersions, then goes silent) is sent to another
/// broker after a second, instead of holding every refresh of the client
/// for `request.timeout.ms`.
#[tokio::test]
async fn a_refresh_stuck_on_a_frozen_broker_asks_another() {
    let frozen = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let good = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (fp, gp) = (
        frozen.local_addr().unwrap().port(),
        good.local_addr().unwrap().port(),
    );
    // The good broker answers everything, on every connection.
    tokio::spawn(async move {
        while let Ok((mut s, _)) = good.accept().await {
            tokio::spawn(async move {
                while let Some((key, version, id)) = read_request(&mut s).await {
                    let out = match key {
                        18 => api_versions(id, version, 8),
                        3 => metadata(id, version, fp, gp),
                        _ => return,
                    };
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    // The frozen one answers ApiVersions, then nothing, keeping the socket.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = frozen.accept().await {
            if let Some((18, version, id)) = read_request(&mut s).await {
                let _ = s.write_all(&api_versions(id, version, 8)).await;
            }
            held.push(s);
        }
    });

    let config = ClientConfig::new(&format!("127.0.0.1:{gp}"))
        .unwrap()
        .request_timeout(Duration::from_secs(30));
    let client = Client::connect(config).await.unwrap();
    assert_eq!(client.metadata().brokers.len(), 2);
    // Node 1 (frozen) is asked first: nothing is known against it yet.
    let t = Instant::now();
    let md = tokio::time::timeout(Duration::from_secs(10), client.refresh_metadata(&[]))
        .await
        .expect("the refresh waited on the frozen broker")
        .unwrap();
    let took = t.elapsed();
    assert_eq!(md.brokers.len(), 2);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    // Node 1 is now suspected: the next refresh goes elsewhere at once.
    let t = Instant::now();
    client.refresh_metadata(&[]).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}

/// KIP-219: a broker answering with `throttle_time_ms` (Metadata v6+)
/// expects the client to send nothing more on that connection until the
/// time has passed. The peer does not mute its side, so the wait it
/// measures is the client's own.
#[tokio::test]
async fn a_throttled_answer_holds_the_next_request_back() {
    let (arrived_tx, arrived_rx) = tokio::sync::oneshot::channel();
    let port = peer(|mut s| async move {
        let (_, v, cid) = read_request(&mut s).await.unwrap();
        // Metadata up to v8: response header v0, and client throttling
        // from v6.
        s.write_all(&api_versions(cid, v, 8)).await.unwrap();
        let mut answered = None;
        for throttle_ms in [400, 0] {
            let (_, v, cid) = read_request(&mut s).await.unwrap();
            if let Some(at) = answered {
                let _ = arrived_tx.send(Instant::now().duration_since(at));
                let mut body = BytesMut::new();
                body.put_i32(cid);
                MetadataResponse::default().encode(&mut body, v).unwrap();
                s.write_all(&frame(body)).await.unwrap();
                break;
            }
            let mut body = BytesMut::new();
            body.put_i32(cid);
            MetadataResponse {
                throttle_time_ms: throttle_ms,
                ..Default::default()
            }
            .encode(&mut body, v)
            .unwrap();
            s.write_all(&frame(body)).await.unwrap();
            answered = Some(Instant::now());
        }
    })
    .await;
    let mut o = opts();
    o.request_timeout = Duration::from_secs(5);
    let conn = Connection::connect("127.0.0.1", port, o).await.unwrap();
    let first = conn.send(&MetadataRequest::default()).await.unwrap();
    assert_eq!(first.throttle_time_ms, 400);
    conn.send(&MetadataRequest::default()).await.unwrap();
    let gap = arrived_rx.await.unwrap();
    assert!(gap >= Duration::from_millis(390), "sent after {gap:?}");
}
