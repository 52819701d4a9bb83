//! hop-client's `GCNCircular` model (`_format: circular`): a GCN circular,
//! JSON on the wire.
//!
//! What hop-client does (`hop/models.py`, class `GCNCircular`):
//!
//! - **Writing** (`GCNCircular.serialize`): `json.dumps(asdict(circular))`,
//!   that is `{"header": {...}, "body": "..."}` in that order, with
//!   Python's default `json.dumps` form. skotch writes the same bytes with
//!   the serializer of [`Message::Json`](super::Message::Json).
//! - **Reading** (`MessageModel.deserialize`): `GCNCircular(**json)`: a
//!   JSON object with exactly the keys `header` and `body`. hop does not
//!   check their types; skotch requires `header` to be an object and
//!   `body` a string (the dataclass's annotations), and any header value.
//! - **Loading a circular file** (`GCNCircular.load`, used by `hop publish
//!   -f CIRCULAR FILE`): the file is an RFC 822-style message read by
//!   Python's `email` parser (`compat32` policy): header lines `KEY: value`
//!   (continuation lines start with a space or tab and are kept with their
//!   line ends), a blank line, then the body, kept exactly. The header
//!   becomes `{key.lower(): value}` (a repeated key keeps its first place
//!   and its last value); the body is everything after the blank line.
//!   [`Circular::load_rfc822`] follows `email.feedparser` line by line:
//!   the first line that is neither a header (`From `, a name of printable
//!   ASCII up to `:`, or a continuation) nor blank starts the body; a
//!   `From ` first line (an mbox envelope) is dropped, one in the middle is
//!   ignored, one at the end of the header starts the body; a line
//!   starting with `:` is dropped with its continuations.
//! - **Printing** (`GCNCircular.__str__`, what `hop subscribe` prints):
//!   `KEY:` padded to 9 characters plus the value per header, a blank line,
//!   the body ([`Circular::to_rfc822`]).

use std::fmt;
use std::path::Path;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{py_strip, read_file, write_py_json, DecodeError, CIRCULAR_FORMAT};

/// A GCN circular as hop-client's `GCNCircular` holds it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Circular {
    /// The header fields, keys lowercase when loaded from a circular file
    /// (`title`, `number`, `subject`, `date`, `from`); values are strings
    /// then, but any JSON a writer sent is kept.
    pub header: Map<String, Value>,
    /// The text after the header's blank line, exactly.
    pub body: String,
}

impl Circular {
    /// A circular from its parts.
    pub fn new(header: Map<String, Value>, body: impl Into<String>) -> Circular {
        Circular {
            header,
            body: body.into(),
        }
    }

