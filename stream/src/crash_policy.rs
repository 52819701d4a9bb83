//! What the [`Engine`](crate::Engine) does when a handler fails on a
//! record: stop the engine, restart the handler after a backoff, or retry
//! the record and then send it to a dead-letter topic.
//!
//! kstreams leaves a crashed stream stopped and names "re-try" and "stream
//! engine stops on stream crash" as the policies to come; these are those
//! two plus the dead-letter queue of Kafka Connect (KIP-298,
//! `errors.tolerance=all` with `errors.deadletterqueue.topic.name`).
//!
//! Whatever the policy, a record counts as done (and the group's commits
//! may pass it) only when its handler returned `Ok` and every output it
//! emitted was acknowledged by the broker, or when it was dead-lettered
//! and the dead-letter write was acknowledged. A record that failed is
//! never marked done: its partition's committed offset stays at it, so the
//! next reader (a restarted handler, another member) gets it again.
//!
//! An *attempt* fails when the codec cannot decode the value, the handler
//! returns `Err`, an output cannot be encoded or is not acknowledged.

use std::time::Duration;

use bytes::Bytes;
use skotch_client::backoff::Backoff;

use crate::headers::Headers;
use crate::metadata::Metadata;

/// A handler's crash policy. Default [`CrashPolicy::Stop`] (kstreams: a
/// crashed stream stops consuming; here the whole engine stops).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CrashPolicy {
    /// Stop the engine: the failed handler stops reading, lets its other
    /// in-flight records finish, commits what is done (the failed record's
    /// partition stays at or before it) and leaves its group; the other
    /// handlers shut down gracefully; [`Engine::run`](crate::Engine::run)
    /// returns [`EngineError::Handler`](crate::EngineError::Handler).
    #[default]
    Stop,
    /// Restart the handler: as `Stop` for this handler only (finish
    /// in-flight records, commit what is done, leave the group), then wait
    /// a backoff and open its stream again; reading resumes at the
    /// committed offsets, that is at the failed record.
    Restart(RestartOptions),
    /// Try each record up to `attempts` times, then write it to a
    /// dead-letter topic with headers saying why, and go on. A per-record
    /// handler only (a whole-stream handler cannot say which record failed:
    /// the engine refuses the combination when it starts).
    DeadLetter(DeadLetterOptions),
}

/// How [`CrashPolicy::Restart`] waits between restarts: jittered
/// exponential backoff (the client's KIP-580 schedule: the delay doubles
/// per consecutive restart from `initial_delay` up to `max_delay`, each
/// spread by ±20 %), the shape of Kubernetes' CrashLoopBackOff with
/// shorter delays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartOptions {
    /// The delay before the first restart. Default 1 000 ms.
    pub initial_delay: Duration,
    /// The cap of the delay. Default 60 000 ms.
    pub max_delay: Duration,
    /// A handler that ran this long since its last restart without failing
    /// starts again from `initial_delay` (Kubernetes resets after 10
    /// minutes of running). Default 60 000 ms.
    pub reset_after: Duration,
    /// Give up after this many consecutive restarts: the next failure
    /// stops the engine as [`CrashPolicy::Stop`]. Default `None`
    /// (restart forever).
    pub max_restarts: Option<u32>,
}

impl Default for RestartOptions {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(1_000),
            max_delay: Duration::from_millis(60_000),
            reset_after: Duration::from_millis(60_000),
            max_restarts: None,
        }
    }
}

impl RestartOptions {
    /// The wait before restart number `restart` (0 = the first after a
    /// run that lasted `reset_after` or more), given a uniform random
    /// `unit` in `[0, 1)`; `None` when `max_restarts` says to stop.
    pub fn delay(&self, restart: u32, unit: f64) -> Option<Duration> {
        if self.max_restarts.is_some_and(|max| restart >= max) {
            return None;
        }
        Some(Backoff::new(self.initial_delay, self.max_delay).delay(restart, unit))
    }

