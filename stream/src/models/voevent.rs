//! hop-client's `VOEvent` model (`_format: voevent`): an IVOA VOEvent 2.0
//! alert, XML on the wire.
//!
//! # What hop-client does (`hop/models.py`, class `VOEvent`)
//!
//! - **Reading** (`VOEvent.load`, used by `deserialize` and `load_file`):
//!   the XML goes through `xmltodict.parse(xml, attr_prefix="")`: every
//!   element becomes its text (whitespace-stripped), or `null` when empty,
//!   or, when it has attributes or children, a map of its attributes (no
//!   prefix: hop passes `attr_prefix=""`), then its children in document
//!   order, then its text under `#text`. A name seen twice in one element
//!   becomes a list. Names are kept as written (`voe:VOEvent`: no namespace
//!   processing). The root must be `voe:VOEvent`; its keys holding a `:`
//!   (`xmlns:voe`, `xsi:schemaLocation`, ...) are dropped and the others
//!   become the dataclass fields `ivorn`, `role` (default `observation`),
//!   `version` (default `2.0`), `Who`, `What`, `WhereWhen`, `How`, `Why`,
//!   `Citations`, `Description`, `Reference` (each default `{}`). Any other
//!   key (an unknown child, a default `xmlns`, text directly in the root)
//!   makes hop's constructor raise, and so a [`DecodeError::NotVoEvent`]
//!   here. The XML bytes are kept as `_raw`.
//! - **Writing** (`VOEvent.__bytes__`): `_raw`, unchanged, so a read
//!   VOEvent re-publishes byte for byte.
//! - **Old writers** (`VOEvent.deserialize`): hop-client 0.6 to 0.11 sent
//!   the dataclass as JSON (`json.dumps(asdict(voevent))`). When the value
//!   is not a VOEvent XML, hop reads it as that JSON, marks the keys the
//!   VOEvent schema knows as attributes (`VOEvent.is_attribute`: `ivorn`,
//!   `name`, `value`, `ucd`, ...) and rebuilds the XML with
//!   `xmltodict.unparse({"voe:VOEvent": fields}, attr_prefix="@",
//!   short_empty_elements=True)`. skotch writes the same bytes
//!   ([`VoEvent::deserialize`]) and reads its fields back from them, so a
//!   VOEvent always equals what its own bytes read as. (hop keeps the
//!   JSON's values instead; the two differ only where xmltodict does not
//!   round-trip: an empty `{}` reads back as `null`, a number as its text.)
//!   When neither reading works, the XML error is reported, as hop does.
//!
//! # Hostile XML
//!
//! The parser is quick-xml (pure Rust) driven by our own checks, and it
//! never expands an entity other than the five XML predefines and
//! character references: a document type declaration (where entities are
//! declared) is refused whole ([`DecodeError::Doctype`]), an unknown entity
//! reference is an error ([`DecodeError::UnknownEntity`]). Memory is
//! bounded by the input size and these limits, each a
//! [`DecodeError::LimitExceeded`] naming the limit:
//!
//! | limit | constant |
//! |-------|----------|
//! | document size | [`MAX_DOCUMENT_BYTES`] (8 MiB) |
//! | element nesting depth | [`MAX_DEPTH`] (64) |
//! | elements plus attributes | [`MAX_NODES`] (100 000) |
//! | text of one element | [`MAX_TEXT_BYTES`] (1 MiB) |
//! | one attribute value | [`MAX_ATTRIBUTE_BYTES`] (64 KiB) |
//! | one element or attribute name | [`MAX_NAME_BYTES`] (1 KiB) |
//!
//! Real VOEvents are a few kB, a few levels deep, with at most hundreds of
//! elements. Besides, the XML must be well-formed as expat (which hop uses)
//! requires, and quick-xml alone does not check: one root element, matching
//! tags, legal XML characters, names (ASCII as XML defines them; beyond
//! ASCII, letters and digits, close to expat's older name classes),
//! attributes separated by whitespace, no `<` in attribute values, no `]]>`
//! in text, comments without `--` and not ending in `-`, processing
//! instruction targets that are names other than `xml`, and an XML
//! declaration only at the very start, with `version`, then optionally
//! `encoding` and `standalone`. Encodings: UTF-8 (with or without a byte
//! order mark), US-ASCII and ISO-8859-1; anything else is
//! [`DecodeError::UnsupportedEncoding`]. Line ends are normalised (`\r\n`
//! and `\r` → `\n`) and attribute values have their tabs and line ends
//! turned into spaces, as every XML parser does.
//!
//! One deliberate difference: a document type declaration without entity
//! declarations, which expat accepts, is refused here too.

use std::path::Path;

use bytes::Bytes;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::{Map, Value};

use super::{py_strip, read_file, DecodeError, VOEVENT_FORMAT};

/// Largest VOEvent document read, in bytes (8 MiB; a real one is a few kB).
pub const MAX_DOCUMENT_BYTES: usize = 8 << 20;
/// Deepest element nesting read (the VOEvent schema needs about 8).
pub const MAX_DEPTH: usize = 64;
/// Most elements plus attributes in one document.
pub const MAX_NODES: usize = 100_000;
/// Longest text of one element (all its text and CDATA pieces, after
/// entity and character references are replaced), in bytes.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// Longest attribute value, in bytes, as written in the document.
pub const MAX_ATTRIBUTE_BYTES: usize = 64 << 10;
/// Longest element or attribute name, in bytes.
pub const MAX_NAME_BYTES: usize = 1 << 10;

/// The root element hop-client requires (`vo["voe:VOEvent"]`).
const ROOT: &str = "voe:VOEvent";

/// hop's `VOEvent` dataclass fields, in declaration order (which is the
/// order `asdict` and so `str(voevent)` and the JSON fallback use), minus
/// the private `_raw`.
const FIELDS: [&str; 11] = [
    "ivorn",
    "role",
    "version",
    "Who",
    "What",
    "WhereWhen",
    "How",
    "Why",
    "Citations",
    "Description",
    "Reference",
];

/// The keys hop's `VOEvent.is_attribute` treats as XML attributes when it
/// rebuilds XML from old JSON (every attribute name of the VOEvent 2.0
/// schema).
const KNOWN_ATTRIBUTES: [&str; 20] = [
    "cite",
    "coord_system_id",
    "dataType",
    "expires",
    "id",
    "importance",
    "ivorn",
    "meaning",
    "mimetype",
    "name",
    "probability",
    "relation",
    "role",
    "type",
    "ucd",
    "unit",
    "uri",
    "utype",
    "value",
    "version",
];

/// A VOEvent 2.0 alert as hop-client's `VOEvent` holds it: the raw XML and
/// the fields parsed from it (see the [module docs](self)).
///
/// A `VoEvent` is always the reading of its [`raw`](VoEvent::raw) bytes,
/// so it is built only by [`VoEvent::from_xml`], [`VoEvent::deserialize`]
/// and [`VoEvent::load_file`]; to change an alert, change its XML.
#[derive(Debug, Clone, PartialEq)]
pub struct VoEvent {
    raw: Bytes,
    // Boxed: eleven JSON values would make every `Message` large.
    fields: Box<[Value; 11]>,
}

impl VoEvent {
    /// Parses VOEvent XML, as hop's `VOEvent.load` (no JSON fallback).
    ///
    /// Errors: [`DecodeError::NotUtf8`], [`DecodeError::UnsupportedEncoding`],
    /// [`DecodeError::Xml`], [`DecodeError::Doctype`],
    /// [`DecodeError::UnknownEntity`], [`DecodeError::LimitExceeded`] for
    /// XML problems; [`DecodeError::NotVoEvent`] for well-formed XML that
    /// is not a VOEvent as hop reads one.
    pub fn from_xml(xml: impl Into<Bytes>) -> Result<VoEvent, DecodeError> {
        let raw = xml.into();
        let (root_name, root) = parse_xml(&raw)?;
        Self::from_tree(raw, &root_name, root)
    }

    /// Decodes a record value, as hop's `VOEvent.deserialize`: XML first,
    /// then the JSON that hop-client 0.6 to 0.11 wrote, rebuilt into the
    /// XML hop-client rebuilds (module docs).
    ///
    /// Errors: as [`VoEvent::from_xml`]; when the JSON reading fails too,
    /// the XML error is the one returned (as hop re-raises it).
    pub fn deserialize(value: impl Into<Bytes>) -> Result<VoEvent, DecodeError> {
        let raw = value.into();
        match Self::from_xml(raw.clone()) {
            Ok(v) => Ok(v),
            Err(xml_error) => Self::from_legacy_json(&raw).map_err(|_| xml_error),
        }
    }

