//! What a reader knows about a message besides its content, as hop-client's
//! `read(metadata=True)` exposes it.

use bytes::Bytes;

/// A message's Kafka metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Topic it came from.
    pub topic: String,
    /// Partition it came from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Key; `None` for a null key.
    pub key: Option<Bytes>,
    /// All headers in order, the standard ones included; duplicates kept.
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl Metadata {
    /// The first value of header `key`.
    pub fn header(&self, key: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_ref())
    }

    /// Every value of header `key`, in order.
    pub fn header_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = Option<&'a Bytes>> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The `_id` header as a UUID, when present and well formed.
    pub fn message_id(&self) -> Option<uuid::Uuid> {
        self.header(crate::headers::standard::ID)
            .and_then(|b| uuid::Uuid::from_slice(b).ok())
    }

    /// True when the `_test` header is present.
    pub fn is_test(&self) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k == crate::headers::standard::TEST)
    }
}
