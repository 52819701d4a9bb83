//! Message models: what a message's bytes mean, as hop-client's
//! `hop.models` and `hop.io.Deserializer` define it.
//!
//! skotch implements six of hop's models: the two general ones,
//! [`Message::Json`] (hop's `JSONBlob`, format name `json`) and
//! [`Message::Blob`] (raw bytes, format name `blob`), and three alert
//! formats: [`Message::VoEvent`] (hop's `VOEvent`, `voevent`; see
//! [`voevent`]), [`Message::Circular`] (hop's `GCNCircular`, `circular`;
//! see [`circular`]), [`Message::GcnTextNotice`] (hop's
//! `GCNTextNotice`, `gcntextnotice`; see [`gcn_text_notice`]) and
//! [`Message::Avro`] (hop's `AvroBlob`, `avro`; see [`avro`], checked
//! against hop-client 0.13.0) and [`Message::External`] (hop's
//! `ExternalMessage`, `external`: a pointer to content stored at a URL; see
//! [`external`]; skotch does not download it, hop's reader does by
//! default).
//!
//! The reference is hop-client 0.13.0 (its `hop/models.py` is identical
//! to 0.12.1's, against which the models were first written):
//! `hop/models.py` for the models, `hop/io.py` (`_DeserializerMixin.deserialize`) for the choice of
//! model, and xmltodict 1.0 (`parse`, `unparse`) for the VOEvent mapping.
//!
//! # Writing
//!
//! [`Message::serialize`] gives the record value, [`Message::format_name`]
//! the `_format` header value:
//!
//! - `Json(v)` → `json.dumps(v)` exactly as Python writes it by default, so
//!   skotch and hop-client put the same bytes on the wire for the same
//!   document: `", "` and `": "` separators, non-ASCII and DEL escaped as
//!   `\uXXXX` (lowercase hex, UTF-16 surrogate pairs above U+FFFF), floats
//!   in Python's `repr` form (`1e+16`, `1e-05`, `100.0`). Object keys keep
//!   their order (the crate enables serde_json's `preserve_order`).
//! - `Blob(b)` → `b` unchanged.
//! - `VoEvent(v)` → the VOEvent's XML exactly as it was read or loaded
//!   ([`VoEvent::raw`]; hop's `VOEvent.__bytes__` returns `_raw`).
//! - `Circular(c)` → `json.dumps({"header": c.header, "body": c.body})`, the
//!   same Python-identical JSON as `Json` (hop's `GCNCircular.serialize`).
//! - `GcnTextNotice(n)` → the notice's text exactly as it was read
//!   ([`GcnTextNotice::raw`]; hop's `GCNTextNotice.__bytes__`).
//! - `External(e)` → `json.dumps({"url": e.url})`, as hop's
//!   `ExternalMessage.__bytes__`.
//! - `Avro(a)` → an Avro object container file of the records with the
//!   `null` codec, as fastavro writes it for hop's `AvroBlob.__bytes__`
//!   except for the random sync marker ([`Avro::serialize`]).
//!
//! Text meant to be JSON (the CLI's `--format json`) goes through
//! [`Message::json_from_str`] / [`Message::json_from_slice`], which reject
//! invalid JSON with [`ModelError::InvalidJson`] naming line and column.
//! Files for the alert models load with hop's `load_file` rules:
//! [`VoEvent::load_file`], [`Circular::load_file`],
//! [`GcnTextNotice::load_file`].
//!
//! # Reading: [`Message::deserialize`]
//!
//! `format` is the value of the message's first `_format` header
//! ([`crate::headers::format`]; a null value counts as absent).
//!
//! | `_format`               | value                           | hop-client 0.13                      | skotch |
//! |-------------------------|---------------------------------|--------------------------------------|--------|
//! | `json` (any case)       | JSON (UTF-8)                    | `JSONBlob(content)`                  | `Json(content)` |
//! | `json` (any case)       | not JSON / not UTF-8            | raises, ending the read loop         | `Blob(value)`, warning logged |
//! | `blob` (any case)       | anything                        | `Blob(value)`                        | `Blob(value)` |
//! | `voevent` (any case)    | VOEvent XML with root `voe:VOEvent` | `VOEvent.load(value)`            | `VoEvent` (fields parsed, raw bytes kept) |
//! | `voevent` (any case)    | JSON object of hop ≤ 0.11's VOEvent fields | `VOEvent(**json)`, `_raw` rebuilt by `xmltodict.unparse` | `VoEvent` holding that rebuilt XML |
//! | `voevent` (any case)    | neither (or over the [`voevent`] limits) | raises                      | `Blob(value)`, warning logged |
//! | `circular` (any case)   | JSON `{"header": {..}, "body": ".."}` | `GCNCircular(**json)`          | `Circular` |
//! | `circular` (any case)   | anything else                   | raises                               | `Blob(value)`, warning logged |
//! | `gcntextnotice` (any case) | UTF-8 text                   | `GCNTextNotice.deserialize(value)`   | `GcnTextNotice` |
//! | `gcntextnotice` (any case) | not UTF-8                    | raises `UnicodeDecodeError`          | `Blob(value)`, warning logged |
//! | `avro` (any case)       | Avro container, one record      | `AvroBlob.deserialize(value)`        | `Avro` (record, writer schema, raw bytes kept) |
//! | `avro` (any case)       | anything else (or over the [`avro`] limits) | raises                   | `Blob(value)`, warning logged |
//! | `external` (any case)   | JSON `{"url": "..."}`           | `ExternalMessage`, then by default the content fetched from the URL | `External` (not fetched) |
//! | `external` (any case)   | anything else                   | raises                               | `Blob(value)`, warning logged |
//! | unknown name            | anything                        | `Blob(value)`, warning               | `Blob(value)` |
//! | not UTF-8               | anything                        | raises `UnicodeDecodeError`          | `Blob(value)` |
//! | absent                  | `{"format": "blob", "content": C, ...}` | `JSONBlob(C)` (hop ≤ 0.5 envelope) | `Json(C)` |
//! | absent                  | other `{"format": F, "content": C, ...}` | model `F` built from `C`, or `Blob(C)` | `Json(whole document)` |
//! | absent                  | other JSON                      | `JSONBlob(content)`                  | `Json(content)` |
//! | absent                  | not JSON / not UTF-8            | `Blob(value)`                        | `Blob(value)` |
//! | any                     | null (Kafka tombstone)          | raises (`None.decode`)               | `Blob(empty)` |
//!
//! Format names match ASCII case-insensitively (hop upper-cases them).
//! Where hop raises, skotch keeps reading: the message is a Blob of the
//! exact bytes and the reason is logged as a warning (the model's own
//! `deserialize`, e.g. [`VoEvent::deserialize`], returns it as a
//! [`DecodeError`]).
//! JSON is read with serde_json, which differs from Python's `json` in two
//! corners: `NaN`/`Infinity` are not JSON to it (such a value reads as a
//! Blob), and integers beyond the 64-bit range become the nearest `f64`.

