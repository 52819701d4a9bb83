//! skotch's tokio wire client for Apache Kafka: connections with ApiVersions
//! negotiation and pipelining, a metadata cache, a producer, a consumer of
//! assigned partitions, and admin calls. Pure Rust, no librdkafka.
//!
//! Start with [`Client::connect`], then build a [`Producer`], a [`Consumer`]
//! or an [`Admin`] on it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod backoff;
mod client;
pub mod config;
pub mod conn;
pub mod consumer;
pub mod error;
pub mod group;
pub mod metadata;
pub mod producer;
pub mod security;

pub use admin::{
    Admin, ConfigEntry, ConfigSource, GroupDescription, GroupListing, GroupMember, NewTopic,
    PartitionLag,
};
pub use client::{Client, ConnKind};
pub use config::ClientConfig;
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, GroupConfig, GroupConsumer, GroupProtocol,
    IsolationLevel, Offset, Poll, TopicPartition,
};
pub use error::{AuthFailure, Error, Result, TlsFailure};
pub use group::{GroupHandle, ManualCommitListener, RebalanceListener};
pub use producer::{
    Acks, BatchAck, DeliveryCallback, DeliveryFuture, DeliveryReport, Producer, ProducerConfig,
    ProducerRecord, RecordMetadata,
};
pub use security::{Password, SaslConfig, SaslMechanism, SecurityProtocol};
pub use skotch_protocol as protocol;
pub use skotch_protocol::record::{Compression, Header};
