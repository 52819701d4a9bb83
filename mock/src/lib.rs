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
//! - N brokers (node ids `0..N`) on 127.0.0.1 ephemeral ports (or fixed
//!   ones, [`MockClusterBuilder::port`]), or over in-memory streams only
//!   ([`MockClusterBuilder::in_memory`], [`MockCluster::connect`]), served
//!   by tokio tasks of the calling runtime, sharing one in-memory state.
//! - Topics with partitions, each with a leader (leaders spread over the
//!   brokers), replicas, an ISR and a leader epoch; controllers are not
//!   simulated (any broker applies CreateTopics, DeleteTopics and
//!   CreatePartitions; Metadata names the first broker that is up as the
//!   controller).
//! - Per partition, a log of record batches as producers sent them, with
//!   offsets and the partition leader epoch written in by the mock; the
//!   log start offset (always 0: nothing is deleted) and the high
//!   watermark (the log end: the replicas share the log, so they are in
//!   sync at once).
//! - APIs, each in its own module with its sources named. Every version
//!   the generated codec knows is served, minus a last version Kafka marks
//!   unstable; [`MockCluster::api_versions`] lists them.
//!   - ApiVersions: exactly the APIs below; UNSUPPORTED_VERSION in a v0
//!     body for a newer ApiVersions (KIP-511).
//!   - Metadata (`metadata.rs`): leader epochs (KIP-320), offline replicas,
//!     LEADER_NOT_AVAILABLE for a partition without leader, no automatic
//!     topic creation.
//!   - CreateTopics, DeleteTopics (committed offsets of a deleted topic
//!     go too), CreatePartitions (KIP-195) (`topics.rs`).
//!   - InitProducerId without transactional id (`init_producer_id.rs`).
//!   - Produce (`produce.rs`, `idempotence.rs`): acks 0/1/-1; each batch's
//!     magic, length and CRC-32C checked; leader check; acks=all refused
//!     with NOT_ENOUGH_REPLICAS below the topic's `min.insync.replicas`;
//!     idempotent producers' sequence checks with duplicate detection over
//!     the last five batches.
//!   - Fetch (`fetch.rs`, `fetch_session.rs`): long poll with
//!     `max_wait_ms` and `min_bytes`, `max_bytes` and per-partition
//!     limits, OFFSET_OUT_OF_RANGE, KIP-320 epoch checks, KIP-227 fetch
//!     sessions (1 000 slots per broker), both isolation levels (without
//!     transactions the last stable offset is the high watermark).
//!   - ListOffsets (earliest, latest, max timestamp, by timestamp) and
//!     OffsetForLeaderEpoch (KIP-101/279, from the leader epochs the
//!     batches carry).
//!   - Classic consumer groups (`group.rs`, `classic_group.rs`):
//!     FindCoordinator (KIP-699 batches; transaction keys get
//!     COORDINATOR_NOT_AVAILABLE), JoinGroup / SyncGroup / Heartbeat /
//!     LeaveGroup with the broker's state machine (Empty,
//!     PreparingRebalance, CompletingRebalance, Stable, Dead): KIP-394
//!     member ids, session, rebalance and sync timeouts, the initial
//!     rebalance delay (0 ms, as Kafka's shipped `server.properties`;
//!     minimum session timeout 1 000 ms; both settable on the
//!     [`MockClusterBuilder`]), leader election, protocol vote,
//!     static members (KIP-345, FENCED_INSTANCE_ID, batch LeaveGroup);
//!     NOT_COORDINATOR on every other broker; ListGroups (KIP-518/848
//!     filters) and DescribeGroups (KIP-1043 from v6).
//!   - KIP-848 consumer groups (`consumer_group.rs`,
//!     `uniform_assignor.rs`): ConsumerGroupHeartbeat with a server-side
//!     uniform (balanced, sticky) assignor, revocation before reassignment,
//!     static members, session and rebalance timeouts (heartbeat interval
//!     500 ms rather than the broker's 5 000, so tests rebalance fast;
//!     both settable on the [`MockClusterBuilder`]);
//!     ConsumerGroupDescribe. Regex subscriptions are refused.
//!   - Committed offsets (`offsets.rs`): OffsetCommit (generation and
//!     member epoch checks, simple groups, OFFSET_METADATA_TOO_LARGE
//!     above 4 096 bytes) and OffsetFetch (several groups from v8). Offsets
//!     never expire.
//!   - SASL (`sasl.rs`): SaslHandshake and SaslAuthenticate with PLAIN and
//!     SCRAM-SHA-256/512 for the users given to
//!     [`MockClusterBuilder::sasl_user`] (a SASL_PLAINTEXT listener; no
//!     users: PLAINTEXT). Nothing else is served before authentication.
//! - Faults ([`Fault`], [`MockCluster::inject`]): per API key, optionally
//!   narrowed to a broker or a topic-partition, an error code once, N
//!   times or until cleared; latency; the connection dropped before or
//!   after the request is applied; silence; throttling (KIP-219).
//!   Cluster actions: [`MockCluster::broker_down`] / `broker_up`,
//!   `move_leader` (leader epoch + 1), `take_partition_offline`,
//!   `set_isr` with `set_min_insync_replicas`, `move_coordinator`.
//! - A log of the requests each broker received
//!   ([`MockCluster::request_log`]).
//! - Determinism: ids (topic ids, producer ids, member ids, fetch session
//!   ids, SCRAM nonces) come from counters and hashes, and every wait runs
//!   on tokio's clock, so a test under a paused clock over in-memory
//!   connections gives the same request log and answers every time.
//!
//! A request for an API not in the list, at a version outside the
//! advertised range, that does not decode, or in a frame above
//! [`MAX_REQUEST_SIZE`] closes its connection (with a log line); the mock
//! never panics on input (`fuzz/fuzz_targets/mock_requests.rs`).
//!
//! # Out of scope
//!
//! Transactions (transactional batches and transactional ids are
//! refused), retention and compaction, quotas (throttling only as a
//! fault), ACLs, follower fetching and replication between brokers (the
//! replicas share one log), KRaft controllers, SASL over TLS.
//!
//! # Deliberate differences
//!
//! - A batch from a producer id the cluster never handed out is
//!   UNKNOWN_PRODUCER_ID. A real broker since KIP-360 accepts an unknown
//!   producer's batch at any sequence (its state may have been removed by
//!   retention, which the mock does not have).
//! - Timeouts are shorter where tests would otherwise wait (initial
//!   rebalance delay, KIP-848 heartbeat interval), as noted above.
//! - A coordinator move restarts a rebalance in progress (the broker
//!   reloads the last stable generation).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api_versions;
mod broker;
mod classic_group;
mod cluster;
mod connection;
mod consumer_group;
mod fault;
mod fetch;
mod fetch_session;
mod group;
mod idempotence;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod offsets;
mod partition_log;
mod produce;
mod request_log;
mod sasl;
mod state;
mod topics;
mod uniform_assignor;

pub use cluster::{MockCluster, MockClusterBuilder, MockError};
pub use connection::MAX_REQUEST_SIZE;
pub use fault::{Fault, FaultAction, FaultId};
pub use request_log::{LoggedRequest, REQUEST_LOG_CAPACITY};
pub use skotch_protocol::error::ErrorCode;
pub use skotch_protocol::messages::ApiKey;
