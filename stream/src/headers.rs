//! Message headers: the user's own (a map, or a list that may repeat a key)
//! and the standard headers hop-client adds to every message it writes.
//!
//! # Standard headers, byte for byte as hop-client writes them
//!
//! hop-client's `Producer.pack` (hop/io.py, v0.12) appends, after the
//! user's headers and in this order:
//!
//! | key        | value on the wire                                   | when                         |
//! |------------|-----------------------------------------------------|------------------------------|
//! | `_id`      | the 16 raw bytes of a random UUID v4 (`uuid.uuid4().bytes`, RFC 4122 byte order) | always |
//! | `_sender`  | the credential's username, UTF-8                   | only when authenticated      |
//! | `_test`    | `true` (4 bytes, [`TEST_VALUE`])                    | only for test messages       |
//! | `_format`  | the model's name, UTF-8 (`json`, `blob`, ...)        | always                       |
//!
//! [`with_standard_headers`] builds exactly that list. On read, hop treats
//! each as optional: `_test` counts by presence whatever its value
//! ([`is_test`]); `_id` is read back with `uuid.UUID(bytes=...)`
//! ([`message_id`]).
//!
//! # Reserved names
//!
//! Hopskotch reserves every header name starting with `_`. hop-client only
//! asks users not to use them; skotch enforces it ([`Headers::validate`]),
//! so a user header can never be mistaken for a standard one.
//!
//! # Order
//!
//! A list keeps its order and its duplicate keys. A [`BTreeMap`] gives key
//! order. A [`HashMap`] has no order of its own, so it is sorted by key to
//! keep the wire form reproducible (Python dicts keep insertion order; Rust's
//! `HashMap` cannot).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

/// Header names hop-client reserves and sets itself.
pub mod standard {
    /// Message id: a UUID v4 as 16 raw bytes.
    pub const ID: &str = "_id";
    /// The authenticated username of the writer, UTF-8.
    pub const SENDER: &str = "_sender";
    /// Present on test messages (any value; hop writes `true`).
    pub const TEST: &str = "_test";
    /// The message model's name, UTF-8 (`json`, `blob`, ...).
    pub const FORMAT: &str = "_format";
}

/// The value hop-client writes in the `_test` header.
pub const TEST_VALUE: &[u8] = b"true";

/// The prefix reserved for standard headers.
pub const RESERVED_PREFIX: char = '_';

/// A user header list, in order; keys may repeat.
///
/// Build it from a `Vec<(K, V)>`, an array of pairs, a [`BTreeMap`], a
/// [`HashMap`] (sorted by key), an iterator of pairs, or with
/// [`Headers::push`]. Keys convert with `Into<String>`, values with
/// `Into<Bytes>` (`&'static str`, `String`, `Vec<u8>`, `Bytes`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Bytes)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header (an existing key is kept: duplicates are allowed).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Bytes>) {
        self.0.push((key.into(), value.into()));
    }

    /// Number of headers, duplicates counted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The headers in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Checks that no key is reserved (starts with `_`).
    ///
    /// Errors: [`HeaderError::Reserved`] naming the first offending key and
    /// its index in the list.
    pub fn validate(&self) -> Result<(), HeaderError> {
        match self
            .0
            .iter()
            .enumerate()
            .find(|(_, (k, _))| k.starts_with(RESERVED_PREFIX))
        {
            Some((index, (key, _))) => Err(HeaderError::Reserved {
                key: key.clone(),
                index,
            }),
            None => Ok(()),
        }
    }

    /// The headers as the `Vec` they wrap.
    pub fn into_vec(self) -> Vec<(String, Bytes)> {
        self.0
    }
}

/// A user header that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The key starts with `_`, which Hopskotch reserves for its standard
    /// headers (`_id`, `_sender`, `_test`, `_format`).
    #[error("header {key:?} (header #{n}) is reserved: names starting with '_' belong to the standard headers (_id, _sender, _test, _format)", n = index + 1)]
    Reserved {
        /// The key as given.
        key: String,
        /// Its position in the header list, from 0.
        index: usize,
    },
}

impl<K: Into<String>, V: Into<Bytes>> From<Vec<(K, V)>> for Headers {
    fn from(v: Vec<(K, V)>) -> Self {
        v.into_iter().collect()
    }
}