    /// The index of the restart after a failure (the argument of
    /// [`delay`](Self::delay)): 0 for the first failure, or when the run
    /// that failed lasted `reset_after` or more; else one more than the
    /// `previous` restart's.
    pub fn restart_index(&self, previous: Option<u32>, ran: Duration) -> u32 {
        match previous {
            Some(p) if ran < self.reset_after => p.saturating_add(1),
            _ => 0,
        }
    }
}

/// [`CrashPolicy::DeadLetter`]'s settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterOptions {
    /// The dead-letter topic, written through the engine's producer (so on
    /// the engine's sink brokers). It must exist.
    pub topic: String,
    /// Attempts per record before it is dead-lettered, the first included
    /// (at least 1). Default 3.
    pub attempts: u32,
    /// The wait before the first retry; it doubles per retry up to
    /// `max_retry_delay`, ±20 % jitter. Default 100 ms (Java's
    /// `retry.backoff.ms`).
    pub retry_delay: Duration,
    /// The cap of the retry wait. Default 1 000 ms (Java's
    /// `retry.backoff.max.ms`).
    pub max_retry_delay: Duration,
}

impl DeadLetterOptions {
    /// Dead-letter to `topic` with the default attempts and delays.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            attempts: 3,
            retry_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_millis(1_000),
        }
    }

    /// Set the attempts per record.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }
}

/// What to do after attempt number `attempt` (from 1) of a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Stop the engine.
    Stop,
    /// End this run of the handler; the engine restarts it.
    Restart,
    /// Try the record again after this delay.
    Retry(Duration),
    /// Write the record to the dead-letter topic.
    DeadLetter,
}

impl CrashPolicy {
    /// The decision after attempt `attempt` (1 = the first) of a record
    /// failed, given a uniform random `unit` in `[0, 1)` for the jitter.
    pub fn decide(&self, attempt: u32, unit: f64) -> Decision {
        match self {
            CrashPolicy::Stop => Decision::Stop,
            CrashPolicy::Restart(_) => Decision::Restart,
            CrashPolicy::DeadLetter(d) => {
                if attempt >= d.attempts.max(1) {
                    Decision::DeadLetter
                } else {
                    let b = Backoff::new(d.retry_delay, d.max_retry_delay);
                    Decision::Retry(b.delay(attempt.saturating_sub(1), unit))
                }
            }
        }
    }
}

/// Names of the headers a dead-lettered record carries besides its own.
///
/// Kafka Connect's dead-letter context headers (KIP-298,
/// `__connect.errors.topic`, `...partition`, `...offset`,
/// `...exception.message`) without the leading underscores, which
/// Hopskotch reserves for its standard headers. Values are UTF-8 text
/// (numbers in decimal).
pub mod dead_letter_headers {
    /// Why the last attempt failed (the error's text).
    pub const ERROR: &str = "dlq.error";
    /// The topic the record was read from.
    pub const TOPIC: &str = "dlq.topic";
    /// Its partition.
    pub const PARTITION: &str = "dlq.partition";
    /// Its offset.
    pub const OFFSET: &str = "dlq.offset";
    /// How many attempts failed.
    pub const ATTEMPTS: &str = "dlq.attempts";
    /// The name of the handler that failed.
    pub const HANDLER: &str = "dlq.handler";
}