use bytes::Bytes;
use serde_json::Value;

pub mod avro;
pub mod circular;
pub mod external;
pub mod gcn_text_notice;
pub mod voevent;

pub use avro::{Avro, AvroValue, AVRO_FORMAT};
pub use circular::Circular;
pub use external::External;
pub use gcn_text_notice::GcnTextNotice;
pub use voevent::VoEvent;

/// Format name of [`Message::Json`] (hop's `JSONBlob.format_name`).
pub const JSON_FORMAT: &str = "json";
/// Format name of [`Message::Blob`] (hop's `Blob`).
pub const BLOB_FORMAT: &str = "blob";
/// Format name of [`Message::VoEvent`] (hop's `VOEvent`, named after its
/// class).
pub const VOEVENT_FORMAT: &str = "voevent";
/// Format name of [`Message::Circular`] (hop's `GCNCircular.format_name`).
pub const CIRCULAR_FORMAT: &str = "circular";
/// Format name of [`Message::GcnTextNotice`] (hop's `GCNTextNotice`, named
/// after its class).
pub const GCN_TEXT_NOTICE_FORMAT: &str = "gcntextnotice";
/// Format name of [`Message::External`] (hop's `ExternalMessage.format_name`).
pub const EXTERNAL_FORMAT: &str = "external";
/// Every format name hop-client 0.13 registers (`hop.models.get_models`).
pub const HOP_FORMATS: [&str; 7] = [
    VOEVENT_FORMAT,
    GCN_TEXT_NOTICE_FORMAT,
    CIRCULAR_FORMAT,
    BLOB_FORMAT,
    JSON_FORMAT,
    AVRO_FORMAT,
    EXTERNAL_FORMAT,
];

