//! skotch: a pure-Rust Apache Kafka client with a thin streaming layer in
//! the style of hop-client.
//!
//! - [`protocol`]: the sans-IO wire protocol (messages, record batches).
//! - [`client`]: the tokio client (producer, consumer, admin).
//! - [`stream`]: `kafka://` URLs opened for reading or writing.
//! - `mock` (feature `mock`): an in-process Kafka cluster for tests
//!   (`skotch-mock`).
//!
//! The `skotch` binary (publish, subscribe, list-topics) is built on
//! [`stream`] and [`client`].
#![forbid(unsafe_code)]

pub use skotch_client as client;
/// An in-process Kafka cluster for tests (feature `mock`).
#[cfg(feature = "mock")]
pub use skotch_mock as mock;
pub use skotch_protocol as protocol;
pub use skotch_stream as stream;

/// The Rust examples of README.md, compiled by `cargo test --doc` so they
/// cannot drift from the API (they are `no_run`: they need a broker).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
