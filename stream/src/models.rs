//! Message models: how a message's bytes are turned into something useful,
//! chosen on read by the `_format` header as hop-client does:
//! - `_format: json` → [`Message::Json`] (hop's `JSONBlob`);
//! - `_format: blob` → [`Message::Blob`] (raw bytes);
//! - any other `_format` → [`Message::Blob`], the bytes untouched (the
//!   model is not one skotch knows; nothing is lost);
//! - no `_format` (messages from other clients or old hop versions) → JSON
//!   if the bytes are valid JSON, else a Blob;
//! - a `_format: json` message whose bytes are not JSON → a Blob, with a
//!   warning logged (hop raises; we keep the data readable).

use bytes::Bytes;

/// A message's content.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// A JSON document (`_format: json`).
    Json(serde_json::Value),
    /// Raw bytes (`_format: blob`).
    Blob(Bytes),
}

impl Message {
    /// The `_format` name of the model.
    pub fn format_name(&self) -> &'static str {
        match self {
            Message::Json(_) => "json",
            Message::Blob(_) => "blob",
        }
    }

    /// The bytes written to Kafka.
    pub fn serialize(&self) -> Bytes {
        match self {
            Message::Json(v) => Bytes::from(v.to_string()),
            Message::Blob(b) => b.clone(),
        }
    }

    /// Decode a message's bytes given its `_format` header (see the module
    /// docs for the fallbacks). `None` payloads (null values) are empty
    /// Blobs.
    pub fn deserialize(format: Option<&[u8]>, payload: Option<&Bytes>) -> Message {
        let payload = payload.cloned().unwrap_or_default();
        match format {
            Some(b"blob") => Message::Blob(payload),
            Some(b"json") => match serde_json::from_slice(&payload) {
                Ok(v) => Message::Json(v),
                Err(e) => {
                    tracing::warn!(error = %e, "message with _format=json is not valid JSON; returned as a blob");
                    Message::Blob(payload)
                }
            },
            Some(_) => Message::Blob(payload),
            None => serde_json::from_slice(&payload)
                .map(Message::Json)
                .unwrap_or(Message::Blob(payload)),
        }
    }

    /// Parse text as a JSON message; the error says where the JSON breaks.
    pub fn json_from_str(s: &str) -> Result<Message, String> {
        serde_json::from_str(s)
            .map(Message::Json)
            .map_err(|e| format!("invalid JSON: {e}"))
    }

    /// The content as bytes: JSON serialized, Blob as is.
    pub fn content_bytes(&self) -> Bytes {
        self.serialize()
    }
}

impl From<serde_json::Value> for Message {
    fn from(v: serde_json::Value) -> Self {
        Message::Json(v)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Blob(b)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Blob(b.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn format_header_chooses_the_model() {
        let j = Bytes::from_static(br#"{"a":1}"#);
        assert_eq!(
            Message::deserialize(Some(b"json"), Some(&j)),
            Message::Json(json!({"a":1}))
        );
        assert_eq!(
            Message::deserialize(Some(b"blob"), Some(&j)),
            Message::Blob(j.clone())
        );
        assert_eq!(
            Message::deserialize(None, Some(&j)),
            Message::Json(json!({"a":1}))
        );
        let raw = Bytes::from_static(b"\xff not json");
        assert_eq!(
            Message::deserialize(None, Some(&raw)),
            Message::Blob(raw.clone())
        );
        assert_eq!(
            Message::deserialize(Some(b"json"), Some(&raw)),
            Message::Blob(raw.clone())
        );
        assert_eq!(
            Message::deserialize(Some(b"voevent"), Some(&raw)),
            Message::Blob(raw)
        );
        assert_eq!(
            Message::deserialize(None, None),
            Message::Blob(Bytes::new())
        );
    }

    #[test]
    fn serialize_round_trip() {
        let m = Message::Json(json!({"x": [1, "two", null]}));
        assert_eq!(
            Message::deserialize(Some(m.format_name().as_bytes()), Some(&m.serialize())),
            m
        );
        assert!(Message::json_from_str("{oops")
            .unwrap_err()
            .contains("invalid JSON"));
    }
}