/// A message's content.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// A JSON document (`_format: json`; hop's `JSONBlob`).
    Json(Value),
    /// Raw bytes (`_format: blob`; also any format skotch does not decode).
    Blob(Bytes),
    /// A VOEvent 2.0 alert (`_format: voevent`; hop's `VOEvent`).
    VoEvent(VoEvent),
    /// A GCN circular (`_format: circular`; hop's `GCNCircular`).
    Circular(Circular),
    /// A GCN notice in its plain-text form (`_format: gcntextnotice`; hop's
    /// `GCNTextNotice`).
    GcnTextNotice(GcnTextNotice),
    /// Avro records and their schema (`_format: avro`; hop's `AvroBlob`;
    /// see [`avro`]).
    Avro(Avro),
    /// A pointer to content stored at a URL (`_format: external`; hop's
    /// `ExternalMessage`; see [`external`]).
    External(External),
}

/// Why bytes could not become a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The text was meant to be JSON and is not.
    #[error("invalid JSON: {message}")]
    InvalidJson {
        /// Line of the problem, from 1.
        line: usize,
        /// Column of the problem, from 1.
        column: usize,
        /// serde_json's description, including the position.
        message: String,
    },
}

impl From<serde_json::Error> for ModelError {
    fn from(e: serde_json::Error) -> Self {
        ModelError::InvalidJson {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}

/// Why bytes (or a file) could not become a [`VoEvent`], [`Circular`] or
/// [`GcnTextNotice`].
///
/// Byte positions count from the start of the text that was parsed (after
/// a UTF-8 byte order mark).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not UTF-8 (hop decodes them as UTF-8 and raises
    /// `UnicodeDecodeError`).
    #[error("not UTF-8 text: invalid byte at offset {valid_up_to}")]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The XML declaration names an encoding skotch does not read, or the
    /// document starts with a UTF-16 byte order mark.
    #[error("unsupported XML encoding {encoding:?} (UTF-8, US-ASCII and ISO-8859-1 are read)")]
    UnsupportedEncoding {
        /// The declared (or detected) encoding.
        encoding: String,
    },
    /// The XML is not well-formed.
    #[error("XML syntax error at byte {position}: {message}")]
    Xml {
        /// Where the problem was found.
        position: u64,
        /// What is wrong.
        message: String,
    },
    /// The XML has a document type declaration. It is refused whole, so no
    /// entity declared in it can ever be expanded (billion laughs,
    /// external entities).
    #[error("XML document type declarations (<!DOCTYPE ...>) are not accepted (byte {position})")]
    Doctype {
        /// Where the declaration starts.
        position: u64,
    },
    /// An entity reference other than the five XML predefines
    /// (`&lt; &gt; &amp; &apos; &quot;`) or a character reference.
    #[error("unknown XML entity &{name}; at byte {position} (only &lt; &gt; &amp; &apos; &quot; and character references are accepted)")]
    UnknownEntity {
        /// The entity name.
        name: String,
        /// Where the reference is.
        position: u64,
    },
    /// The XML is bigger or deeper than the limits in [`voevent`] allow.
    #[error("XML {what} exceeds the limit of {limit} (at byte {position})")]
    LimitExceeded {
        /// Which limit (for example `nesting depth`).
        what: &'static str,
        /// The limit.
        limit: usize,
        /// Where it was exceeded.
        position: u64,
    },
    /// Well-formed XML (or JSON) that is not a VOEvent as hop-client reads
    /// one: for example a root other than `voe:VOEvent`, no `ivorn`, or a
    /// child hop's `VOEvent` dataclass has no field for.
    #[error("not a VOEvent: {reason}")]
    NotVoEvent {
        /// What is missing or unexpected.
        reason: String,
    },
    /// Well-formed JSON (or an RFC 822 text) that is not a GCN circular as
    /// hop-client reads one.
    #[error("not a GCN circular: {reason}")]
    NotCircular {
        /// What is missing or unexpected.
        reason: String,
    },
    /// Well-formed JSON that is not hop's `ExternalMessage` (an object
    /// with a string `url`).
    #[error("not an external message: {reason}")]
    NotExternal {
        /// What is missing or unexpected.
        reason: String,
    },
    /// The text was meant to be JSON and is not.
    #[error("invalid JSON: {message}")]
    InvalidJson {
        /// Line of the problem, from 1.
        line: usize,
        /// Column of the problem, from 1.
        column: usize,
        /// serde_json's description, including the position.
        message: String,
    },
    /// Bytes that are not an Avro container file skotch reads, content
    /// that does not fit its Avro schema, or a limit of [`avro`] exceeded.
    #[error("Avro: {reason}")]
    Avro {
        /// What is wrong, with the offset or limit where it applies.
        reason: String,
    },
    /// A `load_file` could not read its file.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The kind of I/O error.
        kind: std::io::ErrorKind,
        /// The I/O error's description.
        message: String,
    },
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        DecodeError::InvalidJson {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}

impl From<std::str::Utf8Error> for DecodeError {
    fn from(e: std::str::Utf8Error) -> Self {
        DecodeError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        }
    }
}

