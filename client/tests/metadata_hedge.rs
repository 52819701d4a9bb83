//! A Metadata refresh that goes to a frozen broker (it accepts the
//! connection and answers ApiVersions, then goes silent) is sent to another
//! broker after a second, instead of holding every refresh of the client
//! for `request.timeout.ms`. Scripted peers on 127.0.0.1.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use skotch_client::{Client, ClientConfig};
use skotch_protocol::messages::api_versions_response::ApiVersion;
use skotch_protocol::messages::metadata_response::MetadataResponseBroker;
use skotch_protocol::messages::{ApiVersionsResponse, Message, MetadataResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

fn frame(body: BytesMut) -> BytesMut {
    let mut f = BytesMut::new();
    f.put_i32(body.len() as i32);
    f.extend_from_slice(&body);
    f
}

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
                min_version: 1,
                max_version: 8,
            },
        ],
        ..Default::default()
    };
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    resp.encode(&mut body, version).unwrap();
    frame(body)
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
                        18 => api_versions(id, version),
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
                let _ = s.write_all(&api_versions(id, version)).await;
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
