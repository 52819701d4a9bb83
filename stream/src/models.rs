//! Message models: what a message's bytes mean, as hop-client's
//! `hop.models` and `hop.io.Deserializer` define it.
//!
//! skotch implements hop's two general models: [`Message::Json`] (hop's
//! `JSONBlob`, format name `json`) and [`Message::Blob`] (raw bytes, format
//! name `blob`). hop's other models (`voevent`, `gcntextnotice`,
//! `circular`, `avro`, `external`, listed in [`HOP_FORMATS`]) need XML,
//! RFC 822 or Avro parsers; their messages arrive as Blobs holding the exact
//! bytes, and the format name stays readable in the `_format` header of the
//! message's metadata.
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
//!
//! Text meant to be JSON (the CLI's `--format json`) goes through
//! [`Message::json_from_str`] / [`Message::json_from_slice`], which reject
//! invalid JSON with [`ModelError::InvalidJson`] naming line and column.
//!
//! # Reading: [`Message::deserialize`]
//!
//! `format` is the value of the message's first `_format` header
//! ([`crate::headers::format`]; a null value counts as absent).
//!
//! | `_format`               | value                           | hop-client 0.12                      | skotch |
//! |-------------------------|---------------------------------|--------------------------------------|--------|
//! | `json` (any case)       | JSON (UTF-8)                    | `JSONBlob(content)`                  | `Json(content)` |
//! | `json` (any case)       | not JSON / not UTF-8            | raises, ending the read loop         | `Blob(value)`, warning logged |
//! | `blob` (any case)       | anything                        | `Blob(value)`                        | `Blob(value)` |
//! | other hop model names   | anything                        | that model                           | `Blob(value)` |
//! | unknown name            | anything                        | `Blob(value)`, warning               | `Blob(value)` |
//! | not UTF-8               | anything                        | raises `UnicodeDecodeError`          | `Blob(value)` |
//! | absent                  | `{"format": "blob", "content": C, ...}` | `JSONBlob(C)` (hop ≤ 0.5 envelope) | `Json(C)` |
//! | absent                  | other `{"format": F, "content": C, ...}` | model `F` built from `C`, or `Blob(C)` | `Json(whole document)` |
//! | absent                  | other JSON                      | `JSONBlob(content)`                  | `Json(content)` |
//! | absent                  | not JSON / not UTF-8            | `Blob(value)`                        | `Blob(value)` |
//! | any                     | null (Kafka tombstone)          | raises (`None.decode`)               | `Blob(empty)` |
//!
//! Format names match ASCII case-insensitively (hop upper-cases them).
//! JSON is read with serde_json, which differs from Python's `json` in two
//! corners: `NaN`/`Infinity` are not JSON to it (such a value reads as a
//! Blob), and integers beyond the 64-bit range become the nearest `f64`.

use bytes::Bytes;
use serde_json::Value;

/// Format name of [`Message::Json`] (hop's `JSONBlob.format_name`).
pub const JSON_FORMAT: &str = "json";
/// Format name of [`Message::Blob`] (hop's `Blob`).
pub const BLOB_FORMAT: &str = "blob";
/// Every format name hop-client 0.12 registers (`hop.models.get_models`).
pub const HOP_FORMATS: [&str; 7] = [
    "voevent",
    "gcntextnotice",
    "circular",
    BLOB_FORMAT,
    JSON_FORMAT,
    "avro",
    "external",
];

/// A message's content.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// A JSON document (`_format: json`; hop's `JSONBlob`).
    Json(Value),
    /// Raw bytes (`_format: blob`; also any format skotch does not decode).
    Blob(Bytes),
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

impl Message {
    /// A Blob message.
    pub fn blob(bytes: impl Into<Bytes>) -> Self {
        Message::Blob(bytes.into())
    }

    /// The `_format` header value for this model: `json` or `blob`.
    pub fn format_name(&self) -> &'static str {
        match self {
            Message::Json(_) => JSON_FORMAT,
            Message::Blob(_) => BLOB_FORMAT,
        }
    }

    /// The record value hop-client would write for this message (see the
    /// module docs for the JSON form).
    pub fn serialize(&self) -> Bytes {
        match self {
            Message::Json(v) => {
                let mut out = Vec::new();
                write_py_json(&mut out, v);
                Bytes::from(out)
            }
            Message::Blob(b) => b.clone(),
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
/// unwraps that case to `JSONBlob(C)`. Other envelopes named models skotch
/// does not build, so the document is kept whole.
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
        for other in HOP_FORMATS.iter().filter(|f| **f != "json") {
            assert_eq!(de(Some(other.as_bytes()), j), blob(j), "{other}");
        }
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
