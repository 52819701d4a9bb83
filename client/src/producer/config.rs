//! Producer settings, with the Java producer's names and defaults (Kafka
//! 4.x, `org.apache.kafka.clients.producer.ProducerConfig`), and how
//! idempotence is decided from them.

use std::time::Duration;

use skotch_protocol::record::Compression;

use super::delivery::DeliveryCallback;
use crate::error::{Error, Result};

/// `acks`: how many replicas must have the record before the broker
/// answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker does not answer; offsets are unknown (-1).
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all` (-1): every in-sync replica has it. The default.
    #[default]
    All,
}

impl Acks {
    pub(crate) fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    fn java(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// Producer settings; defaults are the Java producer's (Kafka 4.x).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks`. Default all.
    pub acks: Acks,
    /// `enable.idempotence` (KIP-98): `None` (the default) turns it on
    /// unless a setting conflicts with it (`acks` other than all,
    /// `max_in_flight` above 5, `retries` 0), in which case it is off and
    /// the reason is logged once, as the Java client (3.0+) does.
    /// `Some(true)` with a conflicting setting is [`Error::Config`] from
    /// [`Producer::new`](super::Producer::new), naming both properties.
    /// With idempotence every partition's records are written exactly once
    /// and in order, whatever retries happen.
    pub enable_idempotence: Option<bool>,
    /// `max.in.flight.requests.per.connection`: Produce requests a broker
    /// connection may have unanswered (so also batches per partition).
    /// Default 5; at most 5 with idempotence.
    pub max_in_flight: usize,
    /// `retries`: attempts after the first, within `delivery.timeout.ms`.
    /// Default `u32::MAX` (Java: `Integer.MAX_VALUE`): the delivery timeout
    /// is the limit.
    pub retries: u32,
    /// `linger.ms`: how long a batch waits at most for more records before
    /// it is sent (it goes sooner once full). Default 5 ms (Kafka 4.0's
    /// default, KIP-1030). The timer ticks in whole milliseconds, so a
    /// batch is sent between `linger - min(1 ms, linger / 2)` and `linger`
    /// after its first record, as Java's millisecond clock does.
    pub linger: Duration,
    /// `batch.size`: target size of a record batch, in bytes. Default 16 384.
    pub batch_size: usize,
    /// `delivery.timeout.ms`: limit from `send` to success or failure,
    /// retries included. Default 120 000 ms.
    pub delivery_timeout: Duration,
    /// `buffer.memory`: bytes of batch buffers the producer may hold for
    /// records not yet delivered; each open batch counts `batch.size` (or
    /// its one larger record). Default 33 554 432 bytes (32 MiB).
    pub buffer_memory: usize,
    /// `max.block.ms`: how long [`Producer::send`](super::Producer::send)
    /// may wait for `buffer.memory` room or for a new topic's metadata.
    /// Default 60 000 ms.
    pub max_block: Duration,
    /// `max.request.size`: the largest record accepted, and the size a
    /// Produce request stops growing at (it always carries at least one
    /// batch), in bytes. Default 1 048 576.
    pub max_request_size: usize,
    /// `compression.type`: the codec of every batch (none, gzip, snappy,
    /// lz4, zstd). Default none. `batch.size` counts uncompressed bytes.
    /// Batches are compressed on tokio's blocking threads, several at once.
    pub compression: Compression,
    /// `compression.gzip.level` (1-9, default 6), `compression.lz4.level`
    /// (1-17, default 9) or `compression.zstd.level` (-131072-22, default
    /// 3), KIP-390, for the codec chosen; `None` for its default. lz4 and
    /// zstd accept every level Kafka does but compress at one fixed level
    /// each (lz4_flex's only one; ruzstd's `Fastest`, near C zstd level -1),
    /// see [`Compression::check_level`]. A level out of range, or any level
    /// for none or snappy, makes [`Producer::new`](super::Producer::new)
    /// fail with [`Error::Config`].
    pub compression_level: Option<i32>,
    /// Whether the producer's Metadata requests let the broker create a
    /// topic it does not know (the broker's `auto.create.topics.enable`
    /// decides), as the Java producer's do. Default true. The stream layer
    /// and `skotch publish` set it to false (hop-client's behaviour: an
    /// unknown topic is an error).
    pub allow_auto_create_topics: bool,
    /// Called once per settled batch (see [`DeliveryCallback`]). Default
    /// none.
    pub on_delivery: Option<DeliveryCallback>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            enable_idempotence: None,
            max_in_flight: 5,
            retries: u32::MAX,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            delivery_timeout: Duration::from_millis(120_000),
            buffer_memory: 33_554_432,
            max_block: Duration::from_millis(60_000),
            max_request_size: 1_048_576,
            compression: Compression::None,
            compression_level: None,
            allow_auto_create_topics: true,
            on_delivery: None,
        }
    }
}

