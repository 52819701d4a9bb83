//! Handler outputs (slipstream's `yield` into a handler's sinks) and the
//! engine's one producer that writes them.
//!
//! A handler returns zero or more [`Output`]s per record (any
//! `IntoIterator`: `None`, `Some(o)`, `[a, b]`, a `Vec`). Each goes to its
//! own topic, or to the handler's sink topic (the topic of the sink URL
//! given at registration), encoded with the handler's sink codec and
//! written with hop's standard headers (`_id`, `_sender`, `_test`,
//! `_format`) after the output's own, as
//! [`StreamWriter::write_with`](crate::StreamWriter::write_with) writes
//! them. The engine sends a record's outputs only after its handler
//! returned `Ok` (outputs of a failed attempt are dropped) and marks the
//! record done once every output is acknowledged.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use skotch_client::{DeliveryFuture, Header, Producer, ProducerRecord};

use crate::codec::Codec;
use crate::headers::{with_standard_headers, Headers};
use crate::metadata::Metadata;

/// One value a handler emits.
#[derive(Debug, Clone, PartialEq)]
pub struct Output<V> {
    /// The value, encoded with the handler's sink codec.
    pub value: V,
    /// The topic; `None` for the handler's sink topic.
    pub topic: Option<String>,
    /// The record key (decides the partition); default none.
    pub key: Option<Bytes>,
    /// User headers (no names starting with `_`: hop reserves them).
    pub headers: Headers,
    /// Mark the output as a test message (`_test`). Default false.
    pub test: bool,
}

impl<V> Output<V> {
    /// `value` for the handler's sink topic.
    pub fn new(value: V) -> Self {
        Self {
            value,
            topic: None,
            key: None,
            headers: Headers::new(),
            test: false,
        }
    }

    /// `value` for `topic`.
    pub fn to(topic: impl Into<String>, value: V) -> Self {
        Self {
            topic: Some(topic.into()),
            ..Self::new(value)
        }
    }

    /// Set the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Add a user header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(key, value);
        self
    }
}

/// Why an output could not be sent.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum SendError {
    #[error("output has no topic and the handler has no sink topic")]
    NoTopic,
    #[error(transparent)]
    Header(#[from] crate::headers::HeaderError),
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
    #[error(transparent)]
    Client(#[from] skotch_client::Error),
}

/// The engine's one producer, shared by every handler.
#[derive(Debug)]
pub(crate) struct SharedSink {
    pub(crate) producer: Producer,
    /// The `_sender` header (the authenticated user), if any.
    pub(crate) sender: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SharedSink {
    /// Encode and queue one output; the future settles when the broker
    /// acknowledges it.
    pub(crate) async fn send<S: Codec>(
        &self,
        codec: &S,
        default_topic: Option<&str>,
        output: Output<S::Value>,
    ) -> Result<DeliveryFuture, SendError> {
        output.headers.validate()?;
        let topic = match (output.topic, default_topic) {
            (Some(t), _) => t,
            (None, Some(t)) => t.to_string(),
            (None, None) => return Err(SendError::NoTopic),
        };
        let value = codec.encode(&output.value)?;
        let headers = with_standard_headers(
            &output.headers,
            uuid::Uuid::new_v4(),
            self.sender.as_deref(),
            output.test,
            codec.format_name(&output.value),
        )
        .into_iter()
        .map(|(k, v)| Header::new(k, v))
        .collect();
        let record = ProducerRecord {
            topic,
            partition: None,
            key: output.key,
            value: Some(value),
            headers,
            timestamp: Some(now_ms()),
        };
        Ok(self.producer.send(record).await?)
    }

    /// Queue the dead-letter copy of a record: its key, value and headers
    /// as read, then `why`.
    pub(crate) async fn dead_letter(
        &self,
        topic: &str,
        metadata: &Metadata,
        payload: Option<Bytes>,
        why: Headers,
    ) -> Result<DeliveryFuture, SendError> {
        let mut headers = Vec::with_capacity(metadata.headers.len() + why.len());
        headers.extend(metadata.headers.iter().map(|(k, v)| Header {
            key: k.clone(),
            value: v.clone(),
        }));
        headers.extend(why.into_iter().map(|(k, v)| Header::new(k, v)));
        let record = ProducerRecord {
            topic: topic.to_string(),
            partition: None,
            key: metadata.key.clone(),
            value: payload,
            headers,
            timestamp: Some(now_ms()),
        };
        Ok(self.producer.send(record).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_builders() {
        let o = Output::to("t", 5).key("k").header("a", "b");
        assert_eq!(o.topic.as_deref(), Some("t"));
        assert_eq!(o.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(o.headers.len(), 1);
        assert!(!o.test);
        assert_eq!(Output::new(1).topic, None);
    }
}