    /// Parses an RFC 822-style circular, as hop's `GCNCircular.load` given
    /// a string (`email.message_from_string`; module docs). Line ends may
    /// be `\n`, `\r\n` or `\r`; they stay as they are in values and body.
    ///
    /// Errors: [`DecodeError::NotCircular`] when a `Content-Type` header
    /// makes Python's parser read the body as nested messages (`multipart/*`
    /// or `message/*`): hop cannot publish such a circular either (its JSON
    /// writer fails on them). Any other text is a circular.
    pub fn load_rfc822(text: &str) -> Result<Circular, DecodeError> {
        let lines = split_lines(text);
        // feedparser._parsegen: header lines until a line that is neither a
        // header nor a continuation; a blank one is the separator and is
        // dropped, any other starts the body.
        let mut header_end = lines.len();
        let mut body_start = lines.len();
        if let Some(i) = lines.iter().position(|line| !is_header_line(line)) {
            header_end = i;
            body_start = if lines[i].starts_with(['\r', '\n']) {
                i + 1
            } else {
                i
            };
        }
        let header_lines = &lines[..header_end];
        let (fields, pushed_back) = parse_headers(header_lines);
        if let Some(ctype) = fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| content_type(value))
        {
            let maintype = ctype.split('/').next().unwrap_or_default();
            if maintype == "multipart" || maintype == "message" {
                return Err(DecodeError::NotCircular {
                    reason: format!(
                        "Content-Type {ctype} makes the body nested messages, not text"
                    ),
                });
            }
        }
        let mut header = Map::new();
        for (name, value) in fields {
            // A repeated name keeps its first place, with the last value
            // (a Python dict comprehension).
            header.insert(name.to_lowercase(), Value::String(value));
        }
        let mut body = String::new();
        if let Some(line) = pushed_back {
            body.push_str(line);
        }
        for line in &lines[body_start..] {
            body.push_str(line);
        }
        Ok(Circular { header, body })
    }

    /// Parses the bytes of a circular file as hop's `GCNCircular.load_file`
    /// reads one: text mode, so UTF-8 and universal newlines (`\r\n` and
    /// `\r` become `\n`), then [`Circular::load_rfc822`].
    ///
    /// Errors: [`DecodeError::NotUtf8`], else as
    /// [`Circular::load_rfc822`].
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Circular, DecodeError> {
        let text = std::str::from_utf8(bytes)?;
        let text = if text.contains('\r') {
            text.replace("\r\n", "\n").replace('\r', "\n")
        } else {
            text.to_string()
        };
        Self::load_rfc822(&text)
    }

    /// Reads a circular file, as hop's `GCNCircular.load_file` (what `hop
    /// publish -f CIRCULAR FILE` does).
    ///
    /// Errors: [`DecodeError::Io`] when the file cannot be read, else as
    /// [`Circular::from_file_bytes`].
    pub fn load_file(path: impl AsRef<Path>) -> Result<Circular, DecodeError> {
        Self::from_file_bytes(&read_file(path.as_ref())?)
    }

    /// Decodes a record value: `{"header": {...}, "body": "..."}`, keys in
    /// any order (hop's `GCNCircular(**json.loads(value))`).
    ///
    /// Errors: [`DecodeError::InvalidJson`] (also for bytes that are not
    /// UTF-8); [`DecodeError::NotCircular`] for JSON that is not an object
    /// with exactly `header` (an object) and `body` (a string).
    pub fn deserialize(value: &[u8]) -> Result<Circular, DecodeError> {
        let not = |reason: &str| DecodeError::NotCircular {
            reason: reason.to_string(),
        };
        let Value::Object(mut map) = serde_json::from_slice::<Value>(value)? else {
            return Err(not("the JSON is not an object"));
        };
        if let Some(k) = map.keys().find(|k| *k != "header" && *k != "body") {
            return Err(DecodeError::NotCircular {
                reason: format!("unexpected key {k:?} (only header and body)"),
            });
        }
        let header = match map.remove("header") {
            Some(Value::Object(h)) => h,
            Some(_) => return Err(not("header is not an object")),
            None => return Err(not("no header")),
        };
        let body = match map.remove("body") {
            Some(Value::String(b)) => b,
            Some(_) => return Err(not("body is not a string")),
            None => return Err(not("no body")),
        };
        Ok(Circular { header, body })
    }

    /// The `_format` header value: `circular`.
    pub fn format_name(&self) -> &'static str {
        CIRCULAR_FORMAT
    }

    /// The record value: `{"header": ..., "body": ...}` as Python's
    /// `json.dumps` writes it.
    pub fn serialize(&self) -> Bytes {
        let mut out = Vec::new();
        write_py_json(&mut out, &self.to_json());
        Bytes::from(out)
    }

    /// `{"header": {...}, "body": "..."}` (hop's `asdict(circular)`).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("header".into(), Value::Object(self.header.clone()));
        m.insert("body".into(), Value::String(self.body.clone()));
        Value::Object(m)
    }

    /// The circular as text, as hop's `str(circular)` (and so `hop
    /// subscribe`) prints it: per header `KEY:` left-justified to 9
    /// characters followed by the value, then an empty line, then the body,
    /// joined with `\n`. A value that is not a string (only JSON can hold
    /// one; hop's `str` raises on it) is written as JSON.
    pub fn to_rfc822(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.header {
            let key = format!("{}:", name.to_uppercase());
            out.push_str(&key);
            for _ in key.chars().count()..9 {
                out.push(' ');
            }
            match value {
                Value::String(s) => out.push_str(s),
                other => {
                    let mut json = Vec::new();
                    write_py_json(&mut json, other);
                    out.push_str(&String::from_utf8_lossy(&json));
                }
            }
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.body);
        out
    }
}

