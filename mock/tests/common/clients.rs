//! skotch's client and an idempotent producer against a mock, with short
//! backoffs so that tests of error paths retry quickly.

use std::time::Duration;

use skotch_client::{Acks, Client, ClientConfig, Producer, ProducerConfig};
use skotch_mock::MockCluster;

/// The client settings of these tests: retries after 10-50 ms, requests
/// time out after 5 s.
pub fn client_config(cluster: &MockCluster) -> ClientConfig {
    ClientConfig::new(&cluster.bootstrap_servers())
        .unwrap()
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(5))
}

/// A cluster of `brokers` with topic `topic` (`partitions`, replicated on
/// every broker), a client and an idempotent acks=all producer (linger
/// 1 ms, delivery timeout 20 s).
pub async fn setup(
    brokers: usize,
    topic: &str,
    partitions: i32,
) -> (MockCluster, Client, Producer) {
    let cluster = MockCluster::start(brokers).await.unwrap();
    cluster
        .create_topic(topic, partitions, brokers as i16)
        .unwrap();
    let client = Client::connect(client_config(&cluster))
        .await
        .expect("connect");
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            acks: Acks::All,
            enable_idempotence: Some(true),
            linger: Duration::from_millis(1),
            delivery_timeout: Duration::from_secs(20),
            ..Default::default()
        },
    )
    .unwrap();
    (cluster, client, producer)
}
