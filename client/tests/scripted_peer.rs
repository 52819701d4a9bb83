//! Connections against scripted peers on 127.0.0.1: a broker that hangs up,
//! sends a hostile frame size, answers with the wrong correlation id, or
//! goes silent must each give a clean error, never a hang or a panic.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use skotch_client::conn::{ConnectOptions, Connection};
use skotch_client::Error;
use skotch_protocol::messages::api_versions_response::ApiVersion;
use skotch_protocol::messages::{ApiVersionsResponse, Message, MetadataRequest};
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

/// Read one request frame; its correlation id.
async fn read_request(s: &mut TcpStream) -> Option<i32> {
    let size = s.read_i32().await.ok()?;
    let mut body = vec![0u8; usize::try_from(size).ok()?];
    s.read_exact(&mut body).await.ok()?;
    Some(i32::from_be_bytes(body[4..8].try_into().ok()?))
}

/// A good ApiVersions v3+ answer (response header v0, KIP-511).
fn api_versions(correlation_id: i32, version: i16) -> BytesMut {
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
                max_version: 12,
            },
        ],
        ..Default::default()
    };
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    resp.encode(&mut body, version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    frame
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
        let id = read_request(&mut s).await.unwrap();
        let _ = s.write_all(&api_versions(id + 7, 4)).await;
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
        let id = read_request(&mut s).await.unwrap();
        s.write_all(&api_versions(id, 4)).await.unwrap();
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
        let id = read_request(&mut s).await.unwrap();
        s.write_all(&api_versions(id, 4)).await.unwrap();
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
