//! The streaming layer against the real broker: write and read back across
//! several topics with metadata, `until_eos` ends, the topic is required
//! when the URL names several, standard headers, and hop's `_format`
//! fallback for records written without it.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use skotch::client::{Producer, ProducerConfig, ProducerRecord};
use skotch::stream::{Headers, Message, StartPosition, Stream, StreamError, WriteOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_and_read_several_topics_until_eos() {
    let client = common::client().await;
    let t1 = common::create_topic(&client, "stream-a", 2).await;
    let t2 = common::create_topic(&client, "stream-b", 3).await;
    let url = format!("kafka://{}/{t1},{t2}", common::bootstrap());

    let mut w = Stream::new().open_writer(&url).await.unwrap();
    // Two topics in the URL: a write must name one.
    match w.write(Message::Json(json!({"x": 1}))).await {
        Err(StreamError::TopicRequired(2)) => {}
        other => panic!("expected TopicRequired, got {other:?}"),
    }
    let list: Headers = vec![("dup", "1"), ("dup", "2")].into();
    let map: Headers = BTreeMap::from([("m", "v")]).into();
    for i in 0..10 {
        let (topic, headers) = if i % 2 == 0 {
            (&t1, list.clone())
        } else {
            (&t2, map.clone())
        };
        w.write_with(
            Message::Json(json!({"i": i})),
            WriteOptions {
                topic: Some(topic.clone()),
                headers,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    w.write_with(
        Message::Blob(Bytes::from_static(b"\x00\x01raw")),
        WriteOptions {
            topic: Some(t2.clone()),
            test: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Reserved header names are refused.
    let bad: Headers = vec![("_sender", "me")].into();
    assert!(matches!(
        w.write_with(
            Message::Blob(Bytes::new()),
            WriteOptions {
                topic: Some(t1.clone()),
                headers: bad,
                ..Default::default()
            }
        )
        .await,
        Err(StreamError::ReservedHeader(_))
    ));
    w.close().await.unwrap();

    // By default the test message is skipped (hop's ignoretest).
    let stream = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true);
    let reader = stream.open_reader(&url).await.unwrap();
    let items: Vec<_> = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        reader.into_stream().collect::<Vec<_>>(),
    )
    .await
    .expect("until_eos must end the stream");
    assert_eq!(items.len(), 10);
    assert!(items.iter().all(|r| !r.as_ref().unwrap().1.is_test()));

    let mut stream = stream;
    stream.options.ignore_test = false;
    let reader = stream.open_reader(&url).await.unwrap();
    // The reader is a futures::Stream and ends by itself (until_eos).
    let items: Vec<_> = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        reader.into_stream().collect::<Vec<_>>(),
    )
    .await
    .expect("until_eos must end the stream");
    let items: Vec<_> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(items.len(), 11);
    let mut seen = Vec::new();
    for (m, md) in &items {
        assert!(md.message_id().is_some(), "_id is a 16-byte UUID");
        match m {
            Message::Json(v) => {
                let i = v["i"].as_i64().unwrap();
                seen.push(i);
                if i % 2 == 0 {
                    assert_eq!(&*md.topic, t1.as_str());
                    let dups: Vec<_> = md.header_all("dup").collect();
                    assert_eq!(dups.len(), 2);
                } else {
                    assert_eq!(&*md.topic, t2.as_str());
                    assert_eq!(md.header("m").map(|b| &b[..]), Some(&b"v"[..]));
                }
                assert!(!md.is_test());
            }
            Message::Blob(b) => {
                assert_eq!(&b[..], b"\x00\x01raw");
                assert!(md.is_test());
                assert_eq!(md.header("_format").map(|b| &b[..]), Some(&b"blob"[..]));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    seen.sort();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_format_header_fall_back_like_hop() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "stream-fallback", 1).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    for v in [&b"{\"ok\":true}"[..], b"not json"] {
        producer
            .send(ProducerRecord::new(&topic, Bytes::copy_from_slice(v)))
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let mut r = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true)
        .open_reader(&url)
        .await
        .unwrap();
    assert_eq!(
        r.read().await.unwrap().unwrap(),
        Message::Json(json!({"ok": true}))
    );
    assert_eq!(
        r.read().await.unwrap().unwrap(),
        Message::Blob(Bytes::from_static(b"not json"))
    );
    assert!(r.read().await.is_none());
}

#[tokio::test]
async fn open_errors_are_clear() {
    let e = Stream::new()
        .open_reader("kafka://127.0.0.1:9092/")
        .await
        .unwrap_err();
    assert!(matches!(e, StreamError::NoTopic), "{e}");
    let mut s = Stream::new();
    s.options.connect_timeout = std::time::Duration::from_millis(1000);
    let e = s.open_reader("kafka://127.0.0.1:1/t").await.unwrap_err();
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    let e = Stream::new()
        .open_writer(&format!(
            "kafka://{}/skotch-missing-topic",
            common::bootstrap()
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown topic"), "{e}");
}