/// Java's limit on `max.in.flight.requests.per.connection` with
/// idempotence: the broker caches the last 5 batches per producer to
/// recognise duplicates.
pub const MAX_IN_FLIGHT_IDEMPOTENT: usize = 5;

impl ProducerConfig {
    /// Check the settings and decide idempotence (Java's
    /// `ProducerConfig.postProcessAndValidateIdempotenceConfigs`). Returns
    /// whether idempotence is on, and why it was turned off when it was
    /// off by default.
    ///
    /// Errors: [`Error::Config`] for `max_in_flight` 0, `batch_size` 0,
    /// a compression level the codec refuses, or idempotence asked for
    /// together with a conflicting setting (naming both properties).
    pub fn resolve_idempotence(&self) -> Result<(bool, Option<String>)> {
        if self.max_in_flight == 0 {
            return Err(Error::Config(
                "max.in.flight.requests.per.connection must be at least 1".into(),
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::Config("batch.size must be at least 1".into()));
        }
        self.compression
            .check_level(self.compression_level)
            .map_err(|e| Error::Config(e.to_string()))?;
        let conflict = if self.acks != Acks::All {
            Some(format!(
                "acks must be all (it is {}) with enable.idempotence",
                self.acks.java()
            ))
        } else if self.max_in_flight > MAX_IN_FLIGHT_IDEMPOTENT {
            Some(format!(
                "max.in.flight.requests.per.connection must be at most {MAX_IN_FLIGHT_IDEMPOTENT} \
                 (it is {}) with enable.idempotence",
                self.max_in_flight
            ))
        } else if self.retries == 0 {
            Some("retries must be above 0 with enable.idempotence".into())
        } else {
            None
        };
        match (self.enable_idempotence, conflict) {
            (Some(true), Some(c)) => Err(Error::Config(format!(
                "enable.idempotence=true conflicts with another setting: {c}"
            ))),
            (Some(true), None) => Ok((true, None)),
            (Some(false), _) => Ok((false, None)),
            (None, Some(c)) => Ok((
                false,
                Some(format!(
                    "idempotence is off: {c}; set enable.idempotence=false to silence this"
                )),
            )),
            (None, None) => Ok((true, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotence_defaults_and_conflicts() {
        let c = ProducerConfig::default();
        assert_eq!(c.resolve_idempotence().unwrap(), (true, None));
        for conflicting in [
            ProducerConfig {
                acks: Acks::Leader,
                ..Default::default()
            },
            ProducerConfig {
                max_in_flight: 6,
                ..Default::default()
            },
            ProducerConfig {
                retries: 0,
                ..Default::default()
            },
        ] {
            let (on, why) = conflicting.resolve_idempotence().unwrap();
            assert!(!on);
            assert!(why.unwrap().contains("idempotence is off"));
            let explicit = ProducerConfig {
                enable_idempotence: Some(true),
                ..conflicting
            };
            let e = explicit.resolve_idempotence().unwrap_err().to_string();
            assert!(e.contains("enable.idempotence"), "{e}");
            assert!(
                e.contains("acks") || e.contains("max.in.flight") || e.contains("retries"),
                "{e}"
            );
        }
        let off = ProducerConfig {
            enable_idempotence: Some(false),
            acks: Acks::None,
            ..Default::default()
        };
        assert_eq!(off.resolve_idempotence().unwrap(), (false, None));
        let zero = ProducerConfig {
            max_in_flight: 0,
            ..Default::default()
        };
        assert!(zero.resolve_idempotence().is_err());
        let level = ProducerConfig {
            compression: Compression::Gzip,
            compression_level: Some(42),
            ..Default::default()
        };
        assert!(level.resolve_idempotence().is_err());
    }
}