impl fmt::Display for Circular {
    /// [`Circular::to_rfc822`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc822())
    }
}

/// The lines of `text` with their ends (`\r\n`, `\r` or `\n`), as the
/// email parser's line splitter cuts them; the last may have no end.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..=i]);
                start = i + 1;
            }
            b'\r' => {
                let end = if bytes.get(i + 1) == Some(&b'\n') {
                    i + 1
                } else {
                    i
                };
                lines.push(&text[start..=end]);
                i = end;
                start = end + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// `email.feedparser.headerRE`: `From `, a (possibly empty) name of
/// printable ASCII other than `:` followed by `:`, or a continuation.
fn is_header_line(line: &str) -> bool {
    if line.starts_with("From ") || line.starts_with([' ', '\t']) {
        return true;
    }
    let end = line
        .bytes()
        .position(|b| !(0x21..=0x7e).contains(&b) || b == b':');
    matches!(end, Some(i) if line.as_bytes()[i] == b':')
}

/// `FeedParser._parse_headers` with `compat32.header_source_parse`: the
/// (name, value) pairs, and a trailing `From ` line that goes back to the
/// body.
fn parse_headers<'a>(lines: &[&'a str]) -> (Vec<(String, String)>, Option<&'a str>) {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for (lineno, line) in lines.iter().copied().enumerate() {
        if line.starts_with([' ', '\t']) {
            // A continuation with no header before it is a defect Python
            // records and skips.
            if let Some(c) = current.as_mut() {
                c.push(line);
            }
            continue;
        }
        if let Some(c) = current.take() {
            out.push(source_parse(&c));
        }
        if line.starts_with("From ") {
            if lineno == 0 {
                // The mbox envelope line: not a header.
                continue;
            }
            if lineno + 1 == lines.len() {
                // Probably the first body line.
                return (out, Some(line));
            }
            // Misplaced envelope line: a defect, ignored.
            continue;
        }
        match line.find(':') {
            // "Missing header name": a defect, skipped with its
            // continuation lines.
            Some(0) | None => {}
            Some(_) => current = Some(vec![line]),
        }
    }
    if let Some(c) = current.take() {
        out.push(source_parse(&c));
    }
    (out, None)
}

/// `compat32.header_source_parse`: the name before the first `:`; the
/// value after it without leading spaces and tabs, continuation lines
/// appended as they are, trailing line ends removed.
fn source_parse(lines: &[&str]) -> (String, String) {
    let first = lines.first().copied().unwrap_or_default();
    let (name, value) = first.split_once(':').unwrap_or((first, ""));
    let mut v = value.trim_start_matches([' ', '\t']).to_string();
    for more in lines.iter().skip(1) {
        v.push_str(more);
    }
    let v = v.trim_end_matches(['\r', '\n']).to_string();
    (name.to_string(), v)
}