/// Reads a whole file for a model's `load_file` (hop's `open(...).read()`).
fn read_file(path: &std::path::Path) -> Result<Vec<u8>, DecodeError> {
    std::fs::read(path).map_err(|e| DecodeError::Io {
        path: path.display().to_string(),
        kind: e.kind(),
        message: e.to_string(),
    })
}

/// The alert models [`Message::deserialize`] decodes, by `_format` name.
#[derive(Clone, Copy)]
enum AlertFormat {
    VoEvent,
    Circular,
    GcnTextNotice,
    Avro,
    External,
}

impl AlertFormat {
    fn from_name(name: &[u8]) -> Option<Self> {
        [
            (VOEVENT_FORMAT, AlertFormat::VoEvent),
            (CIRCULAR_FORMAT, AlertFormat::Circular),
            (GCN_TEXT_NOTICE_FORMAT, AlertFormat::GcnTextNotice),
            (AVRO_FORMAT, AlertFormat::Avro),
            (EXTERNAL_FORMAT, AlertFormat::External),
        ]
        .into_iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
        .map(|(_, f)| f)
    }

    fn name(self) -> &'static str {
        match self {
            AlertFormat::VoEvent => VOEVENT_FORMAT,
            AlertFormat::Circular => CIRCULAR_FORMAT,
            AlertFormat::GcnTextNotice => GCN_TEXT_NOTICE_FORMAT,
            AlertFormat::Avro => AVRO_FORMAT,
            AlertFormat::External => EXTERNAL_FORMAT,
        }
    }

    fn decode(self, value: &Bytes) -> Result<Message, DecodeError> {
        Ok(match self {
            AlertFormat::VoEvent => Message::VoEvent(VoEvent::deserialize(value.clone())?),
            AlertFormat::Circular => Message::Circular(Circular::deserialize(value)?),
            AlertFormat::GcnTextNotice => {
                Message::GcnTextNotice(GcnTextNotice::deserialize(value.clone())?)
            }
            AlertFormat::Avro => Message::Avro(Avro::deserialize(value.clone())?),
            AlertFormat::External => Message::External(External::deserialize(value)?),
        })
    }
}

impl Message {
    /// A Blob message.
    pub fn blob(bytes: impl Into<Bytes>) -> Self {
        Message::Blob(bytes.into())
    }

    /// The `_format` header value for this model: `json`, `blob`,
    /// `voevent`, `circular`, `gcntextnotice` or `avro`.
    pub fn format_name(&self) -> &'static str {
        match self {
            Message::Json(_) => JSON_FORMAT,
            Message::Blob(_) => BLOB_FORMAT,
            Message::VoEvent(_) => VOEVENT_FORMAT,
            Message::Circular(_) => CIRCULAR_FORMAT,
            Message::GcnTextNotice(_) => GCN_TEXT_NOTICE_FORMAT,
            Message::Avro(_) => AVRO_FORMAT,
            Message::External(_) => EXTERNAL_FORMAT,
        }
    }

    /// The record value hop-client would write for this message (see the
    /// module docs for each model's form).
    pub fn serialize(&self) -> Bytes {
        match self {
            Message::Json(v) => {
                let mut out = Vec::new();
                write_py_json(&mut out, v);
                Bytes::from(out)
            }
            Message::Blob(b) => b.clone(),
            Message::VoEvent(v) => v.serialize(),
            Message::Circular(c) => c.serialize(),
            Message::GcnTextNotice(n) => n.serialize(),
            Message::Avro(a) => a.serialize(),
            Message::External(e) => e.serialize(),
        }
    }

    /// The same bytes as [`Message::serialize`].
    pub fn content_bytes(&self) -> Bytes {
        self.serialize()
    }

    /// Decodes a received value given its `_format` header value, with
    /// hop-client's fallbacks (table in the module docs). Never fails: what
    /// cannot be decoded is a Blob of the exact bytes.
    pub fn deserialize(format: Option<&[u8]>, payload: Option<&Bytes>) -> Message {
        // A tombstone (null value) has nothing to decode: hop raises on it,
        // skotch returns an empty Blob whatever the format.
        if let (Some(alert), Some(value)) = (format.and_then(AlertFormat::from_name), payload) {
            return match alert.decode(value) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(format = alert.name(), error = %e, "message does not decode as its _format says; returned as a blob");
                    Message::Blob(value.clone())
                }
            };
        }
        let payload = payload.cloned().unwrap_or_default();
        match format {
            Some(f) if f.eq_ignore_ascii_case(JSON_FORMAT.as_bytes()) => {
                match serde_json::from_slice(&payload) {
                    Ok(v) => Message::Json(v),
                    Err(e) => {
                        tracing::warn!(error = %e, "message with _format=json is not valid JSON; returned as a blob");
                        Message::Blob(payload)
                    }
                }
            }
            Some(_) => Message::Blob(payload),
            None => match serde_json::from_slice::<Value>(&payload) {
                Ok(v) => Message::Json(unwrap_legacy_envelope(v)),
                Err(_) => Message::Blob(payload),
            },
        }
    }

    /// Parses JSON text into a [`Message::Json`].
    ///
    /// Errors: [`ModelError::InvalidJson`] with line and column.
    pub fn json_from_str(text: &str) -> Result<Message, ModelError> {
        Ok(Message::Json(serde_json::from_str(text)?))
    }

    /// Parses JSON bytes (UTF-8) into a [`Message::Json`].
    ///
    /// Errors: [`ModelError::InvalidJson`] with line and column (also for
    /// bytes that are not UTF-8).
    pub fn json_from_slice(bytes: &[u8]) -> Result<Message, ModelError> {
        Ok(Message::Json(serde_json::from_slice(bytes)?))
    }
}