    /// Reads a VOEvent XML file, as hop's `VOEvent.load_file` (binary
    /// read, then `load`; what `hop publish -f VOEVENT FILE` does).
    ///
    /// Errors: [`DecodeError::Io`] when the file cannot be read, else as
    /// [`VoEvent::from_xml`].
    pub fn load_file(path: impl AsRef<Path>) -> Result<VoEvent, DecodeError> {
        Self::from_xml(read_file(path.as_ref())?)
    }

    /// The `_format` header value: `voevent`.
    pub fn format_name(&self) -> &'static str {
        VOEVENT_FORMAT
    }

    /// The record value: the XML bytes, unchanged (hop's `bytes(voevent)`).
    pub fn serialize(&self) -> Bytes {
        self.raw.clone()
    }

    /// The XML bytes this VOEvent was read from (or rebuilt as, for old
    /// JSON).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// A field by hop's dataclass name (`"ivorn"`, `"role"`, `"version"`,
    /// `"Who"`, `"What"`, `"WhereWhen"`, `"How"`, `"Why"`, `"Citations"`,
    /// `"Description"`, `"Reference"`); `None` for any other name.
    pub fn field(&self, name: &str) -> Option<&Value> {
        let i = FIELDS.iter().position(|f| *f == name)?;
        self.fields.get(i)
    }

    fn at(&self, i: usize) -> &Value {
        static NULL: Value = Value::Null;
        // `i` is always a FIELDS index below.
        self.fields.get(i).unwrap_or(&NULL)
    }

    /// The `ivorn` attribute of the root (normally a string; hop does not
    /// check).
    pub fn ivorn(&self) -> &Value {
        self.at(0)
    }
    /// The `role` attribute; `"observation"` when absent.
    pub fn role(&self) -> &Value {
        self.at(1)
    }
    /// The `version` attribute; `"2.0"` when absent.
    pub fn version(&self) -> &Value {
        self.at(2)
    }
    /// `<Who>` in xmltodict's mapping; `{}` when absent.
    pub fn who(&self) -> &Value {
        self.at(3)
    }
    /// `<What>`; `{}` when absent.
    pub fn what(&self) -> &Value {
        self.at(4)
    }
    /// `<WhereWhen>`; `{}` when absent.
    pub fn where_when(&self) -> &Value {
        self.at(5)
    }
    /// `<How>`; `{}` when absent.
    pub fn how(&self) -> &Value {
        self.at(6)
    }
    /// `<Why>`; `{}` when absent.
    pub fn why(&self) -> &Value {
        self.at(7)
    }
    /// `<Citations>`; `{}` when absent.
    pub fn citations(&self) -> &Value {
        self.at(8)
    }
    /// `<Description>` (usually its text); `{}` when absent.
    pub fn description(&self) -> &Value {
        self.at(9)
    }
    /// `<Reference>`; `{}` when absent.
    pub fn reference(&self) -> &Value {
        self.at(10)
    }

    /// The fields as one JSON object in hop's order, without the raw XML:
    /// what hop's `str(voevent)` prints (there with `indent=2`), and the
    /// JSON hop-client 0.6 to 0.11 put on the wire.
    pub fn to_json(&self) -> Value {
        Value::Object(
            FIELDS
                .iter()
                .zip(self.fields.iter())
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    /// hop's `VOEvent(**root)` after `load` dropped the namespaced keys.
    fn from_tree(raw: Bytes, root_name: &str, root: Value) -> Result<VoEvent, DecodeError> {
        if root_name != ROOT {
            return Err(not_voevent(format!(
                "the root element is <{root_name}>, not <{ROOT}>"
            )));
        }
        let Value::Object(map) = root else {
            return Err(not_voevent(format!(
                "<{ROOT}> has no attributes or children"
            )));
        };
        let mut fields = default_fields();
        let mut has_ivorn = false;
        for (key, value) in map {
            // hop: `{k: v for k, v in root.items() if ":" not in k}`, then
            // `data["_raw"] = xml`, which replaces any element named _raw.
            if key.contains(':') || key == "_raw" {
                continue;
            }
            let Some(i) = FIELDS.iter().position(|f| *f == key) else {
                return Err(not_voevent(format!(
                    "unexpected {key:?} in <{ROOT}> (hop-client's VOEvent has no such field)"
                )));
            };
            has_ivorn |= i == 0;
            fields[i] = value;
        }
        if !has_ivorn {
            return Err(not_voevent(format!("<{ROOT}> has no ivorn attribute")));
        }
        Ok(VoEvent {
            raw,
            fields: Box::new(fields),
        })
    }

    /// hop's fallback in `VOEvent.deserialize` for the JSON of hop-client
    /// 0.6 to 0.11: `VOEvent(**json)`, then `_raw` rebuilt with
    /// `xmltodict.unparse`; the fields are read back from that XML.
    fn from_legacy_json(value: &[u8]) -> Result<VoEvent, DecodeError> {
        if value.len() > MAX_DOCUMENT_BYTES {
            return Err(limit("document size in bytes", MAX_DOCUMENT_BYTES, 0));
        }
        let Value::Object(json) = serde_json::from_slice::<Value>(value)? else {
            return Err(not_voevent("the JSON is not an object".into()));
        };
        // The dataclass constructor: only its fields (and _raw, which
        // asdict's dict_factory then drops), ivorn required.
        if let Some(k) = json
            .keys()
            .find(|k| *k != "_raw" && !FIELDS.contains(&k.as_str()))
        {
            return Err(not_voevent(format!(
                "unexpected {k:?} in the JSON (hop-client's VOEvent has no such field)"
            )));
        }
        if !json.contains_key("ivorn") {
            return Err(not_voevent("the JSON has no ivorn".into()));
        }
        // asdict(result, dict_factory): the fields in declaration order,
        // defaults for the missing ones.
        let defaults = default_fields();
        let mut fields: Map<String, Value> = FIELDS
            .iter()
            .zip(defaults)
            .map(|(k, d)| (k.to_string(), json.get(*k).cloned().unwrap_or(d)))
            .collect();
        label_attributes(&mut fields);
        let mut out = String::new();
        out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        let mut emitter = Emitter {
            out,
            pending_start: false,
        };
        emitter.element(ROOT, &Value::Object(fields))?;
        Self::from_xml(emitter.out.into_bytes())
    }
}

fn not_voevent(reason: String) -> DecodeError {
    DecodeError::NotVoEvent { reason }
}

fn limit(what: &'static str, limit: usize, position: u64) -> DecodeError {
    DecodeError::LimitExceeded {
        what,
        limit,
        position,
    }
}

fn xml_error(position: u64, message: impl Into<String>) -> DecodeError {
    DecodeError::Xml {
        position,
        message: message.into(),
    }
}

/// hop's dataclass defaults, in [`FIELDS`] order.
fn default_fields() -> [Value; 11] {
    let empty = || Value::Object(Map::new());
    [
        Value::Null, // ivorn has no default: required
        Value::String("observation".into()),
        Value::String("2.0".into()),
        empty(),
        empty(),
        empty(),
        empty(),
        empty(),
        empty(),
        empty(),
        empty(),
    ]
}

// --- Reading: xmltodict.parse(xml, attr_prefix="") ------------------------

/// An element being read: xmltodict's `(item, data)` pair on its stack.
struct Frame {
    name: String,
    /// Attributes, then children; `None` until there is one.
    item: Option<Map<String, Value>>,
    /// All character data of the element, joined (cdata_separator "").
    text: String,
}

/// xmltodict's `push_data`: a second value under one key makes a list.
fn push_data(item: &mut Map<String, Value>, key: String, value: Value) {
    match item.get_mut(&key) {
        Some(Value::Array(list)) => list.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            item.insert(key, value);
        }
    }
}

/// The document as text: the limits on size, the byte order mark, the
/// declared encoding.
fn document_text(bytes: &[u8]) -> Result<(std::borrow::Cow<'_, str>, u64), DecodeError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(limit("document size in bytes", MAX_DOCUMENT_BYTES, 0));
    }
    if bytes.starts_with(&[0xfe, 0xff]) || bytes.starts_with(&[0xff, 0xfe]) {
        return Err(DecodeError::UnsupportedEncoding {
            encoding: "UTF-16".into(),
        });
    }
    let (body, base) = match bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        Some(rest) => (rest, 3),
        None => (bytes, 0),
    };
    let declared = declared_encoding(body).map(|e| e.to_ascii_lowercase());
    let text = match declared.as_deref() {
        None | Some("utf-8" | "utf8" | "utf_8") => {
            std::borrow::Cow::Borrowed(std::str::from_utf8(body)?)
        }
        Some("us-ascii" | "us_ascii" | "ascii" | "646") => {
            match body.iter().position(|b| !b.is_ascii()) {
                Some(at) => {
                    return Err(xml_error(
                        base + at as u64,
                        "byte above 0x7F in a US-ASCII document",
                    ))
                }
                None => std::borrow::Cow::Borrowed(std::str::from_utf8(body)?),
            }
        }
        // Every byte is the code point of the same value.
        Some(
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "iso_8859_1" | "latin-1" | "latin1"
            | "latin" | "l1" | "cp819",
        ) => std::borrow::Cow::Owned(body.iter().map(|&b| char::from(b)).collect()),
        Some(other) => {
            return Err(DecodeError::UnsupportedEncoding {
                encoding: other.to_string(),
            })
        }
    };
    Ok((text, base))
}

