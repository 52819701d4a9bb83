//! What a reader knows about a message besides its content, as hop-client's
//! `read(metadata=True)` exposes it (`hop.io.Metadata`).

use std::sync::Arc;

use bytes::Bytes;
use skotch_client::protocol::record::ByteString;

use crate::headers;

/// A received message's Kafka metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The topic it came from (shared by the records of a topic).
    pub topic: Arc<str>,
    /// The partition it came from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The record's timestamp in ms since the Unix epoch: the producer's
    /// CreateTime or the broker's LogAppendTime, as the topic's
    /// `message.timestamp.type` says; -1 when the record has none (Kafka's
    /// `RecordBatch.NO_TIMESTAMP`).
    pub timestamp: i64,
    /// The record key; `None` for a null key.
    pub key: Option<Bytes>,
    /// Every header in record order, the standard ones included, duplicate
    /// keys kept; a value is `None` when it is null on the wire. Keys
    /// deref to `&str` and share the fetched bytes.
    pub headers: Vec<(ByteString, Option<Bytes>)>,
}

impl Metadata {
    /// The value of the first header named `key`; `None` when there is no
    /// such header or its value is null ([`Metadata::header_entry`] tells
    /// the two apart). Keys compare exactly (case-sensitive).
    pub fn header(&self, key: &str) -> Option<&Bytes> {
        self.header_entry(key).and_then(Option::as_ref)
    }

    /// The first header named `key`: `None` when absent, `Some(None)` when
    /// its value is null.
    pub fn header_entry(&self, key: &str) -> Option<&Option<Bytes>> {
        self.headers
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }

    /// Every value of header `key`, in record order (`None` for null).
    pub fn header_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = Option<&'a Bytes>> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| &**k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// True when at least one header is named `key`.
    pub fn has_header(&self, key: &str) -> bool {
        self.header_entry(key).is_some()
    }

    /// The `_id` header as a UUID (see [`headers::message_id`]).
    pub fn message_id(&self) -> Option<uuid::Uuid> {
        headers::message_id(&self.headers)
    }

    /// True when the message is marked as a test (`_test` present).
    pub fn is_test(&self) -> bool {
        headers::is_test(&self.headers)
    }

    /// The `_sender` header: the writer's authenticated username, as the
    /// writer claims it.
    pub fn sender(&self) -> Option<&str> {
        headers::sender(&self.headers)
    }

    /// The `_format` header value (see [`headers::format`]).
    pub fn format(&self) -> Option<&[u8]> {
        headers::format(&self.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(headers: Vec<(&str, Option<&'static [u8]>)>) -> Metadata {
        Metadata {
            topic: "t".into(),
            partition: 0,
            offset: 7,
            timestamp: 1_700_000_000_000,
            key: None,
            headers: headers
                .into_iter()
                .map(|(k, v)| (ByteString::from(k), v.map(Bytes::from_static)))
                .collect(),
        }
    }

    #[test]
    fn lookups() {
        let m = md(vec![
            ("dup", Some(b"1")),
            ("null", None),
            ("dup", None),
            ("dup", Some(b"3")),
            ("Dup", Some(b"x")),
        ]);
        assert_eq!(m.header("dup").map(|b| &b[..]), Some(&b"1"[..]));
        let all: Vec<_> = m.header_all("dup").map(|v| v.map(|b| &b[..])).collect();
        assert_eq!(all, [Some(&b"1"[..]), None, Some(&b"3"[..])]);
        assert_eq!(m.header("null"), None);
        assert_eq!(m.header_entry("null"), Some(&None));
        assert!(m.has_header("null"));
        assert_eq!(m.header("missing"), None);
        assert_eq!(m.header_entry("missing"), None);
        assert!(!m.has_header("missing"));
        assert_eq!(m.header_all("missing").count(), 0);
    }

    #[test]
    fn standard_headers() {
        let id = uuid::Uuid::new_v4();
        let mut m = md(vec![
            ("_sender", Some(b"alice")),
            ("_test", Some(b"true")),
            ("_format", Some(b"json")),
        ]);
        m.headers
            .push(("_id".into(), Some(Bytes::copy_from_slice(id.as_bytes()))));
        assert_eq!(m.message_id(), Some(id));
        assert!(m.is_test());
        assert_eq!(m.sender(), Some("alice"));
        assert_eq!(m.format(), Some(&b"json"[..]));
        let plain = md(vec![]);
        assert_eq!(plain.message_id(), None);
        assert!(!plain.is_test());
        assert_eq!(plain.sender(), None);
        assert_eq!(plain.format(), None);
    }
}