impl<K: Into<String>, V: Into<Bytes>, const N: usize> From<[(K, V); N]> for Headers {
    fn from(a: [(K, V); N]) -> Self {
        a.into_iter().collect()
    }
}

impl<K: Into<String>, V: Into<Bytes>> From<BTreeMap<K, V>> for Headers {
    fn from(m: BTreeMap<K, V>) -> Self {
        m.into_iter().collect()
    }
}

impl<K: Into<String> + Ord, V: Into<Bytes>, S> From<HashMap<K, V, S>> for Headers {
    /// Map headers, sorted by key so that the order on the wire does not
    /// depend on the hasher.
    fn from(m: HashMap<K, V, S>) -> Self {
        let mut v: Vec<(K, V)> = m.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into()
    }
}

impl<K: Into<String>, V: Into<Bytes>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<Bytes>> Extend<(K, V)> for Headers {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        self.0
            .extend(iter.into_iter().map(|(k, v)| (k.into(), v.into())));
    }
}

impl IntoIterator for Headers {
    type Item = (String, Bytes);
    type IntoIter = std::vec::IntoIter<(String, Bytes)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The full header list for a message, in hop-client's order: the user's
/// headers, then `_id` (16 raw UUID bytes), `_sender` (if `sender`),
/// `_test` = `true` (if `test`), `_format` = `format`.
///
/// Does not check the user's keys: call [`Headers::validate`] first.
pub fn with_standard_headers(
    user: &Headers,
    id: uuid::Uuid,
    sender: Option<&str>,
    test: bool,
    format: &str,
) -> Vec<(String, Bytes)> {
    let mut out = Vec::with_capacity(user.len() + 4);
    out.extend(user.0.iter().cloned());
    out.push((standard::ID.into(), Bytes::copy_from_slice(id.as_bytes())));
    if let Some(s) = sender {
        out.push((
            standard::SENDER.into(),
            Bytes::copy_from_slice(s.as_bytes()),
        ));
    }
    if test {
        out.push((standard::TEST.into(), Bytes::from_static(TEST_VALUE)));
    }
    out.push((
        standard::FORMAT.into(),
        Bytes::copy_from_slice(format.as_bytes()),
    ));
    out
}

// Read side: received headers are `(key, value)` pairs whose value may be
// null (Kafka allows null header values).

fn first<'a, K: AsRef<str>>(
    headers: &'a [(K, Option<Bytes>)],
    key: &str,
) -> Option<&'a Option<Bytes>> {
    headers
        .iter()
        .find(|(k, _)| k.as_ref() == key)
        .map(|(_, v)| v)
}

/// True when a `_test` header is present, whatever its value (hop-client's
/// `Consumer.is_test`).
pub fn is_test<K: AsRef<str>>(headers: &[(K, Option<Bytes>)]) -> bool {
    headers.iter().any(|(k, _)| k.as_ref() == standard::TEST)
}

/// The first `_id` header as a UUID: 16 raw bytes (hop-client's form), or,
/// leniently, the 36-character text form. `None` when absent, null or
/// neither form.
pub fn message_id<K: AsRef<str>>(headers: &[(K, Option<Bytes>)]) -> Option<uuid::Uuid> {
    let value = first(headers, standard::ID)?.as_ref()?;
    if let Ok(id) = uuid::Uuid::from_slice(value) {
        return Some(id);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| uuid::Uuid::try_parse(s).ok())
}

