//! hop-client's `GCNTextNotice` model (`_format: gcntextnotice`): a GCN
//! notice in its plain-text form, the text itself on the wire.
//!
//! What hop-client does (`hop/models.py`, class `GCNTextNotice`):
//!
//! - **Writing** (`__bytes__`): the raw bytes, unchanged.
//! - **Reading** (`deserialize`, also behind `load` and `load_file`): the
//!   bytes are decoded as UTF-8 (strictly: anything else raises), the text
//!   is stripped of leading and trailing whitespace and split into lines
//!   (Python's `str.splitlines`: `\n`, `\r\n`, `\r`, `\v`, `\f`,
//!   `\x1c`-`\x1e`, `\x85`, U+2028, U+2029). A line with a `:` is a field
//!   (hop's pattern `([^:]*): *(.*)`): the key is the text before the first
//!   `:`, stripped and lowercased; the value the text after it, stripped.
//!   A key seen again appends `"\n" + value` to its first value. A line
//!   without `:` continues the last field: `"\n"` plus the line without
//!   its leading whitespace is appended (a blank line appends just `"\n"`);
//!   before any field such lines are ignored. "Whitespace" is Python's
//!   `str.isspace`.
//!
//! So every UTF-8 text is a notice (possibly with no fields), as in hop.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{py_lstrip, py_strip, read_file, DecodeError, GCN_TEXT_NOTICE_FORMAT};

/// A GCN text notice as hop-client's `GCNTextNotice` holds it: the raw
/// bytes and the fields parsed from them (module docs).
///
/// The fields are always the reading of the raw text, so a notice is built
/// only by [`GcnTextNotice::from_text`] (or its aliases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcnTextNotice {
    raw: Bytes,
    fields: Vec<(String, String)>,
}

impl GcnTextNotice {
    /// Parses a notice (hop's `GCNTextNotice.deserialize`, `load`).
    ///
    /// Errors: [`DecodeError::NotUtf8`] when the bytes are not UTF-8.
    pub fn from_text(raw: impl Into<Bytes>) -> Result<GcnTextNotice, DecodeError> {
        let raw = raw.into();
        let fields = parse_fields(std::str::from_utf8(&raw)?);
        Ok(GcnTextNotice { raw, fields })
    }

    /// Decodes a record value: the same as [`GcnTextNotice::from_text`].
    ///
    /// Errors: [`DecodeError::NotUtf8`].
    pub fn deserialize(value: impl Into<Bytes>) -> Result<GcnTextNotice, DecodeError> {
        Self::from_text(value)
    }

    /// Reads a notice file, as hop's `GCNTextNotice.load_file` (binary
    /// read, so line ends stay as they are; what `hop publish -f
    /// GCNTEXTNOTICE FILE` does).
    ///
    /// Errors: [`DecodeError::Io`] when the file cannot be read,
    /// [`DecodeError::NotUtf8`].
    pub fn load_file(path: impl AsRef<Path>) -> Result<GcnTextNotice, DecodeError> {
        Self::from_text(read_file(path.as_ref())?)
    }

    /// The `_format` header value: `gcntextnotice`.
    pub fn format_name(&self) -> &'static str {
        GCN_TEXT_NOTICE_FORMAT
    }

    /// The record value: the raw bytes, unchanged.
    pub fn serialize(&self) -> Bytes {
        self.raw.clone()
    }

    /// The raw bytes (hop's `raw`).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The raw bytes as text (they are UTF-8 by construction).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.raw).unwrap_or_default()
    }

    /// The fields in first-seen order, keys lowercase (hop's `fields`
    /// dict).
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The value of a field; `key` is compared as stored (lowercase).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `{"raw": text, "fields": {key: value, ...}}` (hop's
    /// `asdict(notice)`, the raw bytes as text).
    pub fn to_json(&self) -> Value {
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut m = Map::new();
        m.insert("raw".into(), Value::String(self.text().to_string()));
        m.insert("fields".into(), Value::Object(fields));
        Value::Object(m)
    }
}