/// The `encoding` pseudo-attribute of an XML declaration at the very start
/// of `doc`, read before decoding (the declaration is ASCII in every
/// encoding we read). Malformed declarations are left to the parser.
fn declared_encoding(doc: &[u8]) -> Option<String> {
    let rest = doc.strip_prefix(b"<?xml")?;
    if !rest.first().is_some_and(|b| b.is_ascii_whitespace()) {
        return None;
    }
    // A declaration is short; do not scan a hostile document for "?>".
    let window = &rest[..rest.len().min(256)];
    let end = window.windows(2).position(|w| w == b"?>")?;
    let decl = &window[..end];
    let at = decl.windows(8).position(|w| w == b"encoding")?;
    let mut s = decl[at + 8..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace());
    if s.next() != Some(&b'=') {
        return None;
    }
    let mut s = s.skip_while(|b| b.is_ascii_whitespace());
    let quote = *s.next()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let name: Vec<u8> = s.take_while(|b| **b != quote).copied().collect();
    String::from_utf8(name).ok()
}

/// The XML declaration's grammar (XML 1.0 `XMLDecl`): `version`, then
/// optionally `encoding`, then optionally `standalone`, each after
/// whitespace, as `name = "value"` or with single quotes.
fn check_declaration(decl: &str) -> Result<(), &'static str> {
    const MALFORMED: &str = "malformed XML declaration";
    let mut rest = decl
        .strip_prefix("<?xml")
        .and_then(|s| s.strip_suffix("?>"))
        .ok_or(MALFORMED)?;
    const NAMES: [&str; 3] = ["version", "encoding", "standalone"];
    // How many of NAMES are behind us: each at most once, in order.
    let mut seen = 0;
    loop {
        let trimmed = rest.trim_start_matches(is_xml_space);
        if trimmed.is_empty() {
            break;
        }
        if trimmed.len() == rest.len() {
            return Err(MALFORMED);
        }
        let name_end = trimmed
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(trimmed.len());
        let index = NAMES
            .iter()
            .position(|n| *n == &trimmed[..name_end])
            .ok_or(MALFORMED)?;
        if index < seen || (seen == 0 && index != 0) {
            return Err(MALFORMED);
        }
        seen = index + 1;
        let after = trimmed[name_end..].trim_start_matches(is_xml_space);
        let after = after
            .strip_prefix('=')
            .ok_or(MALFORMED)?
            .trim_start_matches(is_xml_space);
        let quote = after
            .chars()
            .next()
            .filter(|q| *q == '"' || *q == '\'')
            .ok_or(MALFORMED)?;
        let body = &after[1..];
        let end = body.find(quote).ok_or(MALFORMED)?;
        let value = &body[..end];
        let valid = match index {
            // expat accepts any version made of these, even an empty one.
            0 => value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
            1 => {
                value.starts_with(|c: char| c.is_ascii_alphabetic())
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            }
            _ => value == "yes" || value == "no",
        };
        if !valid {
            return Err(MALFORMED);
        }
        rest = &body[end + 1..];
    }
    if seen == 0 {
        return Err(MALFORMED);
    }
    Ok(())
}

/// Whether every quoted attribute value in a start tag is followed by
/// whitespace or the end of the tag (`<a b="1"c="2">` is not XML, though
/// quick-xml reads it).
fn attributes_separated(raw: &[u8]) -> bool {
    let mut quote = None;
    let mut need_space = false;
    for &b in raw {
        match quote {
            Some(q) if b == q => {
                quote = None;
                need_space = true;
            }
            Some(_) => {}
            None if need_space && !b.is_ascii_whitespace() => return false,
            None => {
                need_space = false;
                if b == b'"' || b == b'\'' {
                    quote = Some(b);
                }
            }
        }
    }
    true
}

/// A processing instruction's target must be a name other than `xml` in
/// any case (that one is the declaration, allowed only at the start),
/// followed by whitespace or the end.
fn check_processing_instruction(content: &[u8], position: u64) -> Result<(), DecodeError> {
    let end = content
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(content.len());
    let target = &content[..end];
    if target.eq_ignore_ascii_case(b"xml") {
        return Err(xml_error(position, "XML declaration not at the start"));
    }
    check_name(target, position).map(|_| ())
}

/// XML 1.0 `Char`: what may appear in a document at all.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// XML 1.0 (fifth edition) `NameStartChar`, narrowed beyond ASCII to
/// letters: expat (hop's parser) still uses the older, Unicode 2.0 based
/// name classes, which leave out symbols and format characters (U+FEFF)
/// that the fifth edition allows. The two agree on every ASCII name.
fn is_name_start(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, ':' | 'A'..='Z' | '_' | 'a'..='z');
    }
    c.is_alphabetic() && is_name_start_range(c)
}

/// XML 1.0 (fifth edition) `NameChar`, narrowed like [`is_name_start`].
fn is_name_char(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, ':' | 'A'..='Z' | '_' | 'a'..='z' | '-' | '.' | '0'..='9');
    }
    is_name_start(c)
        || matches!(c, '\u{b7}' | '\u{300}'..='\u{36f}' | '\u{203f}'..='\u{2040}')
        || (c.is_alphanumeric() && is_name_start_range(c))
}

/// The non-ASCII ranges of the fifth edition's `NameStartChar`.
fn is_name_start_range(c: char) -> bool {
    matches!(c,
        '\u{c0}'..='\u{d6}' | '\u{d8}'..='\u{f6}' | '\u{f8}'..='\u{2ff}'
        | '\u{370}'..='\u{37d}' | '\u{37f}'..='\u{1fff}' | '\u{200c}'..='\u{200d}'
        | '\u{2070}'..='\u{218f}' | '\u{2c00}'..='\u{2fef}' | '\u{3001}'..='\u{d7ff}'
        | '\u{f900}'..='\u{fdcf}' | '\u{fdf0}'..='\u{fffd}' | '\u{10000}'..='\u{effff}')
}

fn check_name(name: &[u8], position: u64) -> Result<String, DecodeError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(limit("name length in bytes", MAX_NAME_BYTES, position));
    }
    let name = std::str::from_utf8(name).map_err(|_| xml_error(position, "name is not UTF-8"))?;
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(is_name_start) && chars.all(is_name_char);
    if !valid {
        return Err(xml_error(position, format!("invalid name {name:?}")));
    }
    Ok(name.to_string())
}