/// The first `_sender` header as text; `None` when absent, null or not UTF-8.
pub fn sender<K: AsRef<str>>(headers: &[(K, Option<Bytes>)]) -> Option<&str> {
    first(headers, standard::SENDER)?
        .as_deref()
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The value of the first `_format` header, the input of
/// [`Message::deserialize`](crate::models::Message::deserialize). A null
/// value counts as absent (it names no format).
pub fn format<K: AsRef<str>>(headers: &[(K, Option<Bytes>)]) -> Option<&[u8]> {
    first(headers, standard::FORMAT)?.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(h: Vec<(String, Bytes)>) -> Vec<(String, Option<Bytes>)> {
        h.into_iter().map(|(k, v)| (k, Some(v))).collect()
    }

    #[test]
    fn reserved_keys_are_refused_by_name() {
        let h: Headers = vec![("ok", "1"), ("_id", "x"), ("_other", "y")].into();
        let e = h.validate().unwrap_err();
        assert_eq!(
            e,
            HeaderError::Reserved {
                key: "_id".into(),
                index: 1
            }
        );
        assert!(e.to_string().contains("\"_id\""), "{e}");
        // Any underscore name, not only the standard ones.
        let h: Headers = [("_", "")].into();
        assert!(h.validate().is_err());
        // Underscores elsewhere are fine; so are duplicates and empty keys.
        let h: Headers = vec![("a_b", "1"), ("a_b", "2"), ("", "3")].into();
        assert!(h.validate().is_ok());
    }

    #[test]
    fn every_input_shape_converts() {
        let list: Headers = vec![("k", "1"), ("k", "2")].into();
        assert_eq!(list.len(), 2);
        let arr: Headers = [("k", b"\x00".to_vec())].into();
        assert_eq!(arr.0[0].1.as_ref(), b"\x00");
        let bt: Headers = BTreeMap::from([("b", "2"), ("a", "1")]).into();
        assert_eq!(bt.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["a", "b"]);
        let hm: Headers = HashMap::from([("b", "2"), ("a", "1"), ("c", "3")]).into();
        assert_eq!(
            hm.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let mut it: Headers = [("x".to_string(), String::from("v"))].into_iter().collect();
        it.extend([("y", Bytes::from_static(b"w"))]);
        it.push("z", "u");
        assert_eq!(
            it.into_vec(),
            vec![
                ("x".to_string(), Bytes::from_static(b"v")),
                ("y".to_string(), Bytes::from_static(b"w")),
                ("z".to_string(), Bytes::from_static(b"u")),
            ]
        );
    }

    #[test]
    fn standard_headers_in_hop_order_and_form() {
        let h: Headers = vec![("k", "1"), ("k", "2")].into();
        let id = uuid::Uuid::from_bytes([7; 16]);
        let all = with_standard_headers(&h, id, Some("alice"), true, "json");
        let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["k", "k", "_id", "_sender", "_test", "_format"]);
        assert_eq!(all[2].1.as_ref(), &[7; 16]);
        assert_eq!(all[3].1.as_ref(), b"alice");
        assert_eq!(all[4].1.as_ref(), b"true");
        assert_eq!(all[5].1.as_ref(), b"json");

        let none = with_standard_headers(&Headers::new(), id, None, false, "blob");
        let keys: Vec<&str> = none.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["_id", "_format"]);
    }

    #[test]
    fn v4_id_is_16_raw_bytes_and_reads_back() {
        let id = uuid::Uuid::new_v4();
        let all = with_standard_headers(&Headers::new(), id, None, false, "blob");
        assert_eq!(all[0].1.len(), 16);
        assert_eq!(all[0].1[6] >> 4, 4, "version nibble");
        assert_eq!(all[0].1[8] >> 6, 0b10, "RFC 4122 variant");
        let r = received(all);
        assert_eq!(message_id(&r), Some(id));
        assert_eq!(format(&r), Some(&b"blob"[..]));
        assert!(!is_test(&r));
        assert_eq!(sender(&r), None);
    }

    #[test]
    fn read_side_helpers() {
        let id = uuid::Uuid::new_v4();
        let r = vec![
            ("_test".to_string(), None),
            ("_id".to_string(), Some(Bytes::from(id.to_string()))),
            ("_sender".to_string(), Some(Bytes::from_static(b"bob"))),
            ("_format".to_string(), None),
            ("_format".to_string(), Some(Bytes::from_static(b"json"))),
        ];
        assert!(is_test(&r), "presence counts, even with a null value");
        assert_eq!(message_id(&r), Some(id), "text form accepted");
        assert_eq!(sender(&r), Some("bob"));
        assert_eq!(format(&r), None, "the first _format decides; null = absent");
        let bad = vec![("_id".to_string(), Some(Bytes::from_static(b"short")))];
        assert_eq!(message_id(&bad), None);
        assert_eq!(message_id::<String>(&[]), None);
    }
}