/// Python's `str.splitlines()` (no ends kept).
fn py_splitlines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        if s.is_empty() {
            rest = None;
            return None;
        }
        match s.char_indices().find(|(_, c)| {
            matches!(
                *c,
                '\n' | '\r'
                    | '\u{b}'
                    | '\u{c}'
                    | '\u{1c}'
                    | '\u{1d}'
                    | '\u{1e}'
                    | '\u{85}'
                    | '\u{2028}'
                    | '\u{2029}'
            )
        }) {
            Some((i, c)) => {
                let mut next = i + c.len_utf8();
                if c == '\r' && s[next..].starts_with('\n') {
                    next += 1;
                }
                rest = Some(&s[next..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

/// hop's field rules (module docs).
fn parse_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    // Key → index in `fields`: a notice with many keys stays linear.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut last: Option<usize> = None;
    for line in py_splitlines(py_strip(text)) {
        match line.find(':') {
            None => {
                if let Some((_, value)) = last.and_then(|i| fields.get_mut(i)) {
                    value.push('\n');
                    value.push_str(py_lstrip(line));
                }
            }
            Some(colon) => {
                let key = py_strip(&line[..colon]).to_lowercase();
                let value = py_strip(&line[colon + 1..]);
                match index.get(&key) {
                    Some(&i) => {
                        if let Some((_, v)) = fields.get_mut(i) {
                            v.push('\n');
                            v.push_str(value);
                        }
                        last = Some(i);
                    }
                    None => {
                        index.insert(key.clone(), fields.len());
                        last = Some(fields.len());
                        fields.push((key, value.to_string()));
                    }
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Message;
    use proptest::prelude::*;

    /// A (fictional) Swift-BAT text notice, and hop-client's fields for it
    /// (`json.dumps(GCNTextNotice.deserialize(raw).fields)`, written by
    /// stream/tests/fixtures/make_expected.py).
    const NOTICE: &[u8] = include_bytes!("../../tests/fixtures/gcn_notice.txt");
    const EXPECTED: &[u8] = include_bytes!("../../tests/fixtures/gcn_notice.expected.json");

    fn fields(text: &str) -> Vec<(String, String)> {
        GcnTextNotice::from_text(text.to_string())
            .unwrap()
            .fields()
            .to_vec()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_a_notice_like_hop() {
        let n = GcnTextNotice::from_text(NOTICE).unwrap();
        let mut got = Vec::new();
        crate::models::write_py_json(&mut got, &n.to_json()["fields"]);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(EXPECTED.to_vec()).unwrap()
        );
        assert_eq!(n.get("title"), Some("GCN/SWIFT NOTICE"));
        assert_eq!(n.get("notice_type"), Some("Swift-BAT GRB Position"));
        assert_eq!(n.get("trigger_num"), Some("1299901,   Seg_Num: 0"));
        assert_eq!(
            n.get("grb_ra"),
            Some("201.4431d {+13h 25m 46s} (J2000),\n201.7013d {+13h 26m 48s} (current),\n200.8011d {+13h 23m 12s} (1950)")
        );
        assert_eq!(
            n.get("comments"),
            Some("SWIFT-BAT GRB Coordinates.\nThis is a rate trigger.\nA point_source was found.\n\nThis notice is a fictional test fixture.")
        );
        assert_eq!(n.get("TITLE"), None, "keys are lowercase");
        assert_eq!(n.text().as_bytes(), NOTICE);
        assert_eq!(n.to_json()["raw"], n.text());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gcn_notice.txt");
        assert_eq!(GcnTextNotice::load_file(path).unwrap(), n);
        assert!(matches!(
            GcnTextNotice::load_file("/nonexistent/n.txt"),
            Err(DecodeError::Io { .. })
        ));
    }

    #[test]
    fn republishes_the_exact_bytes() {
        let n = GcnTextNotice::from_text(NOTICE).unwrap();
        let m = Message::GcnTextNotice(n.clone());
        assert_eq!(m.format_name(), "gcntextnotice");
        assert_eq!(n.format_name(), "gcntextnotice");
        assert_eq!(&m.serialize()[..], NOTICE);
        assert_eq!(
            Message::deserialize(Some(b"GCNTextNotice"), Some(&m.serialize())),
            m
        );
        assert_eq!(GcnTextNotice::deserialize(n.serialize()).unwrap(), n);
    }

    #[test]
    fn field_rules() {
        // Before any field, a line without ':' is dropped.
        assert_eq!(
            fields("intro\nA: 1\n  more \n\nB:2"),
            pairs(&[("a", "1\nmore \n"), ("b", "2")])
        );
        // Repeated keys (compared after strip and lowercase) append.
        assert_eq!(
            fields(" Key : x \nKEY: y\nkey:"),
            pairs(&[("key", "x\ny\n")])
        );
        // Only the first ':' splits.
        assert_eq!(fields("a:b:c"), pairs(&[("a", "b:c")]));
        // An empty key is a key.
        assert_eq!(fields(": v"), pairs(&[("", "v")]));
        // Python's line boundaries and whitespace.
        assert_eq!(
            fields("A: 1\u{b}x\u{c}y\u{1c}z\u{85}w\u{2028}v\u{2029}u\r\nt\rs"),
            pairs(&[("a", "1\nx\ny\nz\nw\nv\nu\nt\ns")])
        );
        assert_eq!(fields("\u{1f}A: 1\u{1f}\u{a0}"), pairs(&[("a", "1")]));
        assert_eq!(
            fields("A:\u{1f}x"),
            pairs(&[("a", "x")]),
            "\\x1f is whitespace but not a line end"
        );
        // Unicode lowercase, as Python's str.lower.
        assert_eq!(
            fields("\u{130}\u{3a3}: 1"),
            pairs(&[("i\u{307}\u{3c2}", "1")])
        );
        // Nothing at all.
        assert!(fields("").is_empty());
        assert!(fields(" \n\t").is_empty());
    }

    #[test]
    fn not_utf8_is_an_error_and_a_blob() {
        let e = GcnTextNotice::from_text(&b"A: \xff"[..]).unwrap_err();
        assert_eq!(e, DecodeError::NotUtf8 { valid_up_to: 3 });
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        let value = Bytes::from_static(b"A: \xff");
        assert_eq!(
            Message::deserialize(Some(b"gcntextnotice"), Some(&value)),
            Message::Blob(value)
        );
        // A tombstone is an empty Blob; an empty value an empty notice.
        assert_eq!(
            Message::deserialize(Some(b"gcntextnotice"), None),
            Message::Blob(Bytes::new())
        );
        assert_eq!(
            Message::deserialize(Some(b"gcntextnotice"), Some(&Bytes::new())),
            Message::GcnTextNotice(GcnTextNotice::from_text(Bytes::new()).unwrap())
        );
    }

    proptest! {
        #[test]
        fn any_text_round_trips(text in any::<String>()) {
            let n = GcnTextNotice::from_text(text.clone()).unwrap();
            prop_assert_eq!(n.text(), text.as_str());
            prop_assert_eq!(&n.serialize()[..], text.as_bytes());
            let m = Message::GcnTextNotice(n);
            prop_assert_eq!(Message::deserialize(Some(b"gcntextnotice"), Some(&m.serialize())), m);
        }

        #[test]
        fn key_value_lines_give_their_fields(
            kv in proptest::collection::btree_map("[a-z_]{1,12}", "[!-~]([ -~]{0,30}[!-~])?", 0..12),
            pad in 0usize..8,
        ) {
            let mut text = String::new();
            for (k, v) in &kv {
                text.push_str(&format!("{}:{}{v}\n", k.to_uppercase(), " ".repeat(pad)));
            }
            let got = fields(&text);
            let want: Vec<(String, String)> = kv.into_iter().collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = GcnTextNotice::from_text(data);
        }
    }
}
