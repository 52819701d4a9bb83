//! Is the mock the bottleneck of a test? Produces N records of S bytes
//! through skotch (default `ProducerConfig`: idempotent, acks=all, linger
//! 5 ms) and reads them back with a `Consumer` (default `ConsumerConfig`),
//! once into an in-process `MockCluster` (one broker, in this process's
//! tokio runtime) and once into the real single-node broker of
//! `scripts/kafka`, interleaved over R repetitions (the order alternating),
//! and prints each run and the medians.
//!
//! ```text
//! scripts/kafka start
//! cargo run --release --example mock_speed -- [--bootstrap 127.0.0.1:9092] \
//!     [--records 1000000] [--size 100] [--reps 3] [--partitions 6]
//! ```
//!
//! The time of a run covers connecting, creating the topic, producing
//! (until `flush` and every delivery result) and reading every record from
//! the earliest offsets. The mock shares the process and its tokio worker
//! threads with the client; the broker is a JVM of its own on the same
//! machine.

use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch::client::{
    Admin, Client, ClientConfig, Consumer, ConsumerConfig, NewTopic, Offset, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};
use skotch::mock::MockCluster;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    bootstrap: String,
    records: usize,
    size: usize,
    reps: usize,
    partitions: i32,
}

fn args() -> Result<Args, BoxError> {
    let mut a = Args {
        bootstrap: "127.0.0.1:9092".into(),
        records: 1_000_000,
        size: 100,
        reps: 3,
        partitions: 6,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = value,
            "--records" => a.records = value.parse()?,
            "--size" => a.size = value.parse()?,
            "--reps" => a.reps = value.parse()?,
            "--partitions" => a.partitions = value.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    Ok(a)
}

/// Produce then consume `a.records` records on a new topic; the time taken.
async fn run(bootstrap: &str, topic: &str, a: &Args) -> Result<Duration, BoxError> {
    let start = Instant::now();
    let client = Client::connect(ClientConfig::new(bootstrap)?).await?;
    for r in Admin::new(client.clone())
        .create_topics(&[NewTopic::new(topic, a.partitions, 1)])
        .await?
    {
        r?;
    }
    let producer = Producer::new(client.clone(), ProducerConfig::default())?;
    let payload = Bytes::from(vec![b'x'; a.size]);
    let mut deliveries = Vec::with_capacity(a.records);
    for _ in 0..a.records {
        deliveries.push(
            producer
                .send(ProducerRecord::new(topic, payload.clone()))
                .await?,
        );
    }
    producer.flush().await?;
    for d in deliveries {
        d.await?;
    }
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    for partition in 0..a.partitions {
        consumer.assign(
            TopicPartition {
                topic: topic.into(),
                partition,
            },
            Offset::Earliest,
        );
    }
    let mut read = 0;
    while read < a.records {
        read += consumer.poll().await?.records.len();
    }
    let took = start.elapsed();
    producer.close().await?;
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let a = args()?;
    let (mut mock, mut broker) = (Vec::new(), Vec::new());
    let stamp = std::process::id();
    for rep in 0..a.reps {
        for which in [rep % 2, 1 - rep % 2] {
            let topic = format!("mock-speed-{stamp}-{rep}");
            if which == 0 {
                let cluster = MockCluster::start(1).await?;
                let t = run(&cluster.bootstrap_servers(), &topic, &a).await?;
                cluster.shutdown().await;
                println!("rep {rep} mock   {:>8.2} s", t.as_secs_f64());
                mock.push(t);
            } else {
                let t = run(&a.bootstrap, &topic, &a).await?;
                let client = Client::connect(ClientConfig::new(&a.bootstrap)?).await?;
                Admin::new(client)
                    .delete_topics(std::slice::from_ref(&topic))
                    .await?;
                println!("rep {rep} broker {:>8.2} s", t.as_secs_f64());
                broker.push(t);
            }
        }
    }
    let (m, b) = (median(mock), median(broker));
    println!(
        "{} records of {} B, {} partitions: median mock {:.2} s, broker {:.2} s, mock/broker {:.2}",
        a.records,
        a.size,
        a.partitions,
        m.as_secs_f64(),
        b.as_secs_f64(),
        m.as_secs_f64() / b.as_secs_f64()
    );
    Ok(())
}
