//! hop-client's `ExternalMessage` model (`_format: external`): a message
//! that only points at its content, stored elsewhere under a URL (hop's
//! large-message store, the Hopskotch archive).
//!
//! What hop-client 0.13 does (`hop/models.py`, class `ExternalMessage`, a
//! dataclass with one field, `url`):
//!
//! - **Writing** (`MessageModel.__bytes__`): `json.dumps({"url": url})`, so
//!   the value is `{"url": "..."}` in Python's JSON spelling.
//! - **Reading** (`MessageModel.deserialize`): `ExternalMessage(**json)`,
//!   so the value must be a JSON object whose only key is `url` (another
//!   key is a `TypeError`). skotch also requires the URL to be a string
//!   (hop's dataclass would hold any JSON value).
//! - **Loading** (`load`, `load_file`, `hop publish -f EXTERNAL FILE`): a
//!   JSON object; its `url` is taken and other keys are ignored.
//!
//! hop's reader, by default (`fetch_external=True`), downloads the content
//! from the URL (an HTTP GET authenticated against the archive) and hands
//! out that content in place of this model. skotch does not fetch: the
//! reader hands out the [`External`] model and the application decides.

use std::path::Path;

use bytes::Bytes;
use serde_json::Value;

use super::{read_file, write_py_json, DecodeError, EXTERNAL_FORMAT};

/// A message whose content lives at `url` (hop's `ExternalMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// Where the content is.
    pub url: String,
}

impl External {
    /// A pointer to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        External { url: url.into() }
    }

    /// The record value: `{"url": "..."}` exactly as hop writes it.
    pub fn serialize(&self) -> Bytes {
        let mut map = serde_json::Map::new();
        map.insert("url".to_owned(), Value::String(self.url.clone()));
        let mut out = Vec::with_capacity(self.url.len() + 11);
        write_py_json(&mut out, &Value::Object(map));
        Bytes::from(out)
    }

    /// Decodes a record value (hop's `ExternalMessage.deserialize`).
    ///
    /// Errors: [`DecodeError::NotUtf8`] or [`DecodeError::InvalidJson`]
    /// for bytes that are not JSON text; [`DecodeError::NotExternal`] when
    /// the JSON is not an object with exactly one key, `url`, holding a
    /// string.
    pub fn deserialize(value: &[u8]) -> Result<External, DecodeError> {
        let map = json_object(value)?;
        if let Some(other) = map.keys().find(|k| *k != "url") {
            return Err(not_external(format!("unexpected key {other:?}")));
        }
        url_of(&map)
    }

    /// Reads a pointer from JSON text (hop's `ExternalMessage.load`): an
    /// object with a string `url`; other keys are ignored.
    ///
    /// Errors: as [`External::deserialize`], except that other keys are
    /// allowed.
    pub fn load(text: &[u8]) -> Result<External, DecodeError> {
        url_of(&json_object(text)?)
    }

    /// Reads a pointer file (hop's `load_file`; `hop publish -f EXTERNAL`).
    ///
    /// Errors: [`DecodeError::Io`] when the file cannot be read, else as
    /// [`External::load`].
    pub fn load_file(path: impl AsRef<Path>) -> Result<External, DecodeError> {
        Self::load(&read_file(path.as_ref())?)
    }

    /// The format name, `external`.
    pub fn format_name(&self) -> &'static str {
        EXTERNAL_FORMAT
    }
}

fn not_external(reason: String) -> DecodeError {
    DecodeError::NotExternal { reason }
}

fn json_object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, DecodeError> {
    let text = std::str::from_utf8(bytes)?;
    match serde_json::from_str::<Value>(text)? {
        Value::Object(map) => Ok(map),
        _ => Err(not_external("not a JSON object".to_owned())),
    }
}

fn url_of(map: &serde_json::Map<String, Value>) -> Result<External, DecodeError> {
    match map.get("url") {
        Some(Value::String(url)) => Ok(External::new(url.clone())),
        Some(_) => Err(not_external("\"url\" is not a string".to_owned())),
        None => Err(not_external("no \"url\" key".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_form_is_hops_json_dumps() {
        // Python: json.dumps(asdict(ExternalMessage(url="https://a/é")))
        let e = External::new("https://archive.example/msg/é");
        assert_eq!(
            &e.serialize()[..],
            br#"{"url": "https://archive.example/msg/\u00e9"}"#
        );
        assert_eq!(External::deserialize(&e.serialize()).unwrap(), e);
    }

    #[test]
    fn deserialize_is_strict_load_is_not() {
        let extra = br#"{"url": "u", "size": 3}"#;
        assert!(matches!(
            External::deserialize(extra),
            Err(DecodeError::NotExternal { .. })
        ));
        assert_eq!(External::load(extra).unwrap(), External::new("u"));
        for bad in [
            &b"[1]"[..],
            br#"{"url": 5}"#,
            br#"{}"#,
            b"not json",
            b"\xff",
        ] {
            assert!(External::deserialize(bad).is_err(), "{bad:?}");
            assert!(External::load(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(url in any::<String>()) {
            let e = External::new(url);
            prop_assert_eq!(External::deserialize(&e.serialize()).unwrap(), e);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = External::deserialize(&b);
            let _ = External::load(&b);
        }
    }
}