/// The why-headers of a record dead-lettered by `handler` after `attempts`
/// failed attempts, the last with `error`. The record's own headers come
/// first on the dead-letter record; these follow.
pub fn dead_letter_headers(
    handler: &str,
    metadata: &Metadata,
    attempts: u32,
    error: &str,
) -> Headers {
    use dead_letter_headers as h;
    let mut out = Headers(Vec::with_capacity(6));
    out.push(h::ERROR, Bytes::copy_from_slice(error.as_bytes()));
    out.push(h::TOPIC, Bytes::copy_from_slice(metadata.topic.as_bytes()));
    out.push(h::PARTITION, metadata.partition.to_string());
    out.push(h::OFFSET, metadata.offset.to_string());
    out.push(h::ATTEMPTS, attempts.to_string());
    out.push(h::HANDLER, Bytes::copy_from_slice(handler.as_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn restart_backoff_doubles_caps_and_resets() {
        let r = RestartOptions::default();
        assert_eq!(r.delay(0, 0.5), Some(Duration::from_millis(1_000)));
        assert_eq!(r.delay(1, 0.5), Some(Duration::from_millis(2_000)));
        assert_eq!(r.delay(5, 0.5), Some(Duration::from_millis(32_000)));
        assert_eq!(r.delay(6, 0.5), Some(Duration::from_millis(60_000)));
        assert_eq!(r.delay(60, 0.99), Some(Duration::from_millis(60_000)));
        assert_eq!(r.delay(0, 0.0), Some(Duration::from_millis(800)));
        assert!(r.delay(0, 1.0).unwrap() <= Duration::from_millis(1_200));
        assert_eq!(r.restart_index(None, Duration::ZERO), 0);
        assert_eq!(r.restart_index(Some(3), Duration::from_secs(1)), 4);
        assert_eq!(r.restart_index(Some(3), Duration::from_secs(60)), 0);
        assert_eq!(r.restart_index(Some(u32::MAX), Duration::ZERO), u32::MAX);
        let limited = RestartOptions {
            max_restarts: Some(2),
            ..Default::default()
        };
        assert!(limited.delay(1, 0.5).is_some());
        assert_eq!(limited.delay(2, 0.5), None);
    }

    #[test]
    fn policy_decisions() {
        assert_eq!(CrashPolicy::default(), CrashPolicy::Stop);
        assert_eq!(CrashPolicy::Stop.decide(1, 0.5), Decision::Stop);
        let restart = CrashPolicy::Restart(RestartOptions::default());
        assert_eq!(restart.decide(1, 0.5), Decision::Restart);
        let dl = CrashPolicy::DeadLetter(DeadLetterOptions::new("dlq"));
        assert_eq!(
            dl.decide(1, 0.5),
            Decision::Retry(Duration::from_millis(100))
        );
        assert_eq!(
            dl.decide(2, 0.5),
            Decision::Retry(Duration::from_millis(200))
        );
        assert_eq!(dl.decide(3, 0.5), Decision::DeadLetter);
        assert_eq!(dl.decide(99, 0.5), Decision::DeadLetter);
        // At least one attempt, whatever the setting.
        let zero = CrashPolicy::DeadLetter(DeadLetterOptions::new("dlq").attempts(0));
        assert_eq!(zero.decide(1, 0.5), Decision::DeadLetter);
        let d = DeadLetterOptions::new("x");
        assert_eq!(d.attempts, 3);
        assert_eq!(d.retry_delay, Duration::from_millis(100));
        assert_eq!(d.max_retry_delay, Duration::from_millis(1_000));
    }

    #[test]
    fn dead_letter_headers_say_why_and_are_not_reserved() {
        let md = Metadata {
            topic: Arc::from("in"),
            partition: 2,
            offset: 41,
            timestamp: -1,
            key: None,
            headers: Vec::new(),
        };
        let h = dead_letter_headers("enrich", &md, 3, "boom");
        h.validate().expect("no reserved names");
        let got: Vec<(&str, &[u8])> = h.iter().map(|(k, v)| (k, &v[..])).collect();
        assert_eq!(
            got,
            vec![
                ("dlq.error", &b"boom"[..]),
                ("dlq.topic", b"in"),
                ("dlq.partition", b"2"),
                ("dlq.offset", b"41"),
                ("dlq.attempts", b"3"),
                ("dlq.handler", b"enrich"),
            ]
        );
    }
}