/// What `&name;` stands for: one of the five predefined entities or a
/// character reference. Nothing else is ever expanded.
fn resolve_reference(name: &str, position: u64) -> Result<char, DecodeError> {
    let code = if let Some(hex) = name.strip_prefix("#x") {
        u32::from_str_radix(hex, 16).ok()
    } else if let Some(dec) = name.strip_prefix('#') {
        dec.parse::<u32>().ok()
    } else {
        return match name {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            _ => Err(DecodeError::UnknownEntity {
                name: name.chars().take(64).collect(),
                position,
            }),
        };
    };
    // from_str_radix and parse accept a leading '+', XML does not.
    let digits_ok = name.bytes().skip(1).all(|b| b.is_ascii_alphanumeric());
    match code.and_then(char::from_u32) {
        Some(c) if digits_ok && is_xml_char(c) => Ok(c),
        _ => Err(xml_error(
            position,
            format!(
                "invalid character reference &{};",
                name.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// Text with XML's line-end normalisation (`\r\n` and `\r` → `\n`).
fn push_normalized(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(i) = rest.find('\r') {
        out.push_str(&rest[..i]);
        out.push('\n');
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('\n') {
            rest = after;
        }
    }
    out.push_str(rest);
}

/// An attribute value as an XML parser reports it: line ends and tabs
/// become spaces, then references are replaced (a `&#10;` stays a line
/// feed).
fn attribute_value(raw: &[u8], position: u64) -> Result<String, DecodeError> {
    if raw.len() > MAX_ATTRIBUTE_BYTES {
        return Err(limit(
            "attribute value length in bytes",
            MAX_ATTRIBUTE_BYTES,
            position,
        ));
    }
    let raw = std::str::from_utf8(raw)
        .map_err(|_| xml_error(position, "attribute value is not UTF-8"))?;
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '<', '\r', '\n', '\t']) {
        out.push_str(&rest[..i]);
        let special = rest.as_bytes()[i];
        rest = &rest[i + 1..];
        match special {
            b'<' => return Err(xml_error(position, "'<' in an attribute value")),
            b'&' => {
                let Some(end) = rest.find(';') else {
                    return Err(xml_error(position, "'&' without ';' in an attribute value"));
                };
                out.push(resolve_reference(&rest[..end], position)?);
                rest = &rest[end + 1..];
            }
            b'\r' => {
                out.push(' ');
                if let Some(after) = rest.strip_prefix('\n') {
                    rest = after;
                }
            }
            _ => out.push(' '),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The reading state: xmltodict's `_DictSAXHandler` with the limits.
struct TreeBuilder {
    stack: Vec<Frame>,
    root: Option<(String, Value)>,
    nodes: usize,
}

impl TreeBuilder {
    fn count_node(&mut self, position: u64) -> Result<(), DecodeError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(limit(
                "count of elements and attributes",
                MAX_NODES,
                position,
            ));
        }
        Ok(())
    }

    /// xmltodict's `startElement`.
    fn open(&mut self, e: &BytesStart<'_>, position: u64) -> Result<(), DecodeError> {
        if self.stack.is_empty() && self.root.is_some() {
            return Err(xml_error(position, "a second root element"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(limit("nesting depth", MAX_DEPTH, position));
        }
        self.count_node(position)?;
        let name = check_name(e.name().as_ref(), position)?;
        if !attributes_separated(e.attributes_raw()) {
            return Err(xml_error(
                position,
                "attributes not separated by whitespace",
            ));
        }
        let mut attrs = Map::new();
        for attr in e.attributes() {
            let attr = attr.map_err(|err| xml_error(position, err.to_string()))?;
            self.count_node(position)?;
            let key = check_name(attr.key.as_ref(), position)?;
            let value = attribute_value(&attr.value, position)?;
            if attrs.insert(key, Value::String(value)).is_some() {
                return Err(xml_error(position, "duplicate attribute"));
            }
        }
        self.stack.push(Frame {
            name,
            item: (!attrs.is_empty()).then_some(attrs),
            text: String::new(),
        });
        Ok(())
    }

    /// xmltodict's `endElement`.
    fn close(&mut self, position: u64) -> Result<(), DecodeError> {
        let Some(frame) = self.stack.pop() else {
            return Err(xml_error(position, "end tag without a start tag"));
        };
        let text = py_strip(&frame.text);
        let text = (!text.is_empty()).then(|| Value::String(text.to_string()));
        let value = match (frame.item, text) {
            (Some(mut item), text) => {
                if let Some(t) = text {
                    push_data(&mut item, "#text".into(), t);
                }
                Value::Object(item)
            }
            (None, text) => text.unwrap_or(Value::Null),
        };
        match self.stack.last_mut() {
            Some(parent) => push_data(parent.item.get_or_insert_with(Map::new), frame.name, value),
            None => self.root = Some((frame.name, value)),
        }
        Ok(())
    }

    /// Character data for the open element (only whitespace may stand
    /// outside the root).
    fn text(&mut self, piece: &str, normalize: bool, position: u64) -> Result<(), DecodeError> {
        let Some(frame) = self.stack.last_mut() else {
            if piece.chars().all(is_xml_space) {
                return Ok(());
            }
            return Err(xml_error(position, "text outside the root element"));
        };
        if frame.text.len() + piece.len() > MAX_TEXT_BYTES {
            return Err(limit("text length in bytes", MAX_TEXT_BYTES, position));
        }
        if normalize {
            push_normalized(&mut frame.text, piece);
        } else {
            frame.text.push_str(piece);
        }
        Ok(())
    }
}

fn event_str(bytes: &[u8], position: u64) -> Result<&str, DecodeError> {
    // The reader works on a &str and cuts at ASCII delimiters, so this
    // always holds; an error rather than a panic all the same.
    std::str::from_utf8(bytes).map_err(|_| xml_error(position, "text is not UTF-8"))
}

/// xmltodict's `parse(xml, attr_prefix="")` with expat's well-formedness
/// rules: the root element's name and its value.
fn parse_xml(bytes: &[u8]) -> Result<(String, Value), DecodeError> {
    let (text, base) = document_text(bytes)?;
    if let Some((at, _)) = text.char_indices().find(|(_, c)| !is_xml_char(*c)) {
        return Err(xml_error(base + at as u64, "character not allowed in XML"));
    }
    let mut reader = Reader::from_str(&text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;
    config.allow_dangling_amp = false;
    config.allow_unmatched_ends = false;
    config.trim_text(false);
    let mut tree = TreeBuilder {
        stack: Vec::new(),
        root: None,
        nodes: 0,
    };
    let mut first = true;
    loop {
        let position = base + reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| xml_error(base + reader.error_position(), e.to_string()))?;
        match event {
            Event::Decl(_) if first => {
                // The declaration starts the text; quick-xml does not
                // check its pseudo-attributes, expat does.
                let end = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
                let decl = text.get(..end).unwrap_or_default();
                check_declaration(decl).map_err(|message| xml_error(position, message))?;
            }
            Event::Decl(_) => {
                return Err(xml_error(position, "XML declaration not at the start"));
            }
            Event::DocType(_) => return Err(DecodeError::Doctype { position }),
            Event::Start(e) => tree.open(&e, position)?,
            Event::Empty(e) => {
                tree.open(&e, position)?;
                tree.close(position)?;
            }
            Event::End(_) => tree.close(position)?,
            Event::Text(t) => {
                let piece = event_str(&t, position)?;
                if piece.contains("]]>") {
                    return Err(xml_error(position, "']]>' in text"));
                }
                tree.text(piece, true, position)?;
            }
            Event::CData(t) => {
                if tree.stack.is_empty() {
                    return Err(xml_error(position, "CDATA outside the root element"));
                }
                tree.text(event_str(&t, position)?, true, position)?;
            }
            Event::GeneralRef(r) => {
                if tree.stack.is_empty() {
                    return Err(xml_error(position, "reference outside the root element"));
                }
                let c = resolve_reference(event_str(&r, position)?, position)?;
                let mut buf = [0u8; 4];
                // A character reference is never line-end normalised.
                tree.text(c.encode_utf8(&mut buf), false, position)?;
            }
            // xmltodict registers no handler for these; only their syntax
            // is checked, as expat does.
            Event::Comment(c) => {
                if c.ends_with(b"-") {
                    return Err(xml_error(position, "comment ending in '-'"));
                }
            }
            Event::PI(pi) => check_processing_instruction(&pi, position)?,
            Event::Eof => break,
        }
        first = false;
    }
    if let Some(open) = tree.stack.last() {
        return Err(xml_error(
            base + reader.buffer_position(),
            format!("document ends inside <{}> (truncated?)", open.name),
        ));
    }
    tree.root.ok_or_else(|| xml_error(base, "no root element"))
}

// --- Old JSON: VOEvent.label_attributes_dict + xmltodict.unparse ----------

/// hop's `label_attributes_dict`/`_list`: in every map, the keys the
/// VOEvent schema knows as attributes get an `@` and move to the end.
/// (hop walks them in `set` order, which Python's string hashing makes
/// vary between runs when an element has several; we keep their order,
/// one of the orders hop can produce.)
fn label_attributes(map: &mut Map<String, Value>) {
    let mut to_fix = Vec::new();
    for (k, v) in map.iter_mut() {
        label_value(v);
        if KNOWN_ATTRIBUTES.contains(&k.as_str()) {
            to_fix.push(k.clone());
        }
    }
    for k in to_fix {
        if let Some(v) = map.shift_remove(&k) {
            // `d["@" + k] = d[k]`: an existing "@k" keeps its place.
            let at = format!("@{k}");
            map.insert(at, v);
        }
    }
}

fn label_value(v: &mut Value) {
    match v {
        Value::Object(m) => label_attributes(m),
        Value::Array(items) => items.iter_mut().for_each(label_value),
        _ => {}
    }
}

/// xmltodict's `_emit` into Python's `XMLGenerator` with
/// `short_empty_elements=True`, for the values JSON can hold.
struct Emitter {
    out: String,
    /// A start tag is open and not yet closed with `>` (it becomes `/>` if
    /// the element turns out empty).
    pending_start: bool,
}

impl Emitter {
    fn write(&mut self, s: &str) -> Result<(), DecodeError> {
        if self.out.len() + s.len() > MAX_DOCUMENT_BYTES {
            return Err(limit("document size in bytes", MAX_DOCUMENT_BYTES, 0));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn finish_pending(&mut self) -> Result<(), DecodeError> {
        if self.pending_start {
            self.pending_start = false;
            self.write(">")?;
        }
        Ok(())
    }

    /// One key of a map: an element per list item, else one element.
    fn element(&mut self, key: &str, value: &Value) -> Result<(), DecodeError> {
        if key == "#comment" {
            // xmltodict would write an XML comment; hop's old writers
            // never produced one (their parse dropped comments).
            return Err(not_voevent("a #comment key in the JSON".into()));
        }
        validate_unparse_name(key)?;
        match value {
            Value::Array(items) => {
                for item in items {
                    self.one_element(key, item)?;
                }
                Ok(())
            }
            other => self.one_element(key, other),
        }
    }

    fn one_element(&mut self, key: &str, value: &Value) -> Result<(), DecodeError> {
        let text_only;
        let map = match value {
            Value::Object(m) => m,
            Value::Null => {
                text_only = Map::new();
                &text_only
            }
            Value::Array(_) => {
                // xmltodict writes Python's repr of a nested list.
                return Err(not_voevent(format!(
                    "a list nested in a list under {key:?}"
                )));
            }
            scalar => {
                text_only = Map::from_iter([("#text".to_string(), scalar.clone())]);
                &text_only
            }
        };
        let mut text = None;
        let mut attrs = Vec::new();
        let mut children = Vec::new();
        for (k, v) in map {
            if k == "#text" {
                text = match v {
                    Value::Null => None,
                    v => Some(scalar_text(v, k)?),
                };
            } else if let Some(name) = k.strip_prefix('@') {
                if name == "xmlns" && v.is_object() {
                    return Err(not_voevent("an @xmlns map in the JSON".into()));
                }
                let v = match v {
                    Value::Null => String::new(),
                    v => scalar_text(v, k)?,
                };
                validate_unparse_name(name)?;
                attrs.push((name, v));
            } else if !matches!(v, Value::Array(items) if items.is_empty()) {
                // xmltodict skips empty lists: no element at all.
                children.push((k, v));
            }
        }
        self.finish_pending()?;
        self.write("<")?;
        self.write(key)?;
        for (name, v) in attrs {
            self.write(" ")?;
            self.write(name)?;
            self.write("=")?;
            self.write(&quoteattr(&v))?;
        }
        self.pending_start = true;
        for (k, v) in children {
            self.element(k, v)?;
        }
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            self.finish_pending()?;
            self.write(&escape(&t))?;
        }
        if self.pending_start {
            self.pending_start = false;
            self.write("/>")
        } else {
            self.write("</")?;
            self.write(key)?;
            self.write(">")
        }
    }
}

/// xmltodict's `_convert_value_to_string` for JSON scalars: Python's
/// `str()` of a number (`repr` form for floats), `true`/`false`.
fn scalar_text(v: &Value, key: &str) -> Result<String, DecodeError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(if *b { "true" } else { "false" }.to_string()),
        Value::Number(_) => {
            let mut out = Vec::new();
            super::write_py_json(&mut out, v);
            String::from_utf8(out).map_err(|_| not_voevent("unprintable number".into()))
        }
        _ => Err(not_voevent(format!(
            "a map or list as the text or attribute {key:?}"
        ))),
    }
}

/// xmltodict 1.0's `_validate_name`: what would break out of a tag.
fn validate_unparse_name(name: &str) -> Result<(), DecodeError> {
    let bad = name.starts_with(['?', '!'])
        || name.contains(['<', '>', '/', '"', '\'', '='])
        || name.chars().any(super::py_isspace);
    if bad {
        return Err(not_voevent(format!(
            "invalid XML name {name:?} in the JSON"
        )));
    }
    Ok(())
}

/// Python's `xml.sax.saxutils.escape`.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('>', "&gt;")
        .replace('<', "&lt;")
}

/// Python's `xml.sax.saxutils.quoteattr`: escaped, line ends and tabs as
/// character references, then double quotes unless the value has some.
fn quoteattr(s: &str) -> String {
    let data = escape(s)
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;");
    if data.contains('"') {
        if data.contains('\'') {
            format!("\"{}\"", data.replace('"', "&quot;"))
        } else {
            format!("'{data}'")
        }
    } else {
        format!("\"{data}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Message;
    use proptest::prelude::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    /// An LVC-style preliminary alert (fictional), and what hop-client's
    /// `VOEvent.load` makes of it (`json.dumps` of its fields, written by
    /// stream/tests/fixtures/make_expected.py with xmltodict 1.0).
    const LVC: &[u8] = include_bytes!("../../tests/fixtures/lvc_preliminary.xml");
    const LVC_EXPECTED: &[u8] =
        include_bytes!("../../tests/fixtures/lvc_preliminary.expected.json");
    /// What hop-client 0.6 to 0.11 wrote for a (fictional) Swift alert, the
    /// XML hop rebuilds from it, and that XML's fields.
    const LEGACY: &[u8] = include_bytes!("../../tests/fixtures/legacy_voevent.json");
    const LEGACY_XML: &[u8] = include_bytes!("../../tests/fixtures/legacy_voevent.expected.xml");
    const LEGACY_EXPECTED: &[u8] =
        include_bytes!("../../tests/fixtures/legacy_voevent.expected.json");

    fn py_json(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        crate::models::write_py_json(&mut out, v);
        out
    }

    /// The fields of a one-off VOEvent whose root holds `inner`.
    fn parse_inner(inner: &str) -> Result<VoEvent, DecodeError> {
        VoEvent::from_xml(format!(
            "<voe:VOEvent xmlns:voe=\"http://www.ivoa.net/xml/VOEvent/v2.0\" ivorn=\"ivo://x/y#z\">{inner}</voe:VOEvent>"
        ))
    }

    fn what(inner: &str) -> Value {
        parse_inner(&format!("<What>{inner}</What>"))
            .unwrap_or_else(|e| panic!("{inner}: {e}"))
            .what()
            .clone()
    }

    /// A hostile input fails with `check` and quickly.
    fn rejects(input: &[u8], check: impl Fn(&DecodeError) -> bool) {
        let start = Instant::now();
        let err = VoEvent::deserialize(input.to_vec()).unwrap_err();
        let took = start.elapsed();
        assert!(check(&err), "unexpected error: {err}");
        assert!(!err.to_string().is_empty());
        // Generous for a debug build on a loaded machine; the point is
        // linear work, not exponential.
        assert!(took < Duration::from_secs(5), "{err}: took {took:?}");
        // Through Message::deserialize it is a Blob of the same bytes.
        let value = Bytes::copy_from_slice(input);
        assert_eq!(
            Message::deserialize(Some(b"voevent"), Some(&value)),
            Message::Blob(value)
        );
    }

    #[test]
    fn reads_an_lvc_alert_like_hop() {
        let v = VoEvent::from_xml(LVC).unwrap();
        assert_eq!(
            String::from_utf8(py_json(&v.to_json())).unwrap(),
            String::from_utf8(LVC_EXPECTED.to_vec()).unwrap()
        );
        assert_eq!(v.ivorn(), "ivo://gwnet/LVC#MS261130k-2-Preliminary");
        assert_eq!(v.role(), "test");
        assert_eq!(v.version(), "2.0");
        assert_eq!(v.who()["Date"], "2026-11-30T04:17:52");
        assert_eq!(
            v.who()["Author"]["contactName"],
            "LIGO Scientific Collaboration, Virgo Collaboration & KAGRA Collaboration"
        );
        assert_eq!(
            v.where_when()["ObsDataLocation"]["ObservatoryLocation"]["id"],
            "LIGO Virgo KAGRA"
        );
        let params = v.what()["Param"].as_array().unwrap();
        assert_eq!(params.len(), 10);
        assert_eq!(
            params[0],
            json!({"dataType": "int", "name": "Packet_Type", "value": "150",
                   "Description": "The Notice Type number is assigned/used within GCN, eg type=150 is an LVC_PRELIMINARY notice"})
        );
        assert_eq!(v.how()["Description"].as_array().unwrap().len(), 4);
        assert_eq!(v.why()["importance"], "0.5");
        assert_eq!(
            v.description(),
            "Report of a candidate gravitational wave event"
        );
        assert_eq!(v.citations(), &json!({}));
        assert_eq!(v.reference(), &json!({}));
        assert_eq!(v.field("WhereWhen"), Some(v.where_when()));
        assert_eq!(v.field("_raw"), None);
        assert_eq!(v.format_name(), "voevent");
    }

    #[test]
    fn republishes_the_exact_bytes() {
        let v = VoEvent::from_xml(LVC).unwrap();
        assert_eq!(&v.raw()[..], LVC);
        let m = Message::VoEvent(v.clone());
        assert_eq!(m.format_name(), "voevent");
        assert_eq!(&m.serialize()[..], LVC);
        for name in [&b"voevent"[..], b"VOEvent", b"VOEVENT"] {
            assert_eq!(Message::deserialize(Some(name), Some(&m.serialize())), m);
        }
        assert_eq!(VoEvent::deserialize(LVC).unwrap(), v);
    }

    #[test]
    fn loads_a_file() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lvc_preliminary.xml"
        );
        assert_eq!(
            VoEvent::load_file(path).unwrap(),
            VoEvent::from_xml(LVC).unwrap()
        );
        let e = VoEvent::load_file("/nonexistent/skotch.xml").unwrap_err();
        assert!(
            matches!(&e, DecodeError::Io { kind, .. } if *kind == std::io::ErrorKind::NotFound),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("/nonexistent/skotch.xml: "),
            "{e}"
        );
    }

    #[test]
    fn old_json_is_rebuilt_into_hops_xml() {
        let v = VoEvent::deserialize(LEGACY).unwrap();
        assert_eq!(
            String::from_utf8(v.raw().to_vec()).unwrap(),
            String::from_utf8(LEGACY_XML.to_vec()).unwrap()
        );
        assert_eq!(
            String::from_utf8(py_json(&v.to_json())).unwrap(),
            String::from_utf8(LEGACY_EXPECTED.to_vec()).unwrap()
        );
        // The JSON is not XML: `from_xml` (hop's `load`) refuses it.
        assert!(matches!(
            VoEvent::from_xml(LEGACY),
            Err(DecodeError::Xml { .. })
        ));
        // Through the model dispatch, and re-published as the rebuilt XML.
        let m = Message::deserialize(Some(b"voevent"), Some(&Bytes::from_static(LEGACY)));
        assert_eq!(m, Message::VoEvent(v.clone()));
        assert_eq!(&m.serialize()[..], LEGACY_XML);
        assert_eq!(
            Message::deserialize(Some(b"voevent"), Some(&m.serialize())),
            m
        );
    }

    #[test]
    fn old_json_details() {
        // Minimal: defaults, attribute marking, escaping, scalars.
        let v = VoEvent::deserialize(
            &br#"{"ivorn": "ivo://a/b#c", "What": {"Param": [{"name": "x<y", "value": 1.5, "Description": "a & b"}, {"name": "q\"'\n", "value": true}], "Group": []}, "Why": null, "_raw": "ignored"}"#[..],
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(v.raw()).unwrap(),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
             <voe:VOEvent ivorn=\"ivo://a/b#c\" role=\"observation\" version=\"2.0\"><Who/>\
             <What><Param name=\"x&lt;y\" value=\"1.5\"><Description>a &amp; b</Description></Param>\
             <Param name=\"q&quot;'&#10;\" value=\"true\"/></What>\
             <WhereWhen/><How/><Why/><Citations/><Description/><Reference/></voe:VOEvent>"
        );
        assert_eq!(v.what()["Param"][1]["name"], "q\"'\n");
        assert_eq!(v.who(), &Value::Null, "hop's {{}} reads back as null");
        // Not VOEvent fields, no ivorn, not an object, not JSON: the XML
        // error is what is reported.
        let bad_values: [&[u8]; 8] = [
            br#"{"ivorn": "i", "Extra": {}}"#,
            br#"{"role": "observation"}"#,
            br#"["ivorn"]"#,
            br#"{"ivorn": "i", "What": {"bad name": "x"}}"#,
            br#"{"ivorn": "i", "What": {"Param": [["nested"]]}}"#,
            br#"{"ivorn": "i", "What": {"@name": {"a": 1}}}"#,
            br##"{"ivorn": "i", "What": {"#comment": "c"}}"##,
            b"\tNot XML or JSON\t",
        ];
        for bad in bad_values {
            let e = VoEvent::deserialize(bad).unwrap_err();
            assert!(matches!(e, DecodeError::Xml { .. }), "{e}");
        }
    }

    #[test]
    fn xmltodict_mapping() {
        // Text-only element: its stripped text; empty: null.
        assert_eq!(
            what("<A> x </A><B/><C></C><D>  </D>"),
            json!({"A": "x", "B": null, "C": null, "D": null})
        );
        // Attributes first, then children, then #text; repeated names make lists.
        assert_eq!(
            what("<P name=\"n\" value=\"1\">t1<D>d</D>t2</P><P/><P>x</P>"),
            json!({"P": [{"name": "n", "value": "1", "D": "d", "#text": "t1t2"}, null, "x"]})
        );
        // Attribute and child of one name become a list.
        assert_eq!(
            what("<P name=\"a\"><name>b</name></P>"),
            json!({"P": {"name": ["a", "b"]}})
        );
        // Comments and processing instructions vanish; CDATA is text.
        assert_eq!(
            what("<A>a<!-- c -->b<?pi x?><![CDATA[<&>]]></A>"),
            json!({"A": "ab<&>"})
        );
        // References; line ends normalised, except &#13;.
        assert_eq!(
            what("<A>&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#x1F600;\r\nx\ry&#13;z</A>"),
            json!({"A": "<>&'\"AB\u{1F600}\nx\ny\rz"})
        );
        // Attribute values: tabs and line ends become spaces.
        assert_eq!(
            what("<A v=\"a\tb\r\nc\nd&#10;e&#9;\" w='\"'/>"),
            json!({"A": {"v": "a b c d\ne\t", "w": "\""}})
        );
        // Python strips Unicode whitespace too.
        assert_eq!(what("<A>\u{a0}\u{2003}x\u{3000}</A>"), json!({"A": "x"}));
        // Namespaced names are plain names.
        assert_eq!(what("<x:A x:b=\"1\"/>"), json!({"x:A": {"x:b": "1"}}));
    }

    #[test]
    fn root_rules_follow_hop() {
        // Namespaced keys of the root are dropped, so is an element named
        // _raw; defaults fill the rest.
        let v = parse_inner("<x:Extra/><_raw>r</_raw>").unwrap();
        assert_eq!(v.role(), "observation");
        assert_eq!(v.version(), "2.0");
        assert_eq!(v.what(), &json!({}));
        let not = |xml: &str| match VoEvent::from_xml(xml.to_string()) {
            Err(DecodeError::NotVoEvent { reason }) => reason,
            other => panic!("{xml}: {other:?}"),
        };
        assert!(not("<VOEvent ivorn=\"i\"/>").contains("<VOEvent>"));
        assert!(not("<voe:VOEvent/>").contains("no attributes"));
        assert!(not("<voe:VOEvent>text</voe:VOEvent>").contains("no attributes"));
        assert!(not("<voe:VOEvent role=\"x\"/>").contains("ivorn"));
        assert!(not("<voe:VOEvent ivorn=\"i\"><Unknown/></voe:VOEvent>").contains("\"Unknown\""));
        // A default namespace is not a VOEvent field (hop raises too).
        assert!(not("<voe:VOEvent xmlns=\"u\" ivorn=\"i\"/>").contains("\"xmlns\""));
        assert!(not("<voe:VOEvent ivorn=\"i\">loose text</voe:VOEvent>").contains("#text"));
        // Repeated fields are lists, as in hop.
        let v = parse_inner("<Why>a</Why><Why>b</Why>").unwrap();
        assert_eq!(v.why(), &json!(["a", "b"]));
    }

    #[test]
    fn encodings() {
        let doc = |decl: &str, body: &[u8]| {
            let mut d = format!("<?xml version=\"1.0\"{decl}?><voe:VOEvent ivorn=\"").into_bytes();
            d.extend_from_slice(body);
            d.extend_from_slice(b"\"/>");
            d
        };
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend(doc("", "caf\u{e9}".as_bytes()));
        assert_eq!(VoEvent::from_xml(bom.clone()).unwrap().ivorn(), "caf\u{e9}");
        assert_eq!(&VoEvent::from_xml(bom.clone()).unwrap().raw()[..], &bom[..]);
        let latin = doc(" encoding='ISO-8859-1'", b"caf\xe9");
        assert_eq!(VoEvent::from_xml(latin).unwrap().ivorn(), "caf\u{e9}");
        let ascii = doc(" encoding=\"us-ascii\"", b"cafe");
        assert_eq!(VoEvent::from_xml(ascii).unwrap().ivorn(), "cafe");
        assert!(matches!(
            VoEvent::from_xml(doc(" encoding=\"US-ASCII\"", b"caf\xc3\xa9")),
            Err(DecodeError::Xml { .. })
        ));
        assert!(matches!(
            VoEvent::from_xml(doc(" encoding=\"Shift_JIS\"", b"x")),
            Err(DecodeError::UnsupportedEncoding { encoding }) if encoding == "shift_jis"
        ));
        assert!(matches!(
            VoEvent::from_xml(&b"\xff\xfe<\x00"[..]),
            Err(DecodeError::UnsupportedEncoding { .. })
        ));
        assert!(matches!(
            VoEvent::from_xml(doc("", b"caf\xe9")),
            Err(DecodeError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn hostile_deep_nesting() {
        let mut doc = String::from("<voe:VOEvent ivorn=\"i\">");
        doc.push_str(&"<What>".repeat(200_000));
        rejects(doc.as_bytes(), |e| {
            matches!(
                e,
                DecodeError::LimitExceeded {
                    what: "nesting depth",
                    limit: MAX_DEPTH,
                    ..
                }
            )
        });
    }

    #[test]
    fn hostile_billion_laughs() {
        let mut doc =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
        doc.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
        for i in 2..10 {
            let prev = format!("&lol{};", i - 1);
            doc.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", prev.repeat(10)));
        }
        doc.push_str("]>\n<voe:VOEvent ivorn=\"&lol9;\"/>");
        rejects(doc.as_bytes(), |e| matches!(e, DecodeError::Doctype { .. }));
        // An external entity, and a reference with no declaration at all.
        rejects(
            b"<!DOCTYPE v [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><voe:VOEvent ivorn=\"&xxe;\"/>",
            |e| matches!(e, DecodeError::Doctype { .. }),
        );
        rejects(
            b"<voe:VOEvent ivorn=\"i\"><What>&lol9;</What></voe:VOEvent>",
            |e| matches!(e, DecodeError::UnknownEntity { name, .. } if name == "lol9"),
        );
        rejects(b"<voe:VOEvent ivorn=\"&lol9;\"/>", |e| {
            matches!(e, DecodeError::UnknownEntity { .. })
        });
    }

    #[test]
    fn hostile_sizes() {
        let big_attr = format!(
            "<voe:VOEvent ivorn=\"{}\"/>",
            "a".repeat(MAX_ATTRIBUTE_BYTES + 1)
        );
        rejects(big_attr.as_bytes(), |e| {
            matches!(
                e,
                DecodeError::LimitExceeded {
                    limit: MAX_ATTRIBUTE_BYTES,
                    ..
                }
            )
        });
        let big_text = format!(
            "<voe:VOEvent ivorn=\"i\"><What>{}</What></voe:VOEvent>",
            "ab&amp;".repeat(MAX_TEXT_BYTES / 3 + 1)
        );
        rejects(big_text.as_bytes(), |e| {
            matches!(
                e,
                DecodeError::LimitExceeded {
                    limit: MAX_TEXT_BYTES,
                    ..
                }
            )
        });
        let many = format!(
            "<voe:VOEvent ivorn=\"i\"><What>{}</What></voe:VOEvent>",
            "<P/>".repeat(MAX_NODES + 1)
        );
        rejects(many.as_bytes(), |e| {
            matches!(
                e,
                DecodeError::LimitExceeded {
                    limit: MAX_NODES,
                    ..
                }
            )
        });
        let huge = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        rejects(&huge, |e| {
            matches!(
                e,
                DecodeError::LimitExceeded {
                    limit: MAX_DOCUMENT_BYTES,
                    ..
                }
            )
        });
        let long_name = format!(
            "<voe:VOEvent ivorn=\"i\"><{0}/></voe:VOEvent>",
            "N".repeat(MAX_NAME_BYTES + 1)
        );
        rejects(long_name.as_bytes(), |e| {
            matches!(
                e,
                DecodeError::LimitExceeded {
                    limit: MAX_NAME_BYTES,
                    ..
                }
            )
        });
        // Just under the limits is fine.
        let ok = format!(
            "<voe:VOEvent ivorn=\"{}\"/>",
            "a".repeat(MAX_ATTRIBUTE_BYTES)
        );
        assert!(VoEvent::from_xml(ok).is_ok());
        let mut deep = String::from("<voe:VOEvent ivorn=\"i\"><What>");
        deep.push_str(&"<a>".repeat(MAX_DEPTH - 2));
        deep.push_str(&"</a>".repeat(MAX_DEPTH - 2));
        deep.push_str("</What></voe:VOEvent>");
        assert!(VoEvent::from_xml(deep).is_ok());
    }

    #[test]
    fn hostile_malformed() {
        // Cut after a complete tag: the parser reaches the end inside <What>.
        let cut = LVC.windows(6).position(|w| w == b"<What>").unwrap() + 6;
        rejects(
            &LVC[..cut],
            |e| matches!(e, DecodeError::Xml { message, .. } if message.contains("<What>") && message.contains("truncated")),
        );
        // Cut anywhere: some XML error.
        for cut in [1, LVC.len() / 3, LVC.len() / 2, LVC.len() - 2] {
            rejects(&LVC[..cut], |e| matches!(e, DecodeError::Xml { .. }));
        }
        rejects(b"<voe:VOEvent ivorn=\"i\"><What>", |e| {
            matches!(e, DecodeError::Xml { .. })
        });
        rejects(b"<voe:VOEvent ivorn=\"i", |e| {
            matches!(e, DecodeError::Xml { .. })
        });
        rejects(b"", |e| matches!(e, DecodeError::Xml { .. }));
        let mut invalid_utf8 = LVC.to_vec();
        invalid_utf8[200] = 0xff;
        rejects(&invalid_utf8, |e| {
            matches!(e, DecodeError::NotUtf8 { valid_up_to: 200 })
        });
        let cases: &[(&[u8], &str)] = &[
            (
                b"<voe:VOEvent ivorn=\"i\"></What></voe:VOEvent>",
                "mismatched end",
            ),
            (
                b"<voe:VOEvent ivorn=\"i\"/><voe:VOEvent ivorn=\"j\"/>",
                "two roots",
            ),
            (b"text<voe:VOEvent ivorn=\"i\"/>", "text before the root"),
            (
                b"<voe:VOEvent ivorn=\"i\"/>&amp;",
                "reference after the root",
            ),
            (b"<voe:VOEvent ivorn=\"a<b\"/>", "< in an attribute"),
            (
                b"<voe:VOEvent ivorn=\"a\" ivorn=\"b\"/>",
                "duplicate attribute",
            ),
            (b"<voe:VOEvent ivorn=i/>", "unquoted attribute"),
            (
                b"<voe:VOEvent ivorn=\"i\"><!-- a -- b --></voe:VOEvent>",
                "-- in a comment",
            ),
            (
                b"<voe:VOEvent ivorn=\"i\">\x01</voe:VOEvent>",
                "control character",
            ),
            (
                b"<voe:VOEvent ivorn=\"&#1;\"/>",
                "control character reference",
            ),
            (b"<voe:VOEvent ivorn=\"&#xD800;\"/>", "surrogate reference"),
            (b"<voe:VOEvent ivorn=\"&#X41;\"/>", "uppercase X"),
            (b"<voe:VOEvent ivorn=\"&amp\"/>", "unterminated reference"),
            (
                b"<voe:VOEvent ivorn=\"i\">a & b</voe:VOEvent>",
                "bare ampersand",
            ),
            (b"<voe:VOEvent ivorn=\"i\">]]></voe:VOEvent>", "]]> in text"),
            (b"<voe:VOEvent ivorn=\"i\"><1a/></voe:VOEvent>", "bad name"),
            (
                b" <?xml version=\"1.0\"?><voe:VOEvent ivorn=\"i\"/>",
                "late declaration",
            ),
            (b"<?xml versio=\"1.0\"?><voe:VOEvent ivorn=\"i\"/>", "declaration without version"),
            (b"<?xml version=\"1.0\"encoding=\"utf-8\"?><voe:VOEvent ivorn=\"i\"/>", "declaration spacing"),
            (b"<?xml version=\"1.0\" standalone=\"yes\" encoding=\"utf-8\"?><voe:VOEvent ivorn=\"i\"/>", "declaration order"),
            (b"<voe:VOEvent ivorn=\"i\"><?XML x?></voe:VOEvent>", "xml as a PI target"),
            (b"<voe:VOEvent ivorn=\"i\"><?x>y?></voe:VOEvent>", "bad PI target"),
            (b"<voe:VOEvent ivorn=\"i\"x=\"1\"/>", "attributes not separated"),
            (b"<voe:VOEvent ivorn=\"i\"><!-- x ---></voe:VOEvent>", "comment ending in -"),
            ("<voe:VOEvent ivorn=\"i\"><a\u{feff}/></voe:VOEvent>".as_bytes(), "format character in a name"),
        ];
        for &(doc, what) in cases {
            let err = VoEvent::from_xml(doc.to_vec()).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecodeError::Xml { .. } | DecodeError::UnknownEntity { .. }
                ),
                "{what}: {err}"
            );
            rejects(doc, |_| true);
        }
    }

    #[test]
    fn lenient_corners_expat_accepts() {
        for doc in [
            "<?xml version = '1.0'  encoding = \"utf-8\" standalone='yes' ?>\n<voe:VOEvent ivorn=\"i\"/>",
            "<?xml version=\"\"?><voe:VOEvent ivorn=\"i\"/>",
            "<?xml-stylesheet href=\"s.xsl\"?><voe:VOEvent ivorn=\"i\"><?xmlfoo bar?></voe:VOEvent>",
            "<voe:VOEvent  ivorn = \"i\"  ><What\n/><Who></Who ></voe:VOEvent >",
            "<voe:VOEvent ivorn=\"i\"><!----><What><\u{e9}t\u{e9} x\u{b7}y=\"1\"/></What></voe:VOEvent>",
        ] {
            assert!(VoEvent::from_xml(doc.to_string()).is_ok(), "{doc}");
        }
    }

    // --- Property tests ----------------------------------------------------

    #[derive(Debug, Clone)]
    struct Node {
        name: &'static str,
        attrs: Vec<(&'static str, String)>,
        text: String,
        children: Vec<Node>,
    }

    fn xml_text() -> impl Strategy<Value = String> {
        // XML-legal characters, biased towards the ones that need care.
        let c = prop_oneof![
            4 => proptest::char::range('a', 'e'),
            2 => prop::sample::select(vec![' ', '\t', '\n', '\r', '&', '<', '>', '"', '\'', ']', ';', '#']),
            1 => prop::sample::select(vec!['\u{a0}', '\u{85}', '\u{2003}', '\u{e9}', '\u{1F600}', '\u{fffd}']),
        ];
        proptest::collection::vec(c, 0..12).prop_map(|v| v.into_iter().collect())
    }

    fn node() -> impl Strategy<Value = Node> {
        let names = prop::sample::select(vec!["Param", "Group", "Description", "C1", "x:Y"]);
        let attr_names = prop::sample::subsequence(vec!["name", "value", "unit", "ucd"], 0..4);
        let leaf = (
            names.clone(),
            attr_names.clone(),
            proptest::collection::vec(xml_text(), 4),
            xml_text(),
        )
            .prop_map(|(name, keys, values, text)| Node {
                name,
                attrs: keys.into_iter().zip(values).collect(),
                text,
                children: Vec::new(),
            });
        leaf.prop_recursive(4, 40, 5, move |inner| {
            (
                names.clone(),
                attr_names.clone(),
                proptest::collection::vec(xml_text(), 4),
                xml_text(),
                proptest::collection::vec(inner, 0..5),
            )
                .prop_map(|(name, keys, values, text, children)| Node {
                    name,
                    attrs: keys.into_iter().zip(values).collect(),
                    text,
                    children,
                })
        })
    }

    fn escape_text(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\r', "&#13;")
    }

    fn escape_attr(s: &str) -> String {
        escape_text(s)
            .replace('"', "&quot;")
            .replace('\t', "&#9;")
            .replace('\n', "&#10;")
    }

    fn render(n: &Node, out: &mut String) {
        out.push('<');
        out.push_str(n.name);
        for (k, v) in &n.attrs {
            out.push_str(&format!(" {k}=\"{}\"", escape_attr(v)));
        }
        out.push('>');
        out.push_str(&escape_text(&n.text));
        for c in &n.children {
            render(c, out);
        }
        out.push_str(&format!("</{}>", n.name));
    }

    /// xmltodict's mapping, written recursively as its docs describe it.
    fn oracle(n: &Node) -> Value {
        let mut map = Map::new();
        for (k, v) in &n.attrs {
            map.insert(k.to_string(), Value::String(v.clone()));
        }
        for c in &n.children {
            let v = oracle(c);
            match map.get_mut(c.name) {
                None => {
                    map.insert(c.name.to_string(), v);
                }
                Some(Value::Array(items)) => items.push(v),
                Some(other) => *other = Value::Array(vec![other.clone(), v]),
            }
        }
        let text = py_strip(&n.text);
        if map.is_empty() {
            return if text.is_empty() {
                Value::Null
            } else {
                Value::String(text.into())
            };
        }
        if !text.is_empty() {
            map.insert("#text".into(), Value::String(text.into()));
        }
        Value::Object(map)
    }

    fn legacy_json() -> impl Strategy<Value = Value> {
        // Element names take any value; attribute names and #text only
        // scalars (what xmltodict.parse gave the old writers).
        let elements = prop::sample::select(vec!["Param", "Group", "Description", "C1"]);
        let scalars = prop::sample::select(vec!["name", "value", "unit", "#text"]);
        let leaf = prop_oneof![
            Just(Value::Null),
            xml_text().prop_map(Value::String),
            any::<i32>().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
        ];
        let scalar_entries = proptest::collection::vec((scalars, leaf.clone()), 0..3);
        let tree = leaf.prop_recursive(3, 24, 4, move |inner| {
            let object = (
                scalar_entries.clone(),
                proptest::collection::vec((elements.clone(), inner), 0..3),
            )
                .prop_map(|(attrs, children)| {
                    Value::Object(
                        attrs
                            .into_iter()
                            .chain(children)
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                    )
                });
            prop_oneof![
                object.clone(),
                proptest::collection::vec(object, 0..3).prop_map(Value::Array),
            ]
        });
        (
            xml_text(),
            proptest::option::of(xml_text()),
            proptest::collection::vec(tree, 8),
        )
            .prop_map(|(ivorn, role, values)| {
                let mut m = Map::new();
                m.insert("ivorn".into(), Value::String(ivorn));
                if let Some(r) = role {
                    m.insert("role".into(), Value::String(r));
                }
                for (k, v) in FIELDS[3..].iter().zip(values) {
                    // Old writers only put objects, strings and nulls at the
                    // top; keep some fields absent.
                    if !v.is_array() && !matches!(v, Value::Bool(_) | Value::Number(_)) {
                        m.insert(k.to_string(), v);
                    }
                }
                Value::Object(m)
            })
    }

    proptest! {
        #[test]
        fn xml_reads_as_xmltodict_and_round_trips(
            ivorn in xml_text(),
            children in proptest::collection::vec(node(), 0..4),
            slot in proptest::collection::vec(prop::sample::select(FIELDS[3..].to_vec()), 4),
        ) {
            let mut doc = format!(
                "<?xml version='1.0' encoding='UTF-8'?>\n<voe:VOEvent xmlns:voe=\"http://www.ivoa.net/xml/VOEvent/v2.0\" ivorn=\"{}\">",
                escape_attr(&ivorn)
            );
            let mut expected = default_fields();
            expected[0] = Value::String(ivorn.clone());
            let mut seen = std::collections::HashMap::new();
            for (child, field) in children.iter().zip(&slot) {
                // The child renamed to a VOEvent field.
                let mut c = child.clone();
                c.name = *field;
                render(&c, &mut doc);
                let i = FIELDS.iter().position(|f| f == field).unwrap();
                let v = oracle(&c);
                let count = seen.entry(i).or_insert(0);
                *count += 1;
                expected[i] = match (*count, std::mem::take(&mut expected[i])) {
                    (1, _) => v,
                    (_, Value::Array(mut items)) if *count > 2 => { items.push(v); Value::Array(items) }
                    (_, old) => Value::Array(vec![old, v]),
                };
            }
            doc.push_str("</voe:VOEvent>\n");
            let v = VoEvent::from_xml(doc.clone()).map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
            prop_assert_eq!(&v.raw()[..], doc.as_bytes());
            prop_assert_eq!(v.fields.as_slice(), expected.as_slice(), "{}", doc);
            let m = Message::VoEvent(v);
            prop_assert_eq!(&m.serialize()[..], doc.as_bytes());
            prop_assert_eq!(Message::deserialize(Some(b"voevent"), Some(&m.serialize())), m);
        }

        #[test]
        fn old_json_rebuilds_and_round_trips(json in legacy_json()) {
            let wire = py_json(&json);
            let v = VoEvent::deserialize(wire.clone())
                .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&wire))))?;
            prop_assert!(v.raw().starts_with(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<voe:VOEvent "));
            prop_assert_eq!(v.ivorn(), &json["ivorn"]);
            let again = VoEvent::deserialize(v.serialize()).unwrap();
            prop_assert_eq!(&again, &v);
            // The rebuild is deterministic.
            prop_assert_eq!(VoEvent::deserialize(wire).unwrap(), v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(v) = VoEvent::deserialize(data.clone()) {
                prop_assert_eq!(VoEvent::deserialize(v.serialize()).unwrap(), v);
            }
        }

        #[test]
        fn mutated_documents_never_panic(cut in 0..LVC.len(), byte in any::<u8>()) {
            let mut doc = LVC.to_vec();
            doc[cut] = byte;
            let _ = VoEvent::deserialize(doc.clone());
            let _ = VoEvent::deserialize(LVC[..cut].to_vec());
        }
    }
}