/// `Message.get_content_type` for a header value: the part before any
/// `;`, lowercased and stripped; `text/plain` unless it has one `/`.
fn content_type(value: &str) -> String {
    let ctype = py_strip(value.split(';').next().unwrap_or_default()).to_lowercase();
    if ctype.matches('/').count() == 1 {
        ctype
    } else {
        "text/plain".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Message;
    use proptest::prelude::*;
    use serde_json::json;

    /// A (fictional) GCN circular file, and the record value hop-client
    /// publishes for it (`json.dumps(asdict(GCNCircular.load_file(...)))`,
    /// written by stream/tests/fixtures/make_expected.py).
    const CIRCULAR: &[u8] = include_bytes!("../../tests/fixtures/gcn_circular.txt");
    const EXPECTED: &[u8] = include_bytes!("../../tests/fixtures/gcn_circular.expected.json");

    fn header(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect()
    }

    #[test]
    fn loads_a_circular_file_and_writes_hops_bytes() {
        let c = Circular::from_file_bytes(CIRCULAR).unwrap();
        assert_eq!(
            String::from_utf8(c.serialize().to_vec()).unwrap(),
            String::from_utf8(EXPECTED.to_vec()).unwrap()
        );
        assert_eq!(c.header["title"], "GCN CIRCULAR");
        assert_eq!(c.header["number"], "99901");
        assert_eq!(
            c.header["from"],
            "A. Observer at Example Observatory <observer@example.org>"
        );
        assert_eq!(
            c.header.keys().collect::<Vec<_>>(),
            ["title", "number", "subject", "date", "from"]
        );
        assert!(c.body.starts_with("A. Observer, B. Colleague"));
        assert!(c.body.ends_with("no real observation.\n"));
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gcn_circular.txt"
        );
        assert_eq!(Circular::load_file(path).unwrap(), c);
        assert!(matches!(
            Circular::load_file("/nonexistent/c.txt"),
            Err(DecodeError::Io { .. })
        ));
        assert_eq!(c.format_name(), "circular");
    }

    #[test]
    fn wire_round_trip() {
        let c = Circular::from_file_bytes(CIRCULAR).unwrap();
        let m = Message::Circular(c.clone());
        assert_eq!(m.format_name(), "circular");
        assert_eq!(m.serialize(), c.serialize());
        assert_eq!(Circular::deserialize(&m.serialize()).unwrap(), c);
        assert_eq!(
            Message::deserialize(Some(b"CIRCULAR"), Some(&m.serialize())),
            m
        );
        // hop's own field order is header, body; a writer may differ.
        let swapped = br#"{"body": "b", "header": {"k": 1, "n": [true, null]}}"#;
        let c = Circular::deserialize(swapped).unwrap();
        assert_eq!(
            c.header,
            *json!({"k": 1, "n": [true, null]}).as_object().unwrap()
        );
        assert_eq!(
            &c.serialize()[..],
            br#"{"header": {"k": 1, "n": [true, null]}, "body": "b"}"#
        );
    }

    #[test]
    fn invalid_values_are_clear_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"{oops", "invalid JSON"),
            (b"\xff", "invalid JSON"),
            (b"[1]", "not an object"),
            (br#"{"header": {}}"#, "no body"),
            (br#"{"body": ""}"#, "no header"),
            (br#"{"header": {}, "body": "", "x": 1}"#, "\"x\""),
            (br#"{"header": [], "body": ""}"#, "header is not an object"),
            (br#"{"header": {}, "body": 5}"#, "body is not a string"),
        ];
        for &(value, want) in cases {
            let e = Circular::deserialize(value).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
            let value = Bytes::copy_from_slice(value);
            assert_eq!(
                Message::deserialize(Some(b"circular"), Some(&value)),
                Message::Blob(value)
            );
        }
    }

    #[test]
    fn prints_like_hop() {
        let c = Circular::new(
            header(&[
                ("title", "GCN CIRCULAR"),
                ("number", "1"),
                ("subject", "s"),
                ("x-long-name", "v"),
            ]),
            "\nbody\n",
        );
        assert_eq!(
            c.to_rfc822(),
            "TITLE:   GCN CIRCULAR\nNUMBER:  1\nSUBJECT: s\nX-LONG-NAME:v\n\n\nbody\n"
        );
        assert_eq!(c.to_string(), c.to_rfc822());
        assert_eq!(
            Circular::load_rfc822(&c.to_rfc822()).unwrap().header,
            c.header
        );
        assert_eq!(Circular::load_rfc822(&c.to_rfc822()).unwrap().body, c.body);
        assert_eq!(Circular::new(Map::new(), "b").to_rfc822(), "\nb");
        let odd = Circular::new(
            json!({"n": 5, "stra\u{df}e": "x"})
                .as_object()
                .unwrap()
                .clone(),
            "",
        );
        assert_eq!(odd.to_rfc822(), "N:       5\nSTRASSE: x\n\n");
    }

    #[test]
    fn email_parser_rules() {
        let load = |t: &str| Circular::load_rfc822(t).unwrap();
        // Continuations keep their line ends; CRLF stays in values and body.
        let c = load("Subject: a\r\n  b\r\n\tc\r\nDate:d\r\n\r\nbody\r\nmore");
        assert_eq!(
            c.header,
            header(&[("subject", "a\r\n  b\r\n\tc"), ("date", "d")])
        );
        assert_eq!(c.body, "body\r\nmore");
        // Lone CR line ends.
        let c = load("A: 1\rB: 2\r\rx");
        assert_eq!(c.header, header(&[("a", "1"), ("b", "2")]));
        assert_eq!(c.body, "x");
        // No blank line: the first non-header line starts the body.
        let c = load("A: 1\nnot a header\nB: 2\n");
        assert_eq!(c.header, header(&[("a", "1")]));
        assert_eq!(c.body, "not a header\nB: 2\n");
        // A space before the colon is not a header name.
        let c = load("Bad name: 1\n");
        assert!(c.header.is_empty());
        assert_eq!(c.body, "Bad name: 1\n");
        // Repeated names: first place, last value; names lowercased.
        let c = load("B: 1\nA: 2\nb: 3\n\n");
        assert_eq!(c.header, header(&[("b", "3"), ("a", "2")]));
        assert_eq!(c.body, "");
        // An mbox envelope line first is dropped; later it is ignored; last
        // in the header it starts the body (the blank line is lost).
        let c = load("From someone\nA: 1\nFrom x\nB: 2\n\nbody");
        assert_eq!(c.header, header(&[("a", "1"), ("b", "2")]));
        assert_eq!(c.body, "body");
        let c = load("A: 1\nFrom x\n\nbody");
        assert_eq!(c.header, header(&[("a", "1")]));
        assert_eq!(c.body, "From x\nbody");
        // A leading continuation and a missing name are skipped.
        let c = load(" lost\n: nameless\n more\nA:  \t x \nB:\n");
        assert_eq!(c.header, header(&[("a", "x "), ("b", "")]));
        // Empty input; header only; body only.
        assert_eq!(load(""), Circular::default());
        assert_eq!(load("A: 1").header, header(&[("a", "1")]));
        assert_eq!(load("\nbody").body, "body");
        assert_eq!(load("body only").body, "body only");
        // The file form: universal newlines, UTF-8 required.
        let c = Circular::from_file_bytes(b"A: 1\r\n b\r\rx\r\n").unwrap();
        assert_eq!(c.header, header(&[("a", "1\n b")]));
        assert_eq!(c.body, "x\n");
        assert!(matches!(
            Circular::from_file_bytes(b"A: \xff\n"),
            Err(DecodeError::NotUtf8 { valid_up_to: 3 })
        ));
    }

    #[test]
    fn nested_message_bodies_are_refused() {
        for ct in [
            "multipart/mixed; boundary=x",
            "Message/RFC822",
            " multipart/alternative ",
        ] {
            let e = Circular::load_rfc822(&format!("Content-Type: {ct}\n\nbody")).unwrap_err();
            assert!(matches!(e, DecodeError::NotCircular { .. }), "{e}");
        }
        // Anything else is text.
        for ct in ["text/plain", "multipart", "a/b/c"] {
            let c = Circular::load_rfc822(&format!("Content-Type: {ct}\n\nbody")).unwrap();
            assert_eq!(c.body, "body");
        }
    }

    proptest! {
        #[test]
        fn wire_round_trips(
            kv in proptest::collection::vec((any::<String>(), any::<String>()), 0..6),
            body in any::<String>(),
        ) {
            let c = Circular::new(
                kv.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
                body,
            );
            let wire = c.serialize();
            prop_assert!(wire.is_ascii());
            prop_assert_eq!(&Circular::deserialize(&wire).unwrap(), &c);
            let m = Message::Circular(c);
            prop_assert_eq!(Message::deserialize(Some(b"circular"), Some(&wire)), m);
        }

        #[test]
        fn printed_form_loads_back(
            kv in proptest::collection::vec(("[a-z][a-z0-9-]{0,10}", "([!-~\u{e9}]([ -~]{0,20}[!-~])?)?"), 0..6),
            body in any::<String>(),
        ) {
            let c = Circular::new(
                kv.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
                body,
            );
            let back = Circular::load_rfc822(&c.to_rfc822()).unwrap();
            prop_assert_eq!(back, c);
        }

        #[test]
        fn any_text_loads(text in any::<String>()) {
            // Every text is a circular unless it declares nested messages.
            if let Ok(c) = Circular::load_rfc822(&text) {
                prop_assert!(c.body.len() <= text.len());
                prop_assert_eq!(Circular::deserialize(&c.serialize()).unwrap(), c);
            }
        }
    }
}
