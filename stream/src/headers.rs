//! Message headers as users give them (a map, or a list that may repeat a
//! key) and the standard headers hop-client adds to every message it
//! writes.
//!
//! Standard headers, byte for byte as hop-client writes them:
//! - `_id`: a random (v4) UUID as its 16 raw bytes (`uuid4().bytes`);
//! - `_sender`: the authenticated username, UTF-8, only when authenticated;
//! - `_test`: `true`, only for test messages (readers check presence only);
//! - `_format`: the message model's name, UTF-8 (`json`, `blob`).
//!
//! Names starting with `_` are reserved for these; users may not set them.

use bytes::Bytes;

/// A header list given by the user, in order; keys may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Bytes)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a header.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Bytes>) {
        self.0.push((key.into(), value.into()));
    }

    /// Refuse reserved keys (starting with `_`), naming the first one.
    pub fn check_user_keys(&self) -> Result<(), String> {
        match self.0.iter().find(|(k, _)| k.starts_with('_')) {
            Some((k, _)) => Err(format!(
                "header {k:?} is reserved: names starting with '_' are for the standard headers (_id, _sender, _test, _format)"
            )),
            None => Ok(()),
        }
    }
}

impl<K: Into<String>, V: Into<Bytes>> From<Vec<(K, V)>> for Headers {
    fn from(v: Vec<(K, V)>) -> Self {
        Self(v.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<String>, V: Into<Bytes>> From<std::collections::BTreeMap<K, V>> for Headers {
    fn from(m: std::collections::BTreeMap<K, V>) -> Self {
        Self(m.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<String> + Ord, V: Into<Bytes>> From<std::collections::HashMap<K, V>> for Headers {
    /// Map headers, sorted by key so the order on the wire is stable.
    fn from(m: std::collections::HashMap<K, V>) -> Self {
        let mut v: Vec<(K, V)> = m.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into()
    }
}

/// Header names hop-client reserves.
pub mod standard {
    /// Message id.
    pub const ID: &str = "_id";
    /// Sender username.
    pub const SENDER: &str = "_sender";
    /// Test marker.
    pub const TEST: &str = "_test";
    /// Message model name.
    pub const FORMAT: &str = "_format";
}

/// The full header list for a message: the user's headers, then `_id`,
/// `_sender` (if `sender`), `_test` (if `test`), `_format`.
pub fn with_standard_headers(
    user: &Headers,
    id: uuid::Uuid,
    sender: Option<&str>,
    test: bool,
    format: &str,
) -> Vec<(String, Bytes)> {
    let mut out = user.0.clone();
    out.push((standard::ID.into(), Bytes::copy_from_slice(id.as_bytes())));
    if let Some(s) = sender {
        out.push((
            standard::SENDER.into(),
            Bytes::copy_from_slice(s.as_bytes()),
        ));
    }
    if test {
        out.push((standard::TEST.into(), Bytes::from_static(b"true")));
    }
    out.push((
        standard::FORMAT.into(),
        Bytes::copy_from_slice(format.as_bytes()),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_are_refused() {
        let h: Headers = vec![("ok", "1"), ("_id", "x")].into();
        assert!(h.check_user_keys().unwrap_err().contains("\"_id\""));
        let h: Headers = vec![("a", "1"), ("a", "2")].into();
        assert!(h.check_user_keys().is_ok());
    }

    #[test]
    fn standard_headers_follow_user_headers() {
        let h: Headers = vec![("k", "1"), ("k", "2")].into();
        let id = uuid::Uuid::from_bytes([7; 16]);
        let all = with_standard_headers(&h, id, Some("alice"), true, "json");
        let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["k", "k", "_id", "_sender", "_test", "_format"]);
        assert_eq!(all[2].1.as_ref(), &[7; 16]);
        assert_eq!(all[5].1.as_ref(), b"json");
        let none = with_standard_headers(&Headers::new(), id, None, false, "blob");
        assert_eq!(none.len(), 2);
    }

    #[test]
    fn maps_are_sorted() {
        let m: std::collections::HashMap<&str, &str> = [("b", "2"), ("a", "1")].into();
        let h: Headers = m.into();
        assert_eq!(h.0[0].0, "a");
    }
}