/// hop-client ≤ 0.5 wrapped every message as `{"format": F, "content": C}`
/// with no headers; `F == "blob"` was its label for plain JSON. hop still
/// unwraps that case to `JSONBlob(C)`. Other envelopes name models hop
/// builds from `C` without their raw form (a VOEvent built so has empty
/// `_raw` and would re-publish as nothing), so the document is kept whole.
fn unwrap_legacy_envelope(v: Value) -> Value {
    match v {
        Value::Object(mut map)
            if map.contains_key("content")
                && map.get("format").and_then(Value::as_str) == Some(BLOB_FORMAT) =>
        {
            map.remove("content").unwrap_or(Value::Null)
        }
        other => other,
    }
}

impl From<Value> for Message {
    fn from(v: Value) -> Self {
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

impl From<&'static [u8]> for Message {
    fn from(b: &'static [u8]) -> Self {
        Message::Blob(Bytes::from_static(b))
    }
}

impl From<VoEvent> for Message {
    fn from(v: VoEvent) -> Self {
        Message::VoEvent(v)
    }
}

impl From<Circular> for Message {
    fn from(c: Circular) -> Self {
        Message::Circular(c)
    }
}

impl From<External> for Message {
    fn from(e: External) -> Self {
        Message::External(e)
    }
}

impl From<Avro> for Message {
    fn from(a: Avro) -> Self {
        Message::Avro(a)
    }
}

impl From<GcnTextNotice> for Message {
    fn from(n: GcnTextNotice) -> Self {
        Message::GcnTextNotice(n)
    }
}

// --- Python `str` whitespace -------------------------------------------------

/// Python's `str.isspace` for one character (Unicode White_Space plus the
/// separators U+001C..U+001F, which Python counts and Rust does not).
/// hop's text models strip with Python's rules, so ours must too.
fn py_isspace(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's `s.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `s.lstrip()`.
fn py_lstrip(s: &str) -> &str {
    s.trim_start_matches(py_isspace)
}

// --- Python `json.dumps` (default arguments) -------------------------------

fn write_py_json(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                out.extend_from_slice(py_float_repr(n.as_f64().unwrap_or(f64::NAN)).as_bytes());
            }
        }
        Value::String(s) => write_py_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_py_json(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_py_str(out, k);
                out.extend_from_slice(b": ");
                write_py_json(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Python's `ensure_ascii` string form: only printable ASCII is written as
/// is; everything else is `\uXXXX` (lowercase) per UTF-16 unit.
fn write_py_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(HEX[usize::from((*unit >> shift) & 0xf)]);
                    }
                }
            }
        }
    }
    out.push(b'"');
}

/// Python's `float.__repr__`: the shortest digits that round-trip (Rust's
/// `{:e}` gives the same), written in fixed notation when the decimal
/// exponent is in -4..16, else as `d.ddde±XX`.
fn py_float_repr(f: f64) -> String {
    if !f.is_finite() {
        // A serde_json Value never holds these; serde_json writes null too.
        return "null".to_string();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let digits = round_tie_to_even(f.abs(), digits, exp);
    // Value = 0.DIGITS × 10^decpt.
    let decpt = exp + 1;
    let n = digits.len() as i32;
    if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs())
    } else if decpt <= 0 {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(decpt.unsigned_abs() as usize)
        )
    } else if decpt >= n {
        format!("{sign}{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        format!("{sign}{int}.{frac}")
    }
}

