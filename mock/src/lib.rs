//! An in-process Apache Kafka cluster for tests, in pure Rust: no JVM, no
//! Docker, no C.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = skotch_mock::MockCluster::start(3).await?;
//! cluster.create_topic("events", 3, 3)?;
//! let bootstrap = cluster.bootstrap_servers(); // "127.0.0.1:port,..."
//! // ... point any Kafka client at `bootstrap` ...
//! for r in cluster.request_log(0) {
//!     println!("{:?} v{} {}", r.api(), r.api_version, r.summary);
//! }
//! # Ok(()) }
//! ```
//!
//! # What is simulated
//!
//! - N brokers (node ids `0..N`) on 127.0.0.1 ephemeral ports, served by
//!   tokio tasks of the calling runtime, sharing one in-memory state.
//! - Topics with partitions, each with a leader (leaders spread over the
//!   brokers), replicas, an ISR (always every replica) and a leader epoch;
//!   controllers are not simulated (any broker applies CreateTopics and
//!   DeleteTopics; Metadata names broker 0 as the controller).
//! - Per partition, a log of record batches as producers sent them, with
//!   offsets and the partition leader epoch written in by the mock; the
//!   log start offset (always 0: nothing is deleted) and the high
//!   watermark (the log end: every replica is in sync at once).
//! - APIs, each in its own module with its sources named: ApiVersions
//!   (answering exactly the APIs below; UNSUPPORTED_VERSION in a v0 body
//!   for a newer ApiVersions, KIP-511), Metadata (leader epochs, no
//!   automatic topic creation), CreateTopics, DeleteTopics, InitProducerId
//!   (without transactional id), Produce (acks 0/1/-1; each batch's magic,
//!   length and CRC-32C checked; leader check; idempotent producers'
//!   sequence checks with duplicate detection over the last five batches),
//!   Fetch (long poll with `max_wait_ms` and `min_bytes`, `max_bytes` and
//!   per-partition limits, OFFSET_OUT_OF_RANGE, KIP-320 epoch checks) and
//!   ListOffsets (earliest, latest, max timestamp, by timestamp). Every
//!   version the generated codec knows is served, minus a last version
//!   Kafka marks unstable.
//! - A log of the requests each broker received
//!   ([`MockCluster::request_log`]).
//!
//! A request for an API not in the list, at a version outside the
//! advertised range, that does not decode, or in a frame above
//! [`MAX_REQUEST_SIZE`] closes its connection (with a log line); the mock
//! never panics on input.
//!
//! # Not yet
//!
//! Fetch sessions (every answer says session 0, "no session", so clients
//! send full fetches), consumer groups and offsets (FindCoordinator,
//! JoinGroup and the rest, KIP-848), OffsetForLeaderEpoch,
//! CreatePartitions, SASL, fault injection (error codes, latency,
//! dropped connections, brokers down, leader moves), the paused-clock
//! determinism and the `skotch mock-cluster` command.
//!
//! # Out of scope
//!
//! Transactions (transactional batches and transactional ids are
//! refused), retention and compaction.
//!
//! # A deliberate difference
//!
//! A batch from a producer id the cluster never handed out is
//! UNKNOWN_PRODUCER_ID. A real broker since KIP-360 accepts an unknown
//! producer's batch at any sequence (its state may have been removed by
//! retention, which the mock does not have).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api_versions;
mod broker;
mod cluster;
mod connection;
mod fetch;
mod idempotence;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod partition_log;
mod produce;
mod request_log;
mod state;
mod topics;

pub use cluster::{MockCluster, MockError};
pub use connection::MAX_REQUEST_SIZE;
pub use request_log::{LoggedRequest, REQUEST_LOG_CAPACITY};