/// Rust's shortest digits break an exact tie (`x = ...d5` exactly, both
/// neighbours round-trip) upwards; CPython's `repr` (David Gay's dtoa)
/// picks the even digit. `digits` is Rust's shortest form of `abs` with
/// decimal exponent `exp`; only an odd last digit can need the change.
fn round_tie_to_even(abs: f64, digits: String, exp: i32) -> String {
    let n = digits.len();
    let Some(last) = digits.bytes().last() else {
        return digits;
    };
    if (n < 2 && last == b'1') || last % 2 == 0 {
        // Even already, or "1" whose lower neighbour "0" cannot round-trip.
        return digits;
    }
    let mut lower = digits[..n - 1].to_string();
    lower.push(char::from(last - 1));
    // One more significant digit, correctly rounded: a tie reads "lower5".
    let exact = format!("{abs:.n$e}");
    let Some((m, e)) = exact.split_once('e') else {
        return digits;
    };
    let exact_digits: String = m.chars().filter(|c| *c != '.').collect();
    if e.parse::<i32>().ok() != Some(exp) || exact_digits != format!("{lower}5") {
        return digits;
    }
    // Rare from here on: confirm the tie is exact (a double has at most 767
    // significant digits) and that the even neighbour reads back as `abs`.
    let long = format!("{abs:.prec$e}", prec = n + 800);
    let Some((long_m, _)) = long.split_once('e') else {
        return digits;
    };
    let tail_is_zero = long_m
        .chars()
        .filter(|c| *c != '.')
        .skip(n + 1)
        .all(|c| c == '0');
    let lower_reads_back = format!("0.{lower}e{}", exp + 1).parse::<f64>().ok() == Some(abs);
    if tail_is_zero && lower_reads_back {
        lower
    } else {
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn de(format: Option<&[u8]>, payload: &'static [u8]) -> Message {
        Message::deserialize(format, Some(&Bytes::from_static(payload)))
    }

    fn blob(b: &'static [u8]) -> Message {
        Message::Blob(Bytes::from_static(b))
    }

    #[test]
    fn format_header_chooses_the_model() {
        let j: &[u8] = br#"{"a":1}"#;
        assert_eq!(de(Some(b"json"), j), Message::Json(json!({"a": 1})));
        assert_eq!(de(Some(b"JSON"), j), Message::Json(json!({"a": 1})));
        assert_eq!(de(Some(b"blob"), j), blob(j));
        assert_eq!(de(Some(b"Blob"), j), blob(j));
        // `{"a":1}` is neither a VOEvent nor a circular, so those stay
        // Blobs; but every UTF-8 text is a GCN text notice to hop (here one
        // field, `{"a"` = `1}`).
        for other in HOP_FORMATS
            .iter()
            .filter(|f| **f != "json" && **f != GCN_TEXT_NOTICE_FORMAT)
        {
            assert_eq!(de(Some(other.as_bytes()), j), blob(j), "{other}");
        }
        let Message::GcnTextNotice(n) = de(Some(b"gcntextnotice"), j) else {
            panic!("not a notice");
        };
        assert_eq!(&n.raw()[..], j);
        assert_eq!(n.get("{\"a\""), Some("1}"));
        assert_eq!(de(Some(b"no-such-model"), j), blob(j));
        assert_eq!(de(Some(b""), j), blob(j));
        assert_eq!(de(Some(b"\xff"), j), blob(j));
    }

    #[test]
    fn json_label_on_non_json_is_a_blob() {
        assert_eq!(de(Some(b"json"), b"{oops"), blob(b"{oops"));
        assert_eq!(de(Some(b"json"), b"\xff\xfe"), blob(b"\xff\xfe"));
        assert_eq!(de(Some(b"json"), b""), blob(b""));
    }

    #[test]
    fn no_header_tries_json_then_blob() {
        assert_eq!(de(None, b" [1, 2] "), Message::Json(json!([1, 2])));
        assert_eq!(de(None, b"\"s\""), Message::Json(json!("s")));
        assert_eq!(de(None, b"not json"), blob(b"not json"));
        assert_eq!(de(None, b"\xff"), blob(b"\xff"));
        assert_eq!(de(None, b"{} extra"), blob(b"{} extra"));
        assert_eq!(de(None, b"NaN"), blob(b"NaN"));
        assert_eq!(de(None, b"\xef\xbb\xbf{}"), blob(b"\xef\xbb\xbf{}"), "BOM");
        assert_eq!(Message::deserialize(None, None), blob(b""));
        assert_eq!(Message::deserialize(Some(b"json"), None), blob(b""));
    }

    #[test]
    fn legacy_envelope() {
        assert_eq!(
            de(None, br#"{"format": "blob", "content": {"x": [1]}}"#),
            Message::Json(json!({"x": [1]}))
        );
        // Other envelopes stay whole; so does anything with a header.
        let voe: &[u8] = br#"{"format": "voevent", "content": {"ivorn": "i"}}"#;
        assert_eq!(
            de(None, voe),
            Message::Json(json!({"format": "voevent", "content": {"ivorn": "i"}}))
        );
        let env: &[u8] = br#"{"format": "blob", "content": 1}"#;
        assert_eq!(
            de(Some(b"json"), env),
            Message::Json(json!({"format": "blob", "content": 1}))
        );
        assert_eq!(
            de(None, br#"{"format": "blob"}"#),
            Message::Json(json!({"format": "blob"}))
        );
    }

    #[test]
    fn serialize_matches_python_json_dumps() {
        // Expected strings produced by CPython 3 `json.dumps(...)`.
        let cases: [(Value, &str); 5] = [
            (json!({"my": "message"}), r#"{"my": "message"}"#),
            (
                json!({"a": [1, 2.5, true, false, null, {}, []], "b": {"c": "d"}}),
                r#"{"a": [1, 2.5, true, false, null, {}, []], "b": {"c": "d"}}"#,
            ),
            (
                json!("caf\u{e9} \u{7f} \u{1F600} \u{0}\u{1f} \"q\" \\ \n\r\t\u{8}\u{c} /"),
                r#""caf\u00e9 \u007f \ud83d\ude00 \u0000\u001f \"q\" \\ \n\r\t\b\f /""#,
            ),
            (
                json!([
                    1e16,
                    1e15,
                    0.0001,
                    0.00001,
                    -0.0,
                    0.0,
                    1.5e300,
                    5e-324,
                    123.456,
                    -1.25e-7,
                    1e22,
                    9007199254740992u64,
                    0.1,
                    100.0,
                    1.7976931348623157e308
                ]),
                "[1e+16, 1000000000000000.0, 0.0001, 1e-05, -0.0, 0.0, 1.5e+300, 5e-324, \
                 123.456, -1.25e-07, 1e+22, 9007199254740992, 0.1, 100.0, 1.7976931348623157e+308]",
            ),
            (
                json!([18446744073709551615u64, -9223372036854775808i64]),
                "[18446744073709551615, -9223372036854775808]",
            ),
        ];
        for (v, want) in cases {
            let got = Message::Json(v).serialize();
            assert_eq!(std::str::from_utf8(&got).unwrap(), want);
        }
    }

    #[test]
    // The literals are exact binary values halfway between two shortest
    // decimal forms; their full digits are the point of the test.
    #[allow(clippy::excessive_precision)]
    fn float_ties_round_to_even_like_python() {
        // CPython: json.dumps([281077772425468.125, 1416369848100283.25, 161859076028648.625])
        let v = json!([
            281077772425468.125,
            1416369848100283.25,
            161859076028648.625
        ]);
        assert_eq!(
            &Message::Json(v).serialize()[..],
            b"[281077772425468.12, 1416369848100283.2, 161859076028648.62]"
        );
    }

    #[test]
    fn object_key_order_is_kept() {
        let m = Message::json_from_str(r#"{"z": 1, "a": 2, "m": 3}"#).unwrap();
        assert_eq!(&m.serialize()[..], br#"{"z": 1, "a": 2, "m": 3}"#);
    }

    #[test]
    fn invalid_json_for_writing_is_a_clear_error() {
        let e = Message::json_from_str("{\n  \"a\": oops\n}").unwrap_err();
        let ModelError::InvalidJson { line, column, .. } = &e;
        assert_eq!((*line, *column), (2, 8));
        assert!(e.to_string().starts_with("invalid JSON: "), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(Message::json_from_slice(b"\xff").is_err());
        assert!(Message::json_from_str("").is_err());
        assert_eq!(
            Message::json_from_slice(b"[1]").unwrap(),
            Message::Json(json!([1]))
        );
    }

    #[test]
    fn names_and_conversions() {
        assert_eq!(Message::from(json!(1)).format_name(), "json");
        assert_eq!(Message::from(vec![1u8]).format_name(), "blob");
        assert_eq!(Message::blob("x"), blob(b"x"));
        assert_eq!(Message::from(&b"y"[..]), blob(b"y"));
        assert_eq!(&blob(b"\x00").serialize()[..], b"\x00");
    }

    #[test]
    fn alert_formats_decode_by_name() {
        let xml: &[u8] = b"<voe:VOEvent ivorn=\"ivo://x#y\"/>";
        let m = de(Some(b"VoEvent"), xml);
        assert!(
            matches!(&m, Message::VoEvent(v) if v.ivorn() == "ivo://x#y"),
            "{m:?}"
        );
        assert_eq!(m.format_name(), "voevent");
        assert_eq!(&m.serialize()[..], xml);
        assert_eq!(m.content_bytes(), m.serialize());

        let circular: &[u8] = br#"{"header": {"title": "T"}, "body": "b"}"#;
        let m = de(Some(b"circular"), circular);
        let want = Circular::new(json!({"title": "T"}).as_object().unwrap().clone(), "b");
        assert_eq!(m, Message::Circular(want.clone()));
        assert_eq!(m.format_name(), "circular");
        assert_eq!(&m.serialize()[..], circular);

        let notice: &[u8] = b"TITLE: GCN/TEST NOTICE\n";
        let m = de(Some(b"gcntextnotice"), notice);
        assert!(
            matches!(&m, Message::GcnTextNotice(n) if n.get("title") == Some("GCN/TEST NOTICE"))
        );
        assert_eq!(m.format_name(), "gcntextnotice");
        assert_eq!(&m.serialize()[..], notice);

        // What does not decode is a Blob of the exact bytes.
        assert_eq!(de(Some(b"voevent"), b"<nope/>"), blob(b"<nope/>"));
        assert_eq!(
            de(Some(b"circular"), b"TITLE: x\n\nb"),
            blob(b"TITLE: x\n\nb")
        );
        // A tombstone is an empty Blob whatever the format.
        for f in [VOEVENT_FORMAT, CIRCULAR_FORMAT, GCN_TEXT_NOTICE_FORMAT] {
            assert_eq!(Message::deserialize(Some(f.as_bytes()), None), blob(b""));
        }
        // Without a _format header only JSON is tried (hop guesses no more).
        assert_eq!(de(None, xml), blob(xml));
        assert_eq!(de(None, notice), blob(notice));
        // Names, conversions.
        assert_eq!(HOP_FORMATS[..3], ["voevent", "gcntextnotice", "circular"]);
        assert_eq!(Message::from(want).format_name(), "circular");
        let v = VoEvent::from_xml(xml).unwrap();
        assert_eq!(Message::from(v.clone()), Message::VoEvent(v));
        let n = GcnTextNotice::from_text(notice).unwrap();
        assert_eq!(Message::from(n.clone()), Message::GcnTextNotice(n));
    }

    #[test]
    fn python_whitespace() {
        for c in [
            '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1c}', '\u{1f}', ' ', '\u{85}', '\u{a0}',
            '\u{1680}', '\u{2000}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}',
            '\u{3000}',
        ] {
            assert!(py_isspace(c), "{c:?}");
        }
        for c in [
            'a', '\u{0}', '\u{8}', '\u{e}', '\u{1b}', '\u{180e}', '\u{200b}', '\u{feff}',
        ] {
            assert!(!py_isspace(c), "{c:?}");
        }
        assert_eq!(py_strip("\u{1f} a \u{3000}"), "a");
        assert_eq!(py_lstrip(" \ta "), "a ");
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn json_round_trips_through_the_wire_form(v in arb_json()) {
            let m = Message::Json(v);
            let wire = m.serialize();
            prop_assert!(wire.is_ascii());
            let back = Message::deserialize(Some(m.format_name().as_bytes()), Some(&wire));
            prop_assert_eq!(back, m);
        }

        #[test]
        fn blob_round_trips(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let m = Message::Blob(b.into());
            let back = Message::deserialize(Some(m.format_name().as_bytes()), Some(&m.serialize()));
            prop_assert_eq!(back, m);
        }

        #[test]
        fn deserialize_never_panics(
            f in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            p in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = Message::deserialize(f.as_deref(), Some(&Bytes::from(p)));
        }

        #[test]
        fn float_repr_parses_back(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let s = py_float_repr(f);
            let back: f64 = s.parse().map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
            prop_assert_eq!(back.to_bits(), f.to_bits(), "{}", s);
        }
    }
}
