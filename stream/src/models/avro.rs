//! hop-client's `AvroBlob` model (`_format: avro`): records in an Avro
//! object container file.
//!
//! What hop-client 0.13.0 does (`hop/models.py`, class `AvroBlob`;
//! `hop/avro_utils.py`, class `SchemaGenerator`; fastavro 1.13 does the
//! encoding) and what skotch does.
//!
//! The Avro format itself goes through the `apache-avro` crate: schema
//! parsing (`Schema::parse`), the container's header, blocks, `deflate`
//! codec and sync markers (`Reader`, `Writer`), datum encoding
//! (`Writer::append_value_ref` of `types::Value`s) and decoding
//! (`Reader::into_deser_iter`, its schema-aware serde deserializer, into
//! skotch's own visitor). What is skotch's: the hop-facing [`AvroValue`]
//! content and its conversion to and from apache-avro's values (fastavro's
//! union choice and record defaults), hop's schema inference, the Python
//! printer, `single_record`, the header metadata (written with apache-avro's
//! datum encoder, in fastavro's order, with the schema text as hop writes
//! it), the schema rewriting below, and the limits below.
//!
//! # The schema apache-avro is given
//!
//! fastavro accepts schemas the Avro specification, and so apache-avro,
//! refuse, and hop's inference writes some: a union holding several arrays
//! or several maps (`[[1.5], [2]]` gives `[array<double>, array<long>]`,
//! the records `{"a": 1}` and `{"b": "x"}` give `[map<long>,
//! map<string>]`), and record field names that are not Avro names
//! (`[A-Za-z_][A-Za-z0-9_]*`): a dict of mixed value types becomes a
//! record whose fields are its keys (`"my key"`, `"naïve"`, `""`). The
//! Avro binary encoding holds no names, and a record with one field
//! encodes exactly as that field, so skotch hands apache-avro a rewritten
//! schema with the same encoding and undoes the rewrite on the values
//! (`rewrite`): in a union, every member of a kind an earlier member has
//! (a second array, map, primitive or name) and every union in a union is
//! wrapped in a record of one field; a field name that is not an Avro name
//! is replaced by a generated one; field defaults move to an attribute
//! (skotch applies them, as fastavro does); when writing, maps become
//! arrays of `{key, value}` records (which keep the order). Generated
//! names start with a prefix the schema does not contain, so they clash
//! with none of its names. Reading, the container's header is handed to
//! apache-avro with the rewritten schema (the blocks as they are), and
//! skotch's deserializer follows the rewritten schema (a union is read as
//! an enum, so its branch is known) to return each wrapped member as the
//! member and each field under its original name. Writing, the values are
//! converted along the rewritten schema. The header of what skotch writes
//! holds the schema as written (hop's text), so hop reads skotch's files
//! and skotch reads them back; the bytes are fastavro's.
//!
//! - **Content** (`AvroBlob.content`): one record (`single_record=True`,
//!   the default) or a list of records (`single_record=False`). A record is
//!   any JSON-like value plus bytes: skotch holds it as an [`AvroValue`]
//!   (null, boolean, long, double, string, bytes, array, map). Avro records
//!   and maps both read as a [`AvroValue::Map`] (a Python `dict`) in the
//!   order they were written; `int` reads as a long, `float` as the double
//!   of the same value, `enum` as its symbol (a string), `fixed` as bytes,
//!   a union as the value of its branch: the types fastavro gives Python.
//!   skotch's own type is public so that no `apache_avro` type is part of
//!   the API (`apache_avro::types::Value::Map` is a `HashMap` and loses the
//!   order hop keeps; skotch reads records and maps through apache-avro's
//!   serde deserializer, which hands entries over in wire order, and
//!   writes a map as the array of `{key, value}` records it encodes the
//!   same as, so order survives both ways). Record field names need not
//!   be Avro names, and a union may hold several arrays or maps, as in
//!   fastavro (above).
//! - **Writing** (`AvroBlob.__bytes__`): `fastavro.writer(buffer, schema,
//!   records)` with its defaults: the `null` codec, header metadata
//!   `avro.codec` then `avro.schema` (Python's `json.dumps` of the schema),
//!   a 16-byte sync marker from `os.urandom`, records in blocks of at least
//!   16000 bytes (`sync_interval`), each block `count, size, data, sync`;
//!   maps and arrays as one block of items then `0`. skotch writes the same
//!   layout ([`Avro::to_container`]; apache-avro's `Writer` with a 16000-byte
//!   block size writes the blocks). The bytes equal fastavro's except the
//!   sync marker, which both draw at random: byte identity with hop is not
//!   possible, content, schema text and codec are the same. One more
//!   difference: fastavro writes a schema it was *given* (or read from a
//!   file) in its parsed form (names made full names, `namespace` dropped,
//!   field keys reordered); skotch writes it as given, an equivalent
//!   schema. Inferred schemas have no namespaces and are written alike.
//!   Which branch of a union a value takes follows fastavro's
//!   `write_union`: the first branch that validates (`_validate`), a record
//!   branch only if no later record matches more of the value's keys, and
//!   `double` over `float`; Python `bytes` are a sequence of ints to
//!   fastavro, so they fit an array of numbers, and that branch wins if it
//!   comes first. A record field missing from the value takes its
//!   `default`, else null (fastavro's `write_record`). Values must fit
//!   their schema; a long fits `float` and `double` too (Python's `int`).
//! - **Schema inference** (`SchemaGenerator().find_common_type(records)`,
//!   when no schema is given), [`infer_schema`]: `str` → `"string"`,
//!   `bytes` → `"bytes"`, `None` → `"null"`, `bool` → `"boolean"`, `int`
//!   → `"long"`, `float` → `"double"`, a list → `{"type": "array",
//!   "items": T}`, a dict → `{"type": "map", "values": T}` unless T is a
//!   union with more members than half the dict's length (integer
//!   division), then `{"type": "record", "name": "auto_record<N>",
//!   "fields": [{"name": key, "type": type(value)}, ...]}`, N counting
//!   records from 0 in the order their inference finishes (inner records
//!   first). T, the common type of several values, is the one type they
//!   share, else the union (a list) of their distinct types; no values give
//!   the empty union `[]`. Two records are distinct types when their names
//!   differ, even with the same fields. hop collects the union in a Python
//!   `set`, so its member order changes from run to run (string hashing is
//!   randomised); skotch lists `null`, `boolean`, `long`, `double`,
//!   `string`, `bytes`, then arrays, maps and records in the order they are
//!   first seen, an order in which every scalar reads back as written
//!   (fastavro writes a value with the first branch it fits: an integer
//!   fits `double`, Python bytes fit an array of longs). Composite members
//!   can still catch each other's values (`[[1.5], [2]]` has the union
//!   `[array<double>, array<long>]` and `[2]` is written as `[2.0]`), in
//!   hop as in skotch.
//!   The top-level schema is the common type of all records.
//! - **Reading** (`AvroBlob.deserialize(data, single_record=True)`, what
//!   hop's `Deserializer` calls for `_format: avro`): `fastavro.reader` on
//!   the container with its writer schema; one record is the content, more
//!   than one (or none) is an error. [`Avro::deserialize`] does the same
//!   and keeps the schema (the header's `avro.schema` as written) and the
//!   bytes ([`Avro::raw`]). Codecs read: `null` and `deflate` (fastavro
//!   reads `snappy`, `zstandard`, `bzip2`, `xz` and `lz4` only with extra
//!   Python packages hop does not require; skotch reports them as
//!   unsupported). Logical types (`timestamp-millis`,
//!   `decimal`, `uuid`, ...) read as their underlying Avro type; fastavro
//!   turns them into `datetime`, `Decimal`, `UUID` objects.
//! - **Publishing a file** (`hop publish -f AVRO FILE`:
//!   `AvroBlob.load_file(FILE)`, `single_record=True`): the file's one
//!   record and its writer schema ([`Avro::load_file`]); the record value
//!   is then re-encoded by `__bytes__` with the `null` codec.
//! - **Printing** (`AvroBlob.__str__`, `str(content)`): a Python `repr` of
//!   the content ([`Avro::to_python_str`], also `Display`): `None`,
//!   `True`, `1`, `1.5`, `'text'`, `b'bytes'`, `[..]`, `{'key': ..}`.
//!   `hop subscribe` 0.13 prints `bytes(message)`, that is the re-encoded
//!   container; the CLI does the same.
//!
//! # Limits (hostile input)
//!
//! Errors are [`DecodeError::Avro`]; nothing panics, nothing is allocated
//! by an unchecked length:
//!
//! - a value over [`MAX_AVRO_BYTES`] (8 MiB) is refused whole, before
//!   apache-avro sees it;
//! - apache-avro's allocation cap is set to [`MAX_AVRO_BYTES`] before its
//!   first use by skotch (`avro_limits`, shared with
//!   [`AvroCodec`](crate::AvroCodec)): every length apache-avro reads (a
//!   string's, bytes', a block's, an array's or map's count × its element
//!   size, a `deflate` block's inflated size) is checked against it before
//!   allocating. The cap is process-wide and set once: if the application
//!   set it first (or used apache-avro first, which fixes its 512 MiB
//!   default), that value stands for those transient allocations; the
//!   bounds below are skotch's and hold regardless;
//! - the schema rewriting (above) walks the schema's JSON, which nests at
//!   most 127 levels (checked first), refuses types nesting deeper than
//!   [`MAX_DEPTH`] (arrays, maps, union members, fields) as it goes,
//!   copies each node once and adds a constant per node; when reading, the
//!   rewritten schema's JSON must nest at most 127 levels too (apache-avro
//!   parses it from text: a wrapped member adds three levels), and skotch
//!   writes only schemas that pass this, so what it writes reads back;
//! - before any record is read, the writer schema is walked (references
//!   followed by name, memoised): it may nest at most [`MAX_DEPTH`] levels
//!   (apache-avro decodes recursively), may not contain itself (a
//!   recursive record; hop's `SchemaGenerator` never writes one), a
//!   `fixed` may not be larger than the input (apache-avro allocates it by
//!   the schema's size), and apache-avro's Rust-specific record attributes
//!   (`org.apache.avro.rust.*`) are refused (generated records count as
//!   what they stand for: the depth is the written schema's). The
//!   schema's JSON nests at most 127 levels (serde_json's recursion limit,
//!   where the header is parsed; checked by skotch for a schema given in
//!   memory);
//! - at most [`MAX_VALUES`] values (every record, item, map value and
//!   field) and [`MAX_DECODED_BYTES`] of strings, bytes, keys and field
//!   names per message, counted by skotch's deserializer as apache-avro
//!   hands each value over, before it is read: a block claiming 2⁴⁰ `null`
//!   records or an array claiming 2⁶² items stops there, and so do nested
//!   arrays each claiming many zero-byte items;
//! - what apache-avro refuses is an error: a length beyond the input, a
//!   negative length, a varint over 10 bytes, an unknown union branch or
//!   enum index, invalid UTF-8, a wrong magic or sync marker, an
//!   unsupported codec. Bytes after a block's last record are ignored, as
//!   fastavro does.
//!
//! The same depth bound applies to content given to [`Avro::new`] and to
//! a schema given to [`Avro::with_schema`].
//!
//! # Differences from hop
//!
//! - Names apache-avro refuses in a schema *given* to hop or written by
//!   another writer, where fastavro accepts them: record, enum and fixed
//!   names and namespaces, and enum symbols, must be Avro names (field
//!   names need not: above; hop's inference writes only `auto_record<N>`
//!   names), a union may not name one type twice in different spellings
//!   (`"R"` and `"ns.R"`). Reading such a message gives a
//!   [`Blob`](super::Message::Blob) with a warning (as any value skotch
//!   cannot read as its `_format`); [`Avro::with_schema`] refuses such a
//!   schema with a clear error, so a message skotch builds always
//!   serializes. So does a schema whose rewritten JSON would nest deeper
//!   than 127 levels (Limits; fastavro has no such limit).
//! - Recursive schemas are refused (above); fastavro reads them.
//! - Codecs: `null` and `deflate` (fastavro reads `snappy`, `zstandard`,
//!   `bzip2`, `xz` and `lz4` with extra Python packages).
//! - The `big-decimal` logical type is read as bytes and not written.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::rc::Rc;
use std::sync::OnceLock;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{
    DecimalSchema, FixedSchema, InnerDecimalSchema, Name, RecordField, RecordSchema, UuidSchema,
};
use apache_avro::types::Value as AValue;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Reader, Schema, Writer};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::{py_float_repr, read_file, write_py_json, DecodeError};

/// Format name of [`Message::Avro`](super::Message::Avro) (hop's
/// `AvroBlob.format_name`).
pub const AVRO_FORMAT: &str = "avro";
/// The largest Avro value (container file) skotch decodes: 8 MiB, also the
/// bound on the inflated size of `deflate` blocks.
pub const MAX_AVRO_BYTES: usize = 8 << 20;
/// The most values one container may hold (records plus every item, map
/// value and field inside them).
pub const MAX_VALUES: usize = 1 << 20;
/// The deepest nesting of schemas and values (arrays, maps, records,
/// unions).
pub const MAX_DEPTH: usize = 64;
/// The most bytes of strings, bytes, `fixed` values, map keys and record
/// field names one container may decode to (32 MiB: a `deflate` container
/// can hold more than its own size, and field names repeat per record).
pub const MAX_DECODED_BYTES: usize = 4 * MAX_AVRO_BYTES;

/// fastavro's `sync_interval` default (`1000 * SYNC_SIZE`): a block is
/// written once its records take this many bytes.
const SYNC_INTERVAL: usize = 16_000;
const MAGIC: &[u8; 4] = b"Obj\x01";

// --- content ----------------------------------------------------------------

/// One Avro datum as hop-client holds it (the Python value fastavro reads
/// or writes).
#[derive(Debug, Clone, PartialEq)]
pub enum AvroValue {
    /// `None` (Avro `null`).
    Null,
    /// `True` / `False` (Avro `boolean`).
    Boolean(bool),
    /// An integer (Avro `long`, or `int` when read).
    Long(i64),
    /// A float (Avro `double`, or `float` when read).
    Double(f64),
    /// A `str` (Avro `string`, or an `enum` symbol when read).
    String(String),
    /// `bytes` (Avro `bytes`, or `fixed` when read).
    Bytes(Vec<u8>),
    /// A list (Avro `array`).
    Array(Vec<AvroValue>),
    /// A dict (Avro `map` or `record`), in order, keys distinct.
    Map(Vec<(String, AvroValue)>),
}

impl AvroValue {
    /// A JSON document as content: numbers that fit an `i64` become
    /// [`AvroValue::Long`], other numbers [`AvroValue::Double`] (Python
    /// would keep a bigger integer, which fastavro then cannot write).
    pub fn from_json(v: &Value) -> AvroValue {
        match v {
            Value::Null => AvroValue::Null,
            Value::Bool(b) => AvroValue::Boolean(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => AvroValue::Long(i),
                None => AvroValue::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => AvroValue::String(s.clone()),
            Value::Array(items) => AvroValue::Array(items.iter().map(Self::from_json).collect()),
            Value::Object(map) => AvroValue::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The content as JSON, bytes written by `bytes` (for example as a
    /// string or base64); non-finite doubles become `null`.
    pub fn to_json_with(&self, bytes: &dyn Fn(&[u8]) -> Value) -> Value {
        match self {
            AvroValue::Null => Value::Null,
            AvroValue::Boolean(b) => Value::Bool(*b),
            AvroValue::Long(i) => Value::from(*i),
            AvroValue::Double(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            AvroValue::String(s) => Value::String(s.clone()),
            AvroValue::Bytes(b) => bytes(b),
            AvroValue::Array(items) => {
                Value::Array(items.iter().map(|v| v.to_json_with(bytes)).collect())
            }
            AvroValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json_with(bytes)))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }

    /// The value as JSON, bytes as an array of numbers.
    pub fn to_json(&self) -> Value {
        self.to_json_with(&|b| Value::Array(b.iter().map(|x| Value::from(*x)).collect()))
    }

    /// Python's `repr` of this value as hop holds it (what `str(content)`
    /// prints): CPython's forms for `None`, `bool`, `int`, `float` (shortest
    /// round-trip digits, `inf`, `nan`), `str` and `bytes` (quote choice and
    /// escapes), `list` and `dict`.
    pub fn to_python_repr(&self) -> String {
        let mut out = String::new();
        py_repr(&mut out, self);
        out
    }

    fn py_type(&self) -> &'static str {
        match self {
            AvroValue::Null => "NoneType",
            AvroValue::Boolean(_) => "bool",
            AvroValue::Long(_) => "int",
            AvroValue::Double(_) => "float",
            AvroValue::String(_) => "str",
            AvroValue::Bytes(_) => "bytes",
            AvroValue::Array(_) => "list",
            AvroValue::Map(_) => "dict",
        }
    }

    fn get(&self, key: &str) -> Option<&AvroValue> {
        match self {
            AvroValue::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl From<Value> for AvroValue {
    fn from(v: Value) -> Self {
        AvroValue::from_json(&v)
    }
}

impl fmt::Display for AvroValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_python_repr())
    }
}

/// A dict under construction: Python's `d[k] = v` (a repeated key keeps
/// its first place and takes the last value).
#[derive(Default)]
struct DictBuilder {
    entries: Vec<(String, AvroValue)>,
    index: HashMap<String, usize>,
}

impl DictBuilder {
    fn insert(&mut self, k: String, v: AvroValue) {
        match self.index.get(&k) {
            Some(&i) => self.entries[i].1 = v,
            None => {
                self.index.insert(k.clone(), self.entries.len());
                self.entries.push((k, v));
            }
        }
    }
}

/// 16 random bytes for a sync marker (fastavro: `os.urandom(16)`); a v4
/// UUID's, 122 of them random.
fn random_sync() -> [u8; 16] {
    uuid::Uuid::new_v4().into_bytes()
}

fn avro_err(reason: impl Into<String>) -> DecodeError {
    DecodeError::Avro {
        reason: reason.into(),
    }
}

// --- the model --------------------------------------------------------------

/// hop-client's `AvroBlob`: Avro records and their schema (module docs).
#[derive(Debug, Clone)]
pub struct Avro {
    content: AvroValue,
    schema: Value,
    single_record: bool,
    raw: Option<Bytes>,
    encoded: OnceLock<Bytes>,
}

/// hop compares only the content (`AvroBlob.__eq__`); skotch also compares
/// the schema and `single_record`.
impl PartialEq for Avro {
    fn eq(&self, other: &Self) -> bool {
        self.content == other.content
            && self.schema == other.schema
            && self.single_record == other.single_record
    }
}

impl Avro {
    /// One record with a schema inferred as hop does (`AvroBlob(content)`).
    ///
    /// Errors: [`DecodeError::Avro`] when the content nests deeper than
    /// [`MAX_DEPTH`].
    pub fn new(content: AvroValue) -> Result<Avro, DecodeError> {
        let schema = infer_schema(std::slice::from_ref(&content))?;
        Self::build(content, schema, true)
    }

    /// Several records in one container with an inferred schema
    /// (`AvroBlob(records, single_record=False)`).
    ///
    /// Errors: as [`Avro::new`].
    pub fn many(records: Vec<AvroValue>) -> Result<Avro, DecodeError> {
        let schema = infer_schema(&records)?;
        Self::build(AvroValue::Array(records), schema, false)
    }

    /// One record (`single_record`), or the records of `content` (an
    /// [`AvroValue::Array`]), written with `schema` (`AvroBlob(content,
    /// schema, single_record)`).
    ///
    /// Errors: [`DecodeError::Avro`] when the schema is not a schema skotch
    /// can use, when the content does not fit it, when `single_record` is
    /// false and the content is not a list (hop's `TypeError`), or when
    /// anything nests deeper than [`MAX_DEPTH`].
    pub fn with_schema(
        content: AvroValue,
        schema: Value,
        single_record: bool,
    ) -> Result<Avro, DecodeError> {
        Self::build(content, schema, single_record)
    }

    fn build(content: AvroValue, schema: Value, single_record: bool) -> Result<Avro, DecodeError> {
        if !single_record && !matches!(content, AvroValue::Array(_)) {
            return Err(avro_err(
                "content must be a list of records when single_record is false",
            ));
        }
        let avro = Avro {
            content,
            schema,
            single_record,
            raw: None,
            encoded: OnceLock::new(),
        };
        let bytes = avro.encode(random_sync())?;
        let _ = avro.encoded.set(bytes);
        Ok(avro)
    }

    /// The content: the record, or the list of records.
    pub fn content(&self) -> &AvroValue {
        &self.content
    }

    /// The records: the content alone, or the items of the list.
    pub fn records(&self) -> &[AvroValue] {
        match (&self.content, self.single_record) {
            (AvroValue::Array(items), false) => items,
            (content, _) => std::slice::from_ref(content),
        }
    }

    /// The schema: the writer schema of a container that was read, the
    /// given or inferred one otherwise.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Whether the content is one record (hop's `single_record`).
    pub fn single_record(&self) -> bool {
        self.single_record
    }

    /// The bytes this message was read from, if it was read.
    pub fn raw(&self) -> Option<&Bytes> {
        self.raw.as_ref()
    }

    /// hop's `str(avro_blob)`: Python's `repr` of the content.
    pub fn to_python_str(&self) -> String {
        self.content.to_python_repr()
    }

    /// Decodes a record value as hop's `AvroBlob.deserialize(data)` does
    /// (`single_record=True`): exactly one record.
    ///
    /// Errors: [`DecodeError::Avro`] (module docs).
    pub fn deserialize(value: Bytes) -> Result<Avro, DecodeError> {
        Self::from_container(value, true)
    }

    /// Reads an Avro object container file: one record when
    /// `single_record` (hop raises on more, and on none), else all of them
    /// as a list.
    ///
    /// Errors: [`DecodeError::Avro`] for a malformed or oversized file, an
    /// unsupported codec, or a record count `single_record` refuses.
    pub fn from_container(value: Bytes, single_record: bool) -> Result<Avro, DecodeError> {
        let (schema, mut records) = read_container(&value)?;
        let content = if single_record {
            if records.len() != 1 {
                return Err(avro_err(format!(
                    "single_record requires exactly one record, the container holds {}",
                    records.len()
                )));
            }
            records.pop().unwrap_or(AvroValue::Null)
        } else {
            AvroValue::Array(records)
        };
        Ok(Avro {
            content,
            schema,
            single_record,
            raw: Some(value),
            encoded: OnceLock::new(),
        })
    }

    /// Reads an Avro file as `hop publish -f AVRO FILE` does
    /// (`AvroBlob.load_file`, one record).
    ///
    /// Errors: [`DecodeError::Io`] when the file cannot be read, else as
    /// [`Avro::deserialize`].
    pub fn load_file(path: impl AsRef<Path>) -> Result<Avro, DecodeError> {
        Self::deserialize(Bytes::from(read_file(path.as_ref())?))
    }

    /// The record value hop writes (`bytes(avro_blob)`): a container with
    /// the `null` codec and a random sync marker. A message that was read
    /// is re-encoded, as hop does.
    pub fn serialize(&self) -> Bytes {
        self.encoded
            .get_or_init(|| {
                // Decoded content always fits its writer schema; should it
                // not, the bytes it came from are the best answer.
                self.encode(random_sync())
                    .unwrap_or_else(|_| self.raw.clone().unwrap_or_default())
            })
            .clone()
    }

    /// The container file with a random sync marker ([`Avro::serialize`]).
    ///
    /// Errors: [`DecodeError::Avro`] when the content does not fit the
    /// schema.
    pub fn to_container(&self) -> Result<Bytes, DecodeError> {
        self.encode(random_sync())
    }

    /// The container file with the given sync marker (fastavro's
    /// `sync_marker` argument), for byte comparisons.
    ///
    /// Errors: as [`Avro::to_container`].
    pub fn to_container_with_sync(&self, sync: [u8; 16]) -> Result<Bytes, DecodeError> {
        self.encode(sync)
    }

    fn encode(&self, sync: [u8; 16]) -> Result<Bytes, DecodeError> {
        write_container(&self.schema, self.records(), sync).map(Bytes::from)
    }
}

impl fmt::Display for Avro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_python_str())
    }
}

// --- schema inference (hop/avro_utils.py) -------------------------------------

/// hop's `SchemaGenerator().find_common_type(records)`: the schema hop
/// writes records with when none is given (module docs).
///
/// Errors: [`DecodeError::Avro`] when a value nests deeper than
/// [`MAX_DEPTH`].
pub fn infer_schema(records: &[AvroValue]) -> Result<Value, DecodeError> {
    let mut generator = Generator { records: 0 };
    let types = records
        .iter()
        .map(|r| generator.determine(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(common_type(types))
}

struct Generator {
    records: usize,
}

impl Generator {
    fn determine(&mut self, v: &AvroValue, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(avro_err(format!("content nests deeper than {MAX_DEPTH}")));
        }
        Ok(match v {
            AvroValue::String(_) => Value::from("string"),
            AvroValue::Bytes(_) => Value::from("bytes"),
            AvroValue::Null => Value::from("null"),
            AvroValue::Boolean(_) => Value::from("boolean"),
            AvroValue::Long(_) => Value::from("long"),
            AvroValue::Double(_) => Value::from("double"),
            AvroValue::Map(entries) => {
                let value_types = entries
                    .iter()
                    .map(|(_, v)| self.determine(v, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                let item = common_type(value_types.clone());
                // hop's heuristic: many value types for few entries mean a
                // struct, not a map.
                let is_record = matches!(&item, Value::Array(u) if u.len() > entries.len() / 2);
                if is_record {
                    let name = format!("auto_record{}", self.records);
                    self.records += 1;
                    let fields = entries
                        .iter()
                        .zip(value_types)
                        .map(|((k, _), t)| {
                            let mut f = Map::new();
                            f.insert("name".into(), Value::from(k.as_str()));
                            f.insert("type".into(), t);
                            Value::Object(f)
                        })
                        .collect();
                    let mut r = Map::new();
                    r.insert("type".into(), Value::from("record"));
                    r.insert("name".into(), Value::from(name));
                    r.insert("fields".into(), Value::Array(fields));
                    Value::Object(r)
                } else {
                    let mut m = Map::new();
                    m.insert("type".into(), Value::from("map"));
                    m.insert("values".into(), item);
                    Value::Object(m)
                }
            }
            AvroValue::Array(items) => {
                let types = items
                    .iter()
                    .map(|v| self.determine(v, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut m = Map::new();
                m.insert("type".into(), Value::from("array"));
                m.insert("items".into(), common_type(types));
                Value::Object(m)
            }
        })
    }
}

/// `find_common_type`: the one type, else the union of the distinct ones
/// (hop's order is a `set`'s; skotch's is [`union_rank`]'s, then first
/// seen).
fn common_type(types: Vec<Value>) -> Value {
    let mut distinct: Vec<Value> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for t in types {
        if seen.insert(t.to_string()) {
            distinct.push(t);
        }
    }
    // Stable: composite types keep their first-seen order.
    distinct.sort_by_key(union_rank);
    if distinct.len() == 1 {
        distinct.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(distinct)
    }
}

/// Union member order: `null`, `boolean`, `long`, `double`, `string`,
/// `bytes`, then arrays, maps and records. fastavro writes a value with
/// the first branch it fits, so `long` before `double` keeps integers
/// integers and `bytes` before arrays keeps bytes bytes (Python bytes fit
/// an array of longs).
fn union_rank(t: &Value) -> u8 {
    match t.as_str() {
        Some("null") => 0,
        Some("boolean") => 1,
        Some("long") => 2,
        Some("double") => 3,
        Some("string") => 4,
        Some("bytes") => 5,
        _ => 6,
    }
}

// --- apache-avro: limits and schema checks ------------------------------------

/// Sets apache-avro's allocation cap to [`MAX_AVRO_BYTES`] the first time
/// it runs, before any use of apache-avro by skotch (the model here and
/// [`AvroCodec`](crate::AvroCodec)); returns the cap in force.
///
/// The cap (`apache_avro::util::max_allocation_bytes`) is a process-wide,
/// set-once setting: it bounds every single allocation apache-avro sizes by
/// a length read from the input (a string's or bytes' length, an array's
/// or map's element count × the size of its in-memory element, a block's
/// byte size, a `deflate` block's inflated size). If the application set
/// it (or used apache-avro, which sets its 512 MiB default) before skotch's
/// first Avro call, the application's value stands and those transient
/// allocations are bounded by it instead; skotch's own budgets
/// ([`MAX_VALUES`], [`MAX_DECODED_BYTES`], [`MAX_DEPTH`], the 8 MiB input
/// limit) hold either way.
pub(crate) fn avro_limits() -> usize {
    static CAP: OnceLock<usize> = OnceLock::new();
    *CAP.get_or_init(|| apache_avro::util::max_allocation_bytes(MAX_AVRO_BYTES))
}

/// An apache-avro error as a [`DecodeError::Avro`], its text cut short
/// (apache-avro's messages can quote a whole schema or value).
fn apache_err(context: &str, e: apache_avro::Error) -> DecodeError {
    let mut text = e.to_string();
    if text.len() > 400 {
        let mut end = 400;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    avro_err(format!("{context}{text}"))
}

/// Whether `v` nests at most `limit` levels (serde_json's own parser stops
/// at 128; a schema built in memory is checked before apache-avro, which
/// parses recursively, sees it).
fn json_nesting_ok(v: &Value, limit: usize) -> bool {
    match v {
        Value::Array(items) => limit > 0 && items.iter().all(|x| json_nesting_ok(x, limit - 1)),
        Value::Object(m) => limit > 0 && m.values().all(|x| json_nesting_ok(x, limit - 1)),
        _ => true,
    }
}

/// The deepest JSON nesting of a schema skotch hands to apache-avro:
/// serde_json's recursion limit (128), where apache-avro parses the
/// header's schema text, stops at 127 levels.
const MAX_SCHEMA_JSON_DEPTH: usize = 127;

/// A parsed schema's named types (records, enums, fixed), by full name:
/// what a [`Schema::Ref`] refers to.
fn names_of(schema: &Schema) -> Result<HashMap<Name, &Schema>, DecodeError> {
    apache_avro::schema::ResolvedSchema::try_from(schema)
        .map(|r| r.get_names().clone())
        .map_err(|e| apache_err("invalid schema: ", e))
}

/// The checks skotch makes on a schema before apache-avro reads or writes
/// anything with it (module docs, "Limits"): nesting at most
/// [`MAX_DEPTH`] levels, following references (memoised, so shared types
/// cost once); no type that contains itself (apache-avro decodes
/// recursively, and hop's `SchemaGenerator` never writes one); `fixed`
/// sizes at most `max_fixed` bytes (apache-avro allocates a `fixed` by the
/// schema's size, before reading); none of apache-avro's Rust-specific
/// record attributes (`org.apache.avro.rust.*`, which change how its
/// deserializer walks a record). The schema checked is the rewritten one
/// ([`rewrite`]); its generated records count as the types they stand for
/// (a wrapped union member as the member, a map's record as the map), so
/// the depth is the written schema's.
struct SchemaCheck<'a> {
    names: HashMap<Name, &'a Schema>,
    heights: HashMap<Name, usize>,
    active: HashSet<Name>,
    max_fixed: usize,
    rw: &'a Rewrite,
}

impl<'a> SchemaCheck<'a> {
    fn run(
        schema: &'a Schema,
        max_fixed: usize,
        rw: &'a Rewrite,
    ) -> Result<HashMap<Name, &'a Schema>, DecodeError> {
        let mut c = SchemaCheck {
            names: names_of(schema)?,
            heights: HashMap::new(),
            active: HashSet::new(),
            max_fixed,
            rw,
        };
        c.height(schema, 0)?;
        Ok(c.names)
    }

    fn fixed(&self, f: &FixedSchema) -> Result<usize, DecodeError> {
        if f.size > self.max_fixed {
            return Err(avro_err(format!(
                "fixed type {:?} claims {} bytes, more than the {} bytes of input",
                f.name.fullname(None),
                f.size,
                self.max_fixed
            )));
        }
        Ok(0)
    }

    /// The nesting height of `s` found at nesting level `level`.
    fn height(&mut self, s: &'a Schema, level: usize) -> Result<usize, DecodeError> {
        if level > MAX_DEPTH {
            return Err(avro_err(format!("schema nests deeper than {MAX_DEPTH}")));
        }
        let h = match s {
            Schema::Array(a) => 1 + self.height(&a.items, level + 1)?,
            Schema::Map(m) => 1 + self.height(&m.types, level + 1)?,
            Schema::Union(u) => {
                let mut h = 0;
                for v in u.variants() {
                    h = h.max(self.height(v, level + 1)?);
                }
                1 + h
            }
            Schema::Record(r) => self.named(&r.name, s, level)?,
            Schema::Ref { name } => {
                let target = *self.names.get(name).ok_or_else(|| {
                    avro_err(format!(
                        "invalid schema: unknown type {:?}",
                        name.fullname(None)
                    ))
                })?;
                match target {
                    Schema::Record(_) => self.named(name, target, level)?,
                    other => self.height(other, level)?,
                }
            }
            Schema::Fixed(f) | Schema::Duration(f) => self.fixed(f)?,
            Schema::Decimal(DecimalSchema {
                inner: InnerDecimalSchema::Fixed(f),
                ..
            })
            | Schema::Uuid(UuidSchema::Fixed(f)) => self.fixed(f)?,
            _ => 0,
        };
        if level + h > MAX_DEPTH {
            return Err(avro_err(format!("schema nests deeper than {MAX_DEPTH}")));
        }
        Ok(h)
    }

    fn named(&mut self, name: &Name, s: &'a Schema, level: usize) -> Result<usize, DecodeError> {
        if let Some(&h) = self.heights.get(name) {
            return Ok(h);
        }
        let Schema::Record(r) = s else {
            return Ok(0);
        };
        if let Some(k) = r
            .attributes
            .keys()
            .find(|k| k.starts_with("org.apache.avro.rust."))
        {
            return Err(avro_err(format!(
                "record {:?} has apache-avro's Rust-specific attribute {k:?}",
                name.fullname(None)
            )));
        }
        if !self.active.insert(name.clone()) {
            return Err(avro_err(format!(
                "record {:?} contains itself: skotch reads no recursive schema",
                name.fullname(None)
            )));
        }
        let h = match self.rw.generated(r) {
            // Not a level of the written schema: the member is.
            Generated::Member => match r.fields.first() {
                Some(f) => self.height(&f.schema, level)?,
                None => 0,
            },
            Generated::Map => match map_values(r) {
                Some(values) => 1 + self.height(values, level + 1)?,
                None => 1,
            },
            Generated::No => {
                let mut h = 0;
                for f in &r.fields {
                    h = h.max(self.height(&f.schema, level + 1)?);
                }
                1 + h
            }
        };
        self.active.remove(name);
        self.heights.insert(name.clone(), h);
        Ok(h)
    }
}

// --- the schema apache-avro is given ------------------------------------------

/// How the names skotch generates in a rewritten schema begin; a schema
/// that already contains this text gets a random continuation.
const GENERATED: &str = "skotch_avro_";

/// What a schema is rewritten for ([`rewrite`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reading: maps stay maps (apache-avro's deserializer hands their
    /// entries over in wire order).
    Read,
    /// Writing: maps become arrays of `{key, value}` records, which keep
    /// the order apache-avro's `Value::Map` (a `HashMap`) would lose.
    Write,
}

/// How a rewritten schema maps back to the schema as written.
#[derive(Debug, Clone)]
struct Rewrite {
    /// The start of every generated name; occurs nowhere in the original.
    prefix: String,
    /// Each generated field name and the original name it stands for.
    fields: HashMap<String, String>,
    /// The field attribute a field's `default` is moved to.
    default_key: String,
}

/// What a record of a rewritten schema stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generated {
    /// A union member, wrapped in a record of one field.
    Member,
    /// A map: a record of one field, an array of `{key, value}` records.
    Map,
    /// The record itself (the original schema's).
    No,
}

impl Rewrite {
    fn generated(&self, r: &RecordSchema) -> Generated {
        match r.name.name().strip_prefix(self.prefix.as_str()) {
            Some(rest) if rest.starts_with('u') => Generated::Member,
            Some(rest) if rest.starts_with('m') => Generated::Map,
            _ => Generated::No,
        }
    }

    /// The original name of a (possibly generated) field name.
    fn field_name<'n>(&'n self, name: &'n str) -> &'n str {
        self.fields.get(name).map_or(name, String::as_str)
    }

    /// A field's `default` as written.
    fn default<'f>(&self, f: &'f RecordField) -> Option<&'f Value> {
        f.custom_attributes.get(&self.default_key)
    }
}

/// The values' schema of a map's generated record ([`Generated::Map`]).
fn map_values(r: &RecordSchema) -> Option<&Schema> {
    let Schema::Array(entries) = &r.fields.first()?.schema else {
        return None;
    };
    let Schema::Record(entry) = entries.items.as_ref() else {
        return None;
    };
    entry.fields.get(1).map(|f| &f.schema)
}

/// Whether `s` is an Avro name (`[A-Za-z_][A-Za-z0-9_]*`), the only field
/// names apache-avro accepts.
fn avro_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// What makes two union members the same to apache-avro (which refuses
/// a union holding two of one unnamed kind, two of one name, or a union).
#[derive(PartialEq, Eq, Hash)]
enum MemberKind {
    Union,
    /// A primitive, `array` or `map` (a logical type counts as the type it
    /// annotates, as apache-avro reduces most of them), or a name as
    /// spelled. Over-approximate: a member wrapped needlessly still
    /// encodes alike.
    Of(String),
    Unknown,
}

fn member_kind(m: &Value) -> MemberKind {
    match m {
        Value::String(s) => MemberKind::Of(s.clone()),
        Value::Array(_) => MemberKind::Union,
        Value::Object(o) => match o.get("type") {
            Some(Value::String(t)) => match t.as_str() {
                "record" | "error" | "enum" | "fixed" => match o.get("name") {
                    Some(Value::String(name)) => MemberKind::Of(name.clone()),
                    _ => MemberKind::Unknown,
                },
                t => MemberKind::Of(t.to_string()),
            },
            Some(t) => member_kind(t),
            None => MemberKind::Unknown,
        },
        _ => MemberKind::Unknown,
    }
}

/// `schema` as apache-avro accepts it, with the same binary encoding (the
/// encoding holds no names, and a record of one field encodes exactly as
/// that field), and the mapping back ([`Rewrite`]):
///
/// - in a union, a member of a kind an earlier member has (a second array
///   or map, as hop's inference writes for `[[1.5], [2]]` or for records
///   `{"a": 1}` and `{"b": "x"}`), and a union in a union, become a record
///   `<prefix>u<N>` with one field holding the member;
/// - a record field whose name is not an Avro name (hop's inference makes
///   dict keys such as `"my key"` field names) is named `<prefix>f<N>`;
/// - a field's `default` moves to the field attribute `<prefix>default`:
///   apache-avro would check it against the rewritten type, and skotch
///   applies defaults itself, as fastavro does;
/// - when writing ([`Mode::Write`]), a map `{"type": "map", "values": T}`
///   becomes a record `<prefix>m<N>` holding one field, an array of
///   records `<prefix>e<N>` `{key: string, value: T}`: the same bytes (a
///   block count, then key and value per entry, then 0), entries in order.
///
/// The prefix occurs nowhere in `schema`, so generated names clash with
/// none of its names. Bounded for hostile schemas: the JSON may nest at
/// most [`MAX_SCHEMA_JSON_DEPTH`] levels (checked first; the walk recurses
/// by it), its types at most [`MAX_DEPTH`] (arrays, maps, union members,
/// fields; references are followed later, by [`SchemaCheck`]), each node
/// is copied once and grows by a constant; the result, when reading, must
/// nest at most [`MAX_SCHEMA_JSON_DEPTH`] levels too (apache-avro parses
/// it from the header's text).
fn rewrite(schema: &Value, mode: Mode) -> Result<(Value, Rewrite), DecodeError> {
    if !json_nesting_ok(schema, MAX_SCHEMA_JSON_DEPTH) {
        return Err(avro_err(format!(
            "invalid schema: its JSON nests deeper than {MAX_SCHEMA_JSON_DEPTH}"
        )));
    }
    // serde_json escapes no letter, digit or '_': a name holding the
    // prefix puts it in the text.
    let text = serde_json::to_string(schema).unwrap_or_default();
    let prefix = if text.contains(GENERATED) {
        format!("{GENERATED}{}_", uuid::Uuid::new_v4().simple())
    } else {
        GENERATED.to_string()
    };
    let mut r = Rewriter {
        mode,
        n: 0,
        rw: Rewrite {
            default_key: format!("{prefix}default"),
            prefix,
            fields: HashMap::new(),
        },
    };
    let out = r.schema(schema, 0)?;
    if mode == Mode::Read && !json_nesting_ok(&out, MAX_SCHEMA_JSON_DEPTH) {
        return Err(avro_err(format!(
            "schema nests too deeply: rewritten for apache-avro, its JSON nests deeper than {MAX_SCHEMA_JSON_DEPTH}"
        )));
    }
    Ok((out, r.rw))
}

struct Rewriter {
    mode: Mode,
    n: usize,
    rw: Rewrite,
}

impl Rewriter {
    fn generated(&mut self, kind: char) -> String {
        let name = format!("{}{kind}{}", self.rw.prefix, self.n);
        self.n += 1;
        name
    }

    /// A type at Avro nesting level `depth`.
    fn schema(&mut self, v: &Value, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(avro_err(format!("schema nests deeper than {MAX_DEPTH}")));
        }
        match v {
            Value::Array(members) => {
                let mut seen = HashSet::new();
                let mut out = Vec::with_capacity(members.len());
                for m in members {
                    let m = self.schema(m, depth + 1)?;
                    let wrap = match member_kind(&m) {
                        MemberKind::Union => true,
                        MemberKind::Of(kind) => !seen.insert(kind),
                        MemberKind::Unknown => false,
                    };
                    out.push(if wrap { self.member(m) } else { m });
                }
                Ok(Value::Array(out))
            }
            Value::Object(obj) => self.object(obj, depth),
            other => Ok(other.clone()),
        }
    }

    fn object(&mut self, obj: &Map<String, Value>, depth: usize) -> Result<Value, DecodeError> {
        let kind = obj.get("type").and_then(Value::as_str);
        if let (Mode::Write, Some("map"), Some(values)) = (self.mode, kind, obj.get("values")) {
            let values = self.schema(values, depth + 1)?;
            return Ok(self.map_record(values));
        }
        let mut out = Map::new();
        for (k, v) in obj {
            let v = match (kind, k.as_str()) {
                (Some("array"), "items") | (Some("map"), "values") => self.schema(v, depth + 1)?,
                (Some("record" | "error"), "fields") => self.fields(v, depth)?,
                // {"type": {...}} or {"type": [...]}: the same type.
                (_, "type") if v.is_object() || v.is_array() => self.schema(v, depth)?,
                _ => v.clone(),
            };
            out.insert(k.clone(), v);
        }
        Ok(Value::Object(out))
    }

    fn fields(&mut self, fields: &Value, depth: usize) -> Result<Value, DecodeError> {
        let Value::Array(fields) = fields else {
            return Ok(fields.clone());
        };
        let mut out = Vec::with_capacity(fields.len());
        for f in fields {
            let Value::Object(f) = f else {
                out.push(f.clone());
                continue;
            };
            let mut g = Map::new();
            for (k, v) in f {
                let (k, v) = match (k.as_str(), v) {
                    ("type", t) => (k.clone(), self.schema(t, depth + 1)?),
                    ("name", Value::String(name)) if !avro_name(name) => {
                        let generated = self.generated('f');
                        self.rw.fields.insert(generated.clone(), name.clone());
                        (k.clone(), Value::from(generated))
                    }
                    ("default", d) => (self.rw.default_key.clone(), d.clone()),
                    (_, v) => (k.clone(), v.clone()),
                };
                g.insert(k, v);
            }
            out.push(Value::Object(g));
        }
        Ok(Value::Array(out))
    }

    /// A union member as a record of one field.
    fn member(&mut self, m: Value) -> Value {
        let name = self.generated('u');
        record(name, vec![field("value", m)])
    }

    /// A map as a record holding its entries.
    fn map_record(&mut self, values: Value) -> Value {
        let entry = record(
            self.generated('e'),
            vec![field("key", Value::from("string")), field("value", values)],
        );
        let mut array = Map::new();
        array.insert("type".into(), Value::from("array"));
        array.insert("items".into(), entry);
        record(
            self.generated('m'),
            vec![field("entries", Value::Object(array))],
        )
    }
}

fn field(name: &str, t: Value) -> Value {
    let mut f = Map::new();
    f.insert("name".into(), Value::from(name));
    f.insert("type".into(), t);
    Value::Object(f)
}

fn record(name: String, fields: Vec<Value>) -> Value {
    let mut r = Map::new();
    r.insert("type".into(), Value::from("record"));
    r.insert("name".into(), Value::from(name));
    r.insert("fields".into(), Value::Array(fields));
    Value::Object(r)
}

// --- reading ----------------------------------------------------------------

/// What one container read may still produce: values (every record,
/// item, map value and field: [`MAX_VALUES`]) and bytes of strings, bytes,
/// map keys and field names ([`MAX_DECODED_BYTES`]).
#[derive(Clone, Copy)]
struct Budget {
    values: usize,
    bytes: usize,
}

/// The (rewritten) writer schema of a read and how to undo the rewrite.
struct ReadPlan {
    schema: Schema,
    /// Where each named type is defined: a node of `nodes`.
    names: HashMap<Name, usize>,
    /// Every type of the schema as (its parent's node, its index in the
    /// parent: [`child`]), the root first: a reference resolves in as many
    /// steps as the schema nests, with memory linear in the schema's size
    /// and no second copy of it.
    nodes: Vec<(usize, usize)>,
    rw: Rewrite,
}

impl ReadPlan {
    fn new(schema: Schema, rw: Rewrite) -> ReadPlan {
        let mut names = HashMap::new();
        let mut nodes = vec![(0, 0)];
        index_names(&schema, 0, &mut nodes, &mut names);
        ReadPlan {
            schema,
            names,
            nodes,
            rw,
        }
    }

    fn node(&self, id: usize) -> Option<&Schema> {
        if id == 0 {
            return Some(&self.schema);
        }
        let &(parent, i) = self.nodes.get(id)?;
        child(self.node(parent)?, i)
    }

    fn resolve<'p>(&'p self, s: &'p Schema) -> Option<&'p Schema> {
        match s {
            Schema::Ref { name } => self.node(*self.names.get(name)?),
            s => Some(s),
        }
    }
}

/// The `i`-th type directly inside `s`.
fn child(s: &Schema, i: usize) -> Option<&Schema> {
    match s {
        Schema::Array(a) if i == 0 => Some(&a.items),
        Schema::Map(m) if i == 0 => Some(&m.types),
        Schema::Union(u) => u.variants().get(i),
        Schema::Record(r) => r.fields.get(i).map(|f| &f.schema),
        _ => None,
    }
}

/// Numbers the types inside `s` (node `id`) and records where each named
/// type is defined (the schema was checked: it nests at most
/// [`MAX_DEPTH`] levels, twice that with wrapped union members).
fn index_names(
    s: &Schema,
    id: usize,
    nodes: &mut Vec<(usize, usize)>,
    names: &mut HashMap<Name, usize>,
) {
    if let (Some(name), false) = (s.name(), matches!(s, Schema::Ref { .. })) {
        names.entry(name.clone()).or_insert(id);
    }
    let mut i = 0;
    while let Some(c) = child(s, i) {
        nodes.push((id, i));
        index_names(c, nodes.len() - 1, nodes, names);
        i += 1;
    }
}

thread_local! {
    /// The budget of the read under way on this thread: apache-avro calls
    /// [`Decoded`]'s `Deserialize` (no state can be passed in), on the
    /// reading thread, inside `Iterator::next`.
    static BUDGET: std::cell::Cell<Budget> =
        const { std::cell::Cell::new(Budget { values: 0, bytes: 0 }) };
    /// The schema of the read under way on this thread (as [`BUDGET`]).
    static PLAN: std::cell::RefCell<Option<Rc<ReadPlan>>> =
        const { std::cell::RefCell::new(None) };
}

/// Sets [`BUDGET`] and [`PLAN`] for one read; empties them when dropped.
struct ReadGuard;

impl ReadGuard {
    fn new(plan: ReadPlan) -> ReadGuard {
        BUDGET.with(|b| {
            b.set(Budget {
                values: MAX_VALUES,
                bytes: MAX_DECODED_BYTES,
            })
        });
        PLAN.with(|p| *p.borrow_mut() = Some(Rc::new(plan)));
        ReadGuard
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        BUDGET.with(|b| {
            b.set(Budget {
                values: 0,
                bytes: 0,
            })
        });
        PLAN.with(|p| *p.borrow_mut() = None);
    }
}

fn spend<E: serde::de::Error>(values: usize, bytes: usize) -> Result<(), E> {
    BUDGET.with(|cell| {
        let mut b = cell.get();
        if b.values < values {
            return Err(E::custom(format!("more than {MAX_VALUES} values")));
        }
        if b.bytes < bytes {
            return Err(E::custom(format!(
                "more than {MAX_DECODED_BYTES} bytes of strings, bytes and keys"
            )));
        }
        b.values -= values;
        b.bytes -= bytes;
        cell.set(b);
        Ok(())
    })
}

/// One record as apache-avro's schema-aware deserializer hands it over
/// (`Reader::into_deser_iter`), read by [`Seed`]s along the read's
/// [`PLAN`].
struct Decoded(AvroValue);

impl<'de> serde::Deserialize<'de> for Decoded {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{DeserializeSeed, Error};
        let plan = PLAN
            .with(|p| p.borrow().clone())
            .ok_or_else(|| D::Error::custom("no Avro read under way"))?;
        Seed {
            plan: &plan,
            schema: &plan.schema,
        }
        .deserialize(d)
        .map(Decoded)
    }
}

/// One value of type `schema` (of the rewritten schema): records and maps
/// arrive entry by entry in wire order, arrays item by item, so nothing
/// is allocated ahead by a claimed count and every value is paid for from
/// [`BUDGET`] before it is read. A union is read as an enum, so that its
/// branch is known: a wrapped member reads as the member, a generated
/// field name as the original.
#[derive(Clone, Copy)]
struct Seed<'p> {
    plan: &'p ReadPlan,
    schema: &'p Schema,
}

impl<'p> Seed<'p> {
    fn at(self, schema: &'p Schema) -> Seed<'p> {
        Seed {
            plan: self.plan,
            schema,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Seed<'_> {
    type Value = AvroValue;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<AvroValue, D::Error> {
        use serde::de::Error;
        let schema = self
            .plan
            .resolve(self.schema)
            .ok_or_else(|| D::Error::custom("unknown named type"))?;
        let seed = self.at(schema);
        match schema {
            // Neither a union nor a wrapped member is a value of its own:
            // their branch, their field is.
            Schema::Union(_) => d.deserialize_enum("union", &[], seed),
            Schema::Record(r) if self.plan.rw.generated(r) == Generated::Member => {
                d.deserialize_any(seed)
            }
            _ => {
                spend::<D::Error>(1, 0)?;
                d.deserialize_any(seed)
            }
        }
    }
}

/// A map key or record field name, unpaid (the caller pays).
struct Key(String);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl serde::de::Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key, E> {
        Ok(Key(v))
    }
}

/// A union's branch index.
struct Branch;

impl<'de> serde::de::DeserializeSeed<'de> for Branch {
    type Value = usize;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_identifier(Branch)
    }
}

impl serde::de::Visitor<'_> for Branch {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a union branch")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<usize, E> {
        usize::try_from(v).map_err(|_| E::custom(format!("union branch {v} out of range")))
    }
}

impl<'de> serde::de::Visitor<'de> for Seed<'_> {
    type Value = AvroValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an Avro {}", schema_kind(self.schema))
    }

    fn visit_unit<E>(self) -> Result<AvroValue, E> {
        Ok(AvroValue::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<AvroValue, E> {
        Ok(AvroValue::Boolean(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<AvroValue, E> {
        Ok(AvroValue::Long(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AvroValue, E> {
        i64::try_from(v)
            .map(AvroValue::Long)
            .map_err(|_| E::custom(format!("integer {v} out of range")))
    }

    fn visit_f32<E>(self, v: f32) -> Result<AvroValue, E> {
        Ok(AvroValue::Double(f64::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<AvroValue, E> {
        Ok(AvroValue::Double(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AvroValue, E> {
        spend::<E>(0, v.len())?;
        Ok(AvroValue::String(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<AvroValue, E> {
        spend::<E>(0, v.len())?;
        Ok(AvroValue::String(v))
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<AvroValue, E> {
        spend::<E>(0, v.len())?;
        Ok(AvroValue::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<AvroValue, E> {
        spend::<E>(0, v.len())?;
        Ok(AvroValue::Bytes(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<AvroValue, A::Error> {
        use serde::de::Error;
        let Schema::Array(a) = self.schema else {
            return Err(A::Error::custom("an array where the schema has none"));
        };
        // No reservation by the claimed count (`size_hint`): items are
        // pushed as they are read and paid for.
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self.at(&a.items))? {
            items.push(v);
        }
        Ok(AvroValue::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<AvroValue, A::Error> {
        use serde::de::Error;
        let mut out = DictBuilder::default();
        match self.schema {
            Schema::Map(m) => {
                while let Some(Key(k)) = map.next_key()? {
                    spend::<A::Error>(0, k.len())?;
                    let v = map.next_value_seed(self.at(&m.types))?;
                    out.insert(k, v);
                }
            }
            Schema::Record(r) => {
                let member = self.plan.rw.generated(r) == Generated::Member;
                let mut value = None;
                while let Some(Key(k)) = map.next_key()? {
                    let f = r
                        .lookup
                        .get(&k)
                        .and_then(|&i| r.fields.get(i))
                        .ok_or_else(|| A::Error::custom("a field the schema does not have"))?;
                    let v = map.next_value_seed(self.at(&f.schema))?;
                    if member {
                        value = Some(v);
                    } else {
                        let name = self.plan.rw.field_name(&k);
                        spend::<A::Error>(0, name.len())?;
                        out.insert(name.to_string(), v);
                    }
                }
                if member {
                    return value.ok_or_else(|| A::Error::custom("an empty union member"));
                }
            }
            _ => return Err(A::Error::custom("a map where the schema has none")),
        }
        Ok(AvroValue::Map(out.entries))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<AvroValue, A::Error> {
        use serde::de::{Error, VariantAccess};
        if let Schema::Union(u) = self.schema {
            let (i, variant) = data.variant_seed(Branch)?;
            let branch = u
                .variants()
                .get(i)
                .ok_or_else(|| A::Error::custom(format!("no union branch {i}")))?;
            return variant.newtype_variant_seed(self.at(branch));
        }
        let (Key(symbol), variant) = data.variant()?;
        variant.unit_variant()?;
        spend::<A::Error>(0, symbol.len())?;
        Ok(AvroValue::String(symbol))
    }
}

/// The header's metadata (each key and value) and where its blocks begin
/// (after the sync marker).
type Header = (Vec<(String, Vec<u8>)>, usize);

fn read_header(buf: &[u8]) -> Result<Header, DecodeError> {
    let Some(mut rest) = buf.strip_prefix(MAGIC.as_slice()) else {
        return Err(avro_err(
            "header: wrong magic, not an Avro object container file",
        ));
    };
    let meta_schema = Schema::map(Schema::Bytes).build();
    let reader = GenericDatumReader::builder(&meta_schema)
        .build()
        .map_err(|e| apache_err("header: ", e))?;
    let meta = reader
        .read_value(&mut rest)
        .map_err(|e| apache_err("header: ", e))?;
    let AValue::Map(meta) = meta else {
        return Err(avro_err("header metadata is not a map"));
    };
    let mut entries = Vec::with_capacity(meta.len());
    for (k, v) in meta {
        let AValue::Bytes(v) = v else {
            return Err(avro_err(format!("header metadata {k:?} is not bytes")));
        };
        entries.push((k, v));
    }
    if rest.len() < 16 {
        return Err(avro_err("header has no sync marker"));
    }
    Ok((entries, buf.len() - rest.len() + 16))
}

/// A container header: magic, the metadata in the given order (written as
/// the array of `{key, value}` records a `map<bytes>` encodes alike), the
/// sync marker.
fn write_header(meta: &[(&str, &[u8])], sync: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let meta = AValue::Array(
        meta.iter()
            .map(|(k, v)| {
                AValue::Record(vec![
                    ("key".into(), AValue::String((*k).into())),
                    ("value".into(), AValue::Bytes(v.to_vec())),
                ])
            })
            .collect(),
    );
    let mut out = MAGIC.to_vec();
    GenericDatumWriter::builder(header_entries_schema()?)
        .build()
        .and_then(|w| w.write_value(&mut out, meta))
        .map_err(|e| apache_err("header: ", e))?;
    out.extend_from_slice(sync);
    Ok(out)
}

fn read_container(buf: &[u8]) -> Result<(Value, Vec<AvroValue>), DecodeError> {
    use std::io::Read;
    if buf.len() > MAX_AVRO_BYTES {
        return Err(avro_err(format!(
            "value of {} bytes exceeds the limit of {MAX_AVRO_BYTES}",
            buf.len()
        )));
    }
    avro_limits();
    // The header's schema, as written (hop's `AvroBlob.schema`) ...
    let (meta, blocks) = read_header(buf)?;
    let schema_json: Value = match meta.iter().find(|(k, _)| k == "avro.schema") {
        Some((_, text)) => serde_json::from_slice(text)
            .map_err(|e| avro_err(format!("avro.schema is not JSON: {e}")))?,
        None => return Err(avro_err("header has no avro.schema")),
    };
    // ... rewritten for apache-avro, which reads the container with a
    // header holding the rewritten schema and the blocks as they are ...
    let (encoding, rw) = rewrite(&schema_json, Mode::Read)?;
    let encoding_text =
        serde_json::to_vec(&encoding).map_err(|e| avro_err(format!("invalid schema: {e}")))?;
    let meta: Vec<(&str, &[u8])> = meta
        .iter()
        .map(|(k, v)| match k.as_str() {
            "avro.schema" => (k.as_str(), encoding_text.as_slice()),
            _ => (k.as_str(), v.as_slice()),
        })
        .collect();
    let header = write_header(&meta, &buf[blocks - 16..blocks])?;
    let reader = Reader::new(std::io::Cursor::new(header).chain(&buf[blocks..]))
        .map_err(|e| apache_err("", e))?;
    // ... whose schema skotch checks before any record is read.
    SchemaCheck::run(reader.writer_schema(), buf.len(), &rw)?;
    let _read = ReadGuard::new(ReadPlan::new(reader.writer_schema().clone(), rw));
    let mut records = Vec::new();
    for r in reader.into_deser_iter::<Decoded>() {
        records.push(r.map_err(|e| apache_err("", e))?.0);
    }
    Ok((schema_json, records))
}

// --- writing ----------------------------------------------------------------

/// The header metadata's schema, `map<bytes>`, written as the array of
/// `{key, value}` records it encodes alike, so that `avro.codec` comes
/// before `avro.schema` as fastavro writes them.
fn header_entries_schema() -> Result<&'static Schema, DecodeError> {
    static S: OnceLock<Result<Schema, String>> = OnceLock::new();
    S.get_or_init(|| {
        Schema::parse_str(
            r#"{"type": "array", "items": {"type": "record", "name": "meta", "fields": [
                {"name": "key", "type": "string"}, {"name": "value", "type": "bytes"}]}}"#,
        )
        .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| avro_err(e.clone()))
}

fn write_container(
    schema_json: &Value,
    records: &[AvroValue],
    sync: [u8; 16],
) -> Result<Vec<u8>, DecodeError> {
    avro_limits();
    // apache-avro encodes with the schema rewritten ([`rewrite`]); the
    // header holds the schema itself, which must read back.
    let (encoding_json, rw) = rewrite(schema_json, Mode::Write)?;
    rewrite(schema_json, Mode::Read)?;
    let encoding = Schema::parse(&encoding_json).map_err(|e| apache_err("invalid schema: ", e))?;
    let names = SchemaCheck::run(&encoding, MAX_AVRO_BYTES, &rw)?;

    // The header: magic, metadata (fastavro's order), sync marker.
    let mut schema_text = Vec::new();
    write_py_json(&mut schema_text, schema_json);
    let out = write_header(
        &[("avro.codec", b"null"), ("avro.schema", &schema_text)],
        &sync,
    )?;

    // The blocks: apache-avro's Writer, fastavro's block size.
    let conv = Convert {
        names: &names,
        rw: &rw,
    };
    let mut w = Writer::builder()
        .schema(&encoding)
        .writer(out)
        .block_size(SYNC_INTERVAL)
        .marker(sync)
        .has_header(true)
        .build()
        .map_err(|e| apache_err("", e))?;
    for r in records {
        let v = conv.value(&encoding, r)?;
        w.append_value_ref(&v).map_err(|e| apache_err("", e))?;
    }
    w.into_inner().map_err(|e| apache_err("", e))
}

fn mismatch(v: &AvroValue, what: &str) -> DecodeError {
    avro_err(format!(
        "a {} value does not fit the schema's {what}",
        v.py_type()
    ))
}

/// hop's content as apache-avro values for a rewritten schema
/// ([`rewrite`]), the way fastavro writes Python values with the schema as
/// written (module docs): a union's branch is fastavro's choice, a
/// record's missing field takes its default or null, a map is written as
/// its entries, a wrapped union member as a record holding it, a field by
/// its original name.
struct Convert<'a> {
    names: &'a HashMap<Name, &'a Schema>,
    rw: &'a Rewrite,
}

impl<'a> Convert<'a> {
    fn resolve(&self, s: &'a Schema) -> Result<&'a Schema, DecodeError> {
        match s {
            Schema::Ref { name } => self.names.get(name).copied().ok_or_else(|| {
                avro_err(format!(
                    "invalid schema: unknown type {:?}",
                    name.fullname(None)
                ))
            }),
            other => Ok(other),
        }
    }

    /// `s` resolved, and seen through wrapped union members: the type a
    /// value is checked against.
    fn view(&self, s: &'a Schema) -> Result<&'a Schema, DecodeError> {
        let mut s = self.resolve(s)?;
        while let Schema::Record(r) = s {
            match (self.rw.generated(r), r.fields.first()) {
                (Generated::Member, Some(f)) => s = self.resolve(&f.schema)?,
                _ => break,
            }
        }
        Ok(s)
    }

    fn value(&self, s: &'a Schema, v: &AvroValue) -> Result<AValue, DecodeError> {
        let s = self.resolve(s)?;
        if let Schema::Record(r) = s {
            match self.rw.generated(r) {
                Generated::Member => {
                    let f = r
                        .fields
                        .first()
                        .ok_or_else(|| avro_err("an empty union member"))?;
                    return Ok(AValue::Record(vec![(
                        f.name.clone(),
                        self.value(&f.schema, v)?,
                    )]));
                }
                Generated::Map => {
                    let values = map_values(r).ok_or_else(|| avro_err("a malformed map"))?;
                    let AvroValue::Map(entries) = v else {
                        return Err(mismatch(v, "map"));
                    };
                    return Ok(AValue::Record(vec![(
                        "entries".into(),
                        AValue::Array(
                            entries
                                .iter()
                                .map(|(k, x)| {
                                    Ok(AValue::Record(vec![
                                        ("key".into(), AValue::String(k.clone())),
                                        ("value".into(), self.value(values, x)?),
                                    ]))
                                })
                                .collect::<Result<_, DecodeError>>()?,
                        ),
                    )]));
                }
                Generated::No => {}
            }
        }
        let int = |i: i64| i32::try_from(i).map_err(|_| mismatch(v, "int"));
        Ok(match (s, v) {
            // fastavro's write_null writes nothing, whatever the value.
            (Schema::Null, _) => AValue::Null,
            (Schema::Boolean, AvroValue::Boolean(b)) => AValue::Boolean(*b),
            (Schema::Int, AvroValue::Long(i)) => AValue::Int(int(*i)?),
            (Schema::Date, AvroValue::Long(i)) => AValue::Date(int(*i)?),
            (Schema::TimeMillis, AvroValue::Long(i)) => AValue::TimeMillis(int(*i)?),
            (Schema::Long, AvroValue::Long(i)) => AValue::Long(*i),
            (Schema::TimeMicros, AvroValue::Long(i)) => AValue::TimeMicros(*i),
            (Schema::TimestampMillis, AvroValue::Long(i)) => AValue::TimestampMillis(*i),
            (Schema::TimestampMicros, AvroValue::Long(i)) => AValue::TimestampMicros(*i),
            (Schema::TimestampNanos, AvroValue::Long(i)) => AValue::TimestampNanos(*i),
            (Schema::LocalTimestampMillis, AvroValue::Long(i)) => AValue::LocalTimestampMillis(*i),
            (Schema::LocalTimestampMicros, AvroValue::Long(i)) => AValue::LocalTimestampMicros(*i),
            (Schema::LocalTimestampNanos, AvroValue::Long(i)) => AValue::LocalTimestampNanos(*i),
            (Schema::Float, AvroValue::Long(i)) => AValue::Float(*i as f32),
            (Schema::Float, AvroValue::Double(f)) => AValue::Float(*f as f32),
            (Schema::Double, AvroValue::Long(i)) => AValue::Double(*i as f64),
            (Schema::Double, AvroValue::Double(f)) => AValue::Double(*f),
            (Schema::Bytes, AvroValue::Bytes(b)) => AValue::Bytes(b.clone()),
            (Schema::String, AvroValue::String(t)) => AValue::String(t.clone()),
            (Schema::Fixed(f), AvroValue::Bytes(b)) if b.len() == f.size => {
                AValue::Fixed(f.size, b.clone())
            }
            (Schema::Decimal(_), AvroValue::Bytes(b)) => {
                AValue::Decimal(apache_avro::Decimal::from(b.clone()))
            }
            (Schema::Uuid(UuidSchema::String), AvroValue::String(t)) => {
                AValue::Uuid(apache_avro::Uuid::parse_str(t).map_err(|_| mismatch(v, "uuid"))?)
            }
            (Schema::Uuid(_), AvroValue::Bytes(b)) => {
                AValue::Uuid(apache_avro::Uuid::from_slice(b).map_err(|_| mismatch(v, "uuid"))?)
            }
            (Schema::Duration(_), AvroValue::Bytes(b)) => {
                let b: [u8; 12] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| mismatch(v, "duration"))?;
                AValue::Duration(apache_avro::Duration::from(b))
            }
            (Schema::Enum(e), AvroValue::String(t)) => {
                let i = e
                    .symbols
                    .iter()
                    .position(|x| x == t)
                    .ok_or_else(|| avro_err(format!("{t:?} is not a symbol of the enum")))?;
                AValue::Enum(i as u32, t.clone())
            }
            (Schema::Array(a), AvroValue::Array(list)) => AValue::Array(
                list.iter()
                    .map(|x| self.value(&a.items, x))
                    .collect::<Result<_, _>>()?,
            ),
            // Python bytes are a sequence of ints: fastavro writes them as
            // an array of numbers where the schema says array.
            (Schema::Array(a), AvroValue::Bytes(b)) => AValue::Array(
                b.iter()
                    .map(|x| self.value(&a.items, &AvroValue::Long(i64::from(*x))))
                    .collect::<Result<_, _>>()?,
            ),
            (Schema::Record(r), AvroValue::Map(_)) => {
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    let name = self.rw.field_name(&f.name);
                    let default;
                    let value = match (v.get(name), self.rw.default(f)) {
                        (Some(x), _) => x,
                        (None, Some(d)) => {
                            default = AvroValue::from_json(d);
                            &default
                        }
                        (None, None) if null_ok(&f.schema) => &AvroValue::Null,
                        (None, None) => {
                            return Err(avro_err(format!(
                                "no value and no default for field {name:?} of {:?}",
                                r.name.fullname(None)
                            )))
                        }
                    };
                    let coerced;
                    let value = match (&f.schema, value) {
                        (Schema::Float | Schema::Double, AvroValue::String(t)) => {
                            coerced = AvroValue::Double(py_float(t).ok_or_else(|| {
                                avro_err(format!("field {name:?}: {t:?} is not a float"))
                            })?);
                            &coerced
                        }
                        _ => value,
                    };
                    fields.push((f.name.clone(), self.value(&f.schema, value)?));
                }
                AValue::Record(fields)
            }
            (Schema::Union(u), _) => {
                let i = self.union_branch(u.variants(), v)?;
                AValue::Union(i as u32, Box::new(self.value(&u.variants()[i], v)?))
            }
            (Schema::BigDecimal, _) => {
                return Err(avro_err(
                    "skotch does not write the big-decimal logical type",
                ))
            }
            (s, v) => return Err(mismatch(v, schema_kind(s))),
        })
    }

    /// fastavro's `write_union`: which branch a value is written with.
    fn union_branch(&self, branches: &'a [Schema], v: &AvroValue) -> Result<usize, DecodeError> {
        let mut best: Option<usize> = None;
        let mut most_fields: i64 = -1;
        let mut could_be_float = false;
        for (i, b) in branches.iter().enumerate() {
            let b = self.view(b)?;
            if could_be_float {
                if matches!(b, Schema::Double) {
                    best = Some(i);
                    break;
                }
                continue;
            }
            if !self.validates(b, v)? {
                continue;
            }
            match b {
                Schema::Record(r) if self.rw.generated(r) == Generated::No => {
                    let n = r
                        .fields
                        .iter()
                        .filter(|f| v.get(self.rw.field_name(&f.name)).is_some())
                        .count() as i64;
                    if n > most_fields {
                        best = Some(i);
                        most_fields = n;
                    }
                }
                Schema::Float => {
                    best = Some(i);
                    could_be_float = true;
                }
                _ => {
                    best = Some(i);
                    break;
                }
            }
        }
        best.ok_or_else(|| {
            avro_err(format!(
                "a {} value fits no branch of the union",
                v.py_type()
            ))
        })
    }

    /// fastavro's `_validate` (no strict options, no tuple notation).
    fn validates(&self, s: &'a Schema, v: &AvroValue) -> Result<bool, DecodeError> {
        let s = self.view(s)?;
        let fits_i32 = |i: &i64| i32::try_from(*i).is_ok();
        Ok(match (s, v) {
            (Schema::Null, AvroValue::Null) => true,
            (Schema::Boolean, AvroValue::Boolean(_)) => true,
            (Schema::Int | Schema::Date | Schema::TimeMillis, AvroValue::Long(i)) => fits_i32(i),
            (
                Schema::Long
                | Schema::TimeMicros
                | Schema::TimestampMillis
                | Schema::TimestampMicros
                | Schema::TimestampNanos
                | Schema::LocalTimestampMillis
                | Schema::LocalTimestampMicros
                | Schema::LocalTimestampNanos,
                AvroValue::Long(_),
            ) => true,
            (Schema::Float | Schema::Double, AvroValue::Long(_) | AvroValue::Double(_)) => true,
            (Schema::String, AvroValue::String(_)) => true,
            (Schema::Uuid(UuidSchema::String), AvroValue::String(t)) => {
                apache_avro::Uuid::parse_str(t).is_ok()
            }
            (Schema::Bytes | Schema::Decimal(_), AvroValue::Bytes(_)) => true,
            (Schema::Uuid(UuidSchema::Bytes), AvroValue::Bytes(b)) => b.len() == 16,
            (Schema::Fixed(f) | Schema::Duration(f), AvroValue::Bytes(b)) => b.len() == f.size,
            (Schema::Uuid(UuidSchema::Fixed(f)), AvroValue::Bytes(b)) => {
                b.len() == f.size && f.size == 16
            }
            (Schema::Enum(e), AvroValue::String(t)) => e.symbols.contains(t),
            (Schema::Array(a), AvroValue::Array(list)) => {
                for item in list {
                    if !self.validates(&a.items, item)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Schema::Array(a), AvroValue::Bytes(b)) => {
                for x in b {
                    if !self.validates(&a.items, &AvroValue::Long(i64::from(*x)))? {
                        return Ok(false);
                    }
                }
                true
            }
            (Schema::Record(r), AvroValue::Map(entries))
                if self.rw.generated(r) == Generated::Map =>
            {
                let Some(values) = map_values(r) else {
                    return Ok(false);
                };
                for (_, item) in entries {
                    if !self.validates(values, item)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Schema::Record(r), AvroValue::Map(_)) => {
                if let Some(t) = v.get("-type") {
                    if *t != AvroValue::String(r.name.fullname(None)) {
                        return Ok(false);
                    }
                }
                for f in &r.fields {
                    let default = self.rw.default(f).map(AvroValue::from_json);
                    let item = v
                        .get(self.rw.field_name(&f.name))
                        .or(default.as_ref())
                        .unwrap_or(&AvroValue::Null);
                    if !self.validates(&f.schema, item)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Schema::Union(u), _) => {
                for b in u.variants() {
                    if self.validates(b, v)? {
                        return Ok(true);
                    }
                }
                false
            }
            _ => false,
        })
    }
}

/// fastavro's `"null" in field_type`: the field's type is null or a union
/// with a null branch.
fn null_ok(s: &Schema) -> bool {
    match s {
        Schema::Null => true,
        Schema::Union(u) => u.variants().iter().any(|b| matches!(b, Schema::Null)),
        _ => false,
    }
}

fn schema_kind(s: &Schema) -> &'static str {
    match s {
        Schema::Null => "null",
        Schema::Boolean => "boolean",
        Schema::Int => "int",
        Schema::Long => "long",
        Schema::Float => "float",
        Schema::Double => "double",
        Schema::Bytes => "bytes",
        Schema::String => "string",
        Schema::Array(_) => "array",
        Schema::Map(_) => "map",
        Schema::Union(_) => "union",
        Schema::Record(_) => "record",
        Schema::Enum(_) => "enum",
        Schema::Fixed(_) => "fixed",
        Schema::Decimal(_) | Schema::BigDecimal => "decimal",
        Schema::Uuid(_) => "uuid",
        Schema::Duration(_) => "duration",
        Schema::Ref { .. } => "named type",
        _ => "date or time",
    }
}

/// Python's `float(text)` for the forms a default can take.
fn py_float(t: &str) -> Option<f64> {
    let t = t.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let neg = lower.starts_with('-');
    let special = match body {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" => Some(f64::INFINITY),
        _ => None,
    };
    match special {
        Some(f) => Some(if neg { -f } else { f }),
        None => t.parse().ok(),
    }
}

// --- Python repr ------------------------------------------------------------

fn py_repr(out: &mut String, v: &AvroValue) {
    match v {
        AvroValue::Null => out.push_str("None"),
        AvroValue::Boolean(true) => out.push_str("True"),
        AvroValue::Boolean(false) => out.push_str("False"),
        AvroValue::Long(i) => out.push_str(&i.to_string()),
        AvroValue::Double(f) => out.push_str(&py_float_str(*f)),
        AvroValue::String(s) => py_str_repr(out, s),
        AvroValue::Bytes(b) => py_bytes_repr(out, b),
        AvroValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(out, item);
            }
            out.push(']');
        }
        AvroValue::Map(entries) => {
            out.push('{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_str_repr(out, k);
                out.push_str(": ");
                py_repr(out, item);
            }
            out.push('}');
        }
    }
}

/// `float.__repr__`, with `nan`, `inf` and `-inf`.
fn py_float_str(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        py_float_repr(f)
    }
}

/// The quote CPython's `repr` picks: `'` unless the text has `'` and no `"`.
fn py_quote(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

/// `str.__repr__` (CPython's `unicode_repr`).
fn py_str_repr(out: &mut String, s: &str) {
    let quote = py_quote(s.contains('\''), s.contains('"'));
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if py_printable(c) => out.push(c),
            c => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable` for one non-ASCII character: false for the
/// categories Cc, Cf, Co, Zs, Zl, Zp (CPython also escapes unassigned code
/// points, Cn, by its Unicode database; skotch prints those as they are).
fn py_printable(c: char) -> bool {
    let n = c as u32;
    let not = matches!(n,
        0x80..=0xa0 // C1 controls (Cc) and NO-BREAK SPACE (Zs)
        | 0xad // Cf
        | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 // Cf
        | 0x1680 // Zs
        | 0x180e // Cf
        | 0x2000..=0x200f // Zs, Cf
        | 0x2028..=0x202f // Zl, Zp, Cf, Zs
        | 0x205f..=0x2064 | 0x2066..=0x206f // Zs, Cf
        | 0x3000 // Zs
        | 0xe000..=0xf8ff // Co
        | 0xfeff | 0xfff9..=0xfffb // Cf
        | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3 // Cf
        | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f // Cf
        | 0xf0000..=0xffffd | 0x100000..=0x10fffd // Co
    );
    !not
}

/// `bytes.__repr__`.
fn py_bytes_repr(out: &mut String, b: &[u8]) {
    let quote = py_quote(b.contains(&b'\''), b.contains(&b'"'));
    out.push('b');
    out.push(quote);
    for &x in b {
        match x {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            x if char::from(x) == quote => {
                out.push('\\');
                out.push(char::from(x));
            }
            0x20..=0x7e => out.push(char::from(x)),
            x => out.push_str(&format!("\\x{x:02x}")),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Message;
    use proptest::prelude::*;
    use serde_json::json;

    // Written by hop-client 0.13.0 and fastavro 1.13.1
    // (stream/tests/fixtures/make_avro.py).
    macro_rules! fixture {
        ($name:literal) => {
            (
                &include_bytes!(concat!("../../tests/fixtures/", $name, ".avro"))[..],
                &include_bytes!(concat!("../../tests/fixtures/", $name, ".str.txt"))[..],
                &include_bytes!(concat!("../../tests/fixtures/", $name, ".printed.avro"))[..],
            )
        };
    }
    const PLAIN_SCHEMA: &str = include_str!("../../tests/fixtures/avro_plain.schema.json");
    const NESTED_SCHEMA: &str = include_str!("../../tests/fixtures/avro_nested.schema.json");
    const MANY_SCHEMA: &str = include_str!("../../tests/fixtures/avro_many.schema.json");
    const GIVEN_SCHEMA: &str = include_str!("../../tests/fixtures/avro_given.schema.json");
    const MAPS_SCHEMA: &str = include_str!("../../tests/fixtures/avro_maps.schema.json");
    const ARRAYS_SCHEMA: &str = include_str!("../../tests/fixtures/avro_arrays.schema.json");
    const NAMES_SCHEMA: &str = include_str!("../../tests/fixtures/avro_names.schema.json");

    fn sync_of(container: &[u8]) -> [u8; 16] {
        let mut s = [0u8; 16];
        s.copy_from_slice(&container[container.len() - 16..]);
        s
    }

    /// A schema with every union's members sorted (hop's order is a set's).
    fn unordered(v: &Value) -> Value {
        match v {
            Value::Array(items) => {
                let mut items: Vec<Value> = items.iter().map(unordered).collect();
                items.sort_by_key(|x| x.to_string());
                Value::Array(items)
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        let x = match (k.as_str(), x) {
                            // Field lists are ordered.
                            ("fields", Value::Array(fs)) => {
                                Value::Array(fs.iter().map(unordered).collect())
                            }
                            _ => unordered(x),
                        };
                        (k.clone(), x)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn check_fixture(
        (file, printed_str, printed): (&[u8], &[u8], &[u8]),
        schema: Option<&str>,
        single_record: bool,
        exact: bool,
    ) -> Avro {
        let a = Avro::from_container(Bytes::copy_from_slice(file), single_record).unwrap();
        // Content as hop prints it, byte for byte.
        assert_eq!(a.to_python_str(), std::str::from_utf8(printed_str).unwrap());
        if let Some(schema) = schema {
            let hop: Value = serde_json::from_str(schema).unwrap();
            assert_eq!(a.schema(), &hop);
        }
        // What `hop subscribe` prints (bytes(message), a re-encoded
        // container): the same bytes, given hop's random sync marker.
        let sync = sync_of(printed);
        let ours = a.to_container_with_sync(sync).unwrap();
        if exact {
            assert_eq!(&ours[..], printed);
        } else {
            // fastavro rewrote the given schema's text (full names, key
            // order; module docs): the blocks after the header are equal.
            let tail = |c: &[u8]| {
                let at = c.windows(16).position(|w| w == sync).unwrap();
                c[at..].to_vec()
            };
            assert_eq!(tail(&ours), tail(printed));
            let hop = Avro::from_container(Bytes::copy_from_slice(printed), single_record).unwrap();
            assert_eq!(hop.content(), a.content());
        }
        assert_eq!(a.raw().map(|r| &r[..]), Some(file));
        a
    }

    #[test]
    fn reads_hops_files_and_prints_what_hop_prints() {
        check_fixture(fixture!("avro_plain"), Some(PLAIN_SCHEMA), true, true);
        check_fixture(fixture!("avro_nested"), Some(NESTED_SCHEMA), true, true);
        check_fixture(fixture!("avro_many"), Some(MANY_SCHEMA), false, true);
        check_fixture(fixture!("avro_given"), Some(GIVEN_SCHEMA), true, false);
        // Shapes apache-avro refuses as they are (module docs, "the schema
        // apache-avro is given").
        check_fixture(fixture!("avro_maps"), Some(MAPS_SCHEMA), false, true);
        check_fixture(fixture!("avro_arrays"), Some(ARRAYS_SCHEMA), true, true);
        check_fixture(fixture!("avro_names"), Some(NAMES_SCHEMA), true, true);
        // A deflate file reads to the same record; hop re-encodes it with
        // the null codec.
        let a = check_fixture(fixture!("avro_deflate"), Some(GIVEN_SCHEMA), true, false);
        assert_eq!(a.raw().unwrap().len(), fixture!("avro_deflate").0.len());
    }

    #[test]
    fn infers_hops_schemas() {
        for (name, file, schema, single) in [
            ("plain", fixture!("avro_plain").0, PLAIN_SCHEMA, true),
            ("nested", fixture!("avro_nested").0, NESTED_SCHEMA, true),
            ("many", fixture!("avro_many").0, MANY_SCHEMA, false),
            ("maps", fixture!("avro_maps").0, MAPS_SCHEMA, false),
            ("arrays", fixture!("avro_arrays").0, ARRAYS_SCHEMA, true),
            ("names", fixture!("avro_names").0, NAMES_SCHEMA, true),
        ] {
            let a = Avro::from_container(Bytes::copy_from_slice(file), single).unwrap();
            let hop: Value = serde_json::from_str(schema).unwrap();
            let ours = infer_schema(a.records()).unwrap();
            assert_eq!(unordered(&ours), unordered(&hop), "{name}");
        }
    }

    #[test]
    fn writes_hops_bytes_for_a_union_free_record() {
        let (file, _, _) = fixture!("avro_plain");
        let read = Avro::deserialize(Bytes::from_static(file)).unwrap();
        let ours = Avro::new(read.content().clone()).unwrap();
        assert_eq!(
            &ours.to_container_with_sync(sync_of(file)).unwrap()[..],
            file
        );
        // serialize() draws its own sync marker; the rest is the same.
        let s = ours.serialize();
        assert_eq!(s.len(), file.len());
        assert_ne!(sync_of(&s), sync_of(file));
        assert_eq!(Avro::deserialize(s).unwrap(), read);
    }

    #[test]
    fn writes_hops_bytes_for_shapes_apache_avro_refuses() {
        // hop's content and schema (its union order is a set's), written
        // by skotch with hop's sync marker: hop's file, byte for byte.
        for (file, single) in [
            (fixture!("avro_maps").0, false),
            (fixture!("avro_arrays").0, true),
            (fixture!("avro_names").0, true),
        ] {
            let read = Avro::from_container(Bytes::from_static(file), single).unwrap();
            let ours =
                Avro::with_schema(read.content().clone(), read.schema().clone(), single).unwrap();
            assert_eq!(
                &ours.to_container_with_sync(sync_of(file)).unwrap()[..],
                file
            );
        }
        // With skotch's inferred schema: the same content back.
        for (file, single) in [
            (fixture!("avro_maps").0, false),
            (fixture!("avro_names").0, true),
        ] {
            let read = Avro::from_container(Bytes::from_static(file), single).unwrap();
            let ours = if single {
                Avro::new(read.content().clone())
            } else {
                Avro::many(read.records().to_vec())
            }
            .unwrap();
            let back = Avro::from_container(ours.serialize(), single).unwrap();
            assert_eq!(back.content(), read.content());
        }
    }

    #[test]
    fn inference_follows_avro_utils() {
        let t = |v: Value| infer_schema(&[AvroValue::from_json(&v)]).unwrap();
        assert_eq!(t(json!("x")), json!("string"));
        assert_eq!(t(json!(1)), json!("long"));
        assert_eq!(t(json!(1.5)), json!("double"));
        assert_eq!(t(json!(null)), json!("null"));
        assert_eq!(t(json!(true)), json!("boolean"));
        assert_eq!(
            infer_schema(&[AvroValue::Bytes(vec![1])]).unwrap(),
            json!("bytes")
        );
        assert_eq!(t(json!({})), json!({"type": "map", "values": []}));
        assert_eq!(t(json!([])), json!({"type": "array", "items": []}));
        assert_eq!(t(json!({"a": 1})), json!({"type": "map", "values": "long"}));
        // 2 types > 2 // 2: a record.
        assert_eq!(
            t(json!({"a": 1, "b": "x"})),
            json!({"type": "record", "name": "auto_record0", "fields": [
                {"name": "a", "type": "long"}, {"name": "b", "type": "string"}]})
        );
        // 2 types, 4 entries: a map of the union.
        assert_eq!(
            t(json!({"a": 1, "b": "x", "c": 2, "d": "y"})),
            json!({"type": "map", "values": ["long", "string"]})
        );
        // Inner records are numbered first; equal shapes are distinct types.
        assert_eq!(
            t(json!([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, 3.5])),
            json!({"type": "array", "items": ["double",
                {"type": "record", "name": "auto_record0", "fields": [
                    {"name": "a", "type": "long"}, {"name": "b", "type": "string"}]},
                {"type": "record", "name": "auto_record1", "fields": [
                    {"name": "a", "type": "long"}, {"name": "b", "type": "string"}]}]})
        );
        // Several records of one type: that type; of several: the union.
        let r = [AvroValue::Long(1), AvroValue::Long(2)];
        assert_eq!(infer_schema(&r).unwrap(), json!("long"));
        let r = [AvroValue::String("a".into()), AvroValue::Long(2)];
        assert_eq!(infer_schema(&r).unwrap(), json!(["long", "string"]));
    }

    #[test]
    fn python_repr_matches_cpython() {
        let r = |v: AvroValue| v.to_python_repr();
        assert_eq!(r(AvroValue::String("it's".into())), "\"it's\"");
        assert_eq!(r(AvroValue::String("a'\"b".into())), "'a\\'\"b'");
        assert_eq!(
            r(AvroValue::String("\u{85}\u{3000}é\u{e0001}".into())),
            "'\\x85\\u3000é\\U000e0001'"
        );
        assert_eq!(r(AvroValue::Bytes(b"it's".to_vec())), "b\"it's\"");
        assert_eq!(
            r(AvroValue::Bytes(vec![0, 0x7f, 0x80, b'a'])),
            "b'\\x00\\x7f\\x80a'"
        );
        assert_eq!(r(AvroValue::Double(f64::NAN)), "nan");
        assert_eq!(r(AvroValue::Double(1e22)), "1e+22");
        assert_eq!(r(AvroValue::Double(0.0001)), "0.0001");
        assert_eq!(
            r(AvroValue::Map(vec![(
                "k".into(),
                AvroValue::Array(vec![AvroValue::Null, AvroValue::Boolean(false)])
            )])),
            "{'k': [None, False]}"
        );
        let a = Avro::new(AvroValue::Long(5)).unwrap();
        assert_eq!(a.to_string(), "5");
    }

    #[test]
    fn message_deserialize_reads_avro_and_falls_back_to_blob() {
        let (file, _, _) = fixture!("avro_plain");
        let m = Message::deserialize(Some(b"AVRO"), Some(&Bytes::from_static(file)));
        let Message::Avro(a) = &m else {
            panic!("not avro: {m:?}")
        };
        assert_eq!(m.format_name(), "avro");
        assert_eq!(a.content().get("count"), Some(&AvroValue::Long(3)));
        // Many records: hop raises (single_record=True); a Blob here.
        let (many, _, _) = fixture!("avro_many");
        let m = Message::deserialize(Some(b"avro"), Some(&Bytes::from_static(many)));
        assert_eq!(m, Message::Blob(Bytes::from_static(many)));
        let m = Message::deserialize(Some(b"avro"), Some(&Bytes::from_static(b"junk")));
        assert_eq!(m, Message::Blob(Bytes::from_static(b"junk")));
        // Writing: the model's container.
        let a = Avro::new(AvroValue::from_json(&json!({"a": [1, 2]}))).unwrap();
        let m = Message::from(a.clone());
        assert_eq!(Avro::deserialize(m.serialize()).unwrap(), a);
    }

    #[test]
    fn bytes_fit_an_array_of_longs_as_in_fastavro() {
        // hop's union order is a set's: with the array member first,
        // fastavro writes b"ab" as [97, 98].
        let schema =
            json!({"type": "array", "items": [{"type": "array", "items": "long"}, "bytes"]});
        let content = AvroValue::Array(vec![AvroValue::Bytes(b"ab".to_vec())]);
        let a = Avro::with_schema(content, schema, true).unwrap();
        let back = Avro::deserialize(a.serialize()).unwrap();
        assert_eq!(back.to_python_str(), "[[97, 98]]");
    }

    #[test]
    fn content_must_fit_a_given_schema() {
        let schema = json!({"type": "record", "name": "R", "fields": [
            {"name": "a", "type": "int"},
            {"name": "b", "type": ["null", "string"]},
            {"name": "c", "type": "double", "default": "NaN"}]});
        let ok = Avro::with_schema(AvroValue::from_json(&json!({"a": 1})), schema.clone(), true)
            .unwrap();
        let back = Avro::deserialize(ok.serialize()).unwrap();
        let AvroValue::Map(fields) = back.content() else {
            panic!()
        };
        assert_eq!(fields[1], ("b".into(), AvroValue::Null));
        assert!(matches!(fields[2].1, AvroValue::Double(f) if f.is_nan()));
        for bad in [
            json!({"a": "x"}),
            json!({"a": 1i64 << 40}),
            json!({"b": "x"}),
            json!(3),
        ] {
            let e =
                Avro::with_schema(AvroValue::from_json(&bad), schema.clone(), true).unwrap_err();
            assert!(matches!(e, DecodeError::Avro { .. }), "{bad}: {e}");
        }
        let e = Avro::with_schema(AvroValue::Long(1), json!("long"), false).unwrap_err();
        assert!(e.to_string().contains("list of records"), "{e}");
        let e = Avro::with_schema(AvroValue::Long(1), json!({"type": "nope"}), true).unwrap_err();
        assert!(e.to_string().contains("invalid schema"), "{e}");
    }

    #[test]
    fn apache_avro_reads_what_we_write_and_we_read_what_it_writes() {
        let (file, _, _) = fixture!("avro_given");
        let ours = Avro::deserialize(Bytes::from_static(file))
            .unwrap()
            .serialize();
        let reader = apache_avro::Reader::new(&ours[..]).unwrap();
        let values: Vec<_> = reader.map(|v| v.unwrap()).collect();
        assert_eq!(values.len(), 1);
        let apache_avro::types::Value::Record(fields) = &values[0] else {
            panic!("{values:?}")
        };
        assert_eq!(
            fields[0],
            ("id".to_string(), apache_avro::types::Value::Int(42))
        );

        let schema = apache_avro::Schema::parse_str(
            r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": "long"}, {"name": "m", "type": {"type": "map", "values": "string"}}]}"#,
        )
        .unwrap();
        let mut w = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
        let mut rec = apache_avro::types::Record::new(&schema).unwrap();
        rec.put("x", 7i64);
        rec.put(
            "m",
            std::collections::HashMap::from([("k".to_string(), "v".to_string())]),
        );
        w.append_value(rec).unwrap();
        let bytes = w.into_inner().unwrap();
        let a = Avro::deserialize(Bytes::from(bytes)).unwrap();
        assert_eq!(a.to_python_str(), "{'x': 7, 'm': {'k': 'v'}}");
    }

    // --- hostile input ---------------------------------------------------------

    // A test-only Avro encoder for hand-made (hostile) containers.
    fn write_long(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
        write_long(out, b.len() as i64);
        out.extend_from_slice(b);
    }

    /// A container with `schema`, the null codec, and one block of `count`
    /// records whose bytes are `data`.
    fn container(schema: &str, count: i64, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        write_long(&mut out, 1);
        write_bytes(&mut out, b"avro.schema");
        write_bytes(&mut out, schema.as_bytes());
        write_long(&mut out, 0);
        out.extend_from_slice(&[7; 16]);
        write_long(&mut out, count);
        write_bytes(&mut out, data);
        out.extend_from_slice(&[7; 16]);
        out
    }

    fn decode_err(bytes: Vec<u8>) -> String {
        match Avro::from_container(Bytes::from(bytes), false) {
            Ok(a) => panic!("decoded: {a:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors() {
        let (file, _, _) = fixture!("avro_nested");
        let mut bad = file.to_vec();
        bad[0] = b'X';
        assert!(decode_err(bad).contains("magic"));
        // Every truncation is an error, none panics.
        for n in 0..file.len() {
            assert!(
                Avro::from_container(Bytes::copy_from_slice(&file[..n]), true).is_err(),
                "{n}"
            );
        }
        // A wrong sync marker after the block.
        let mut bad = file.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode_err(bad).contains("sync marker"));
        // Bytes flipped anywhere: errors or other content, never a panic.
        for i in 0..file.len() {
            let mut bad = file.to_vec();
            bad[i] ^= 0xa5;
            let _ = Avro::from_container(Bytes::from(bad), false);
        }
        // Trailing bytes inside a block are ignored (by fastavro too).
        let a = Avro::from_container(Bytes::from(container("\"long\"", 1, &[2, 0])), true);
        assert_eq!(a.unwrap().content(), &AvroValue::Long(1));
        // No avro.schema, an unsupported codec.
        let mut c = MAGIC.to_vec();
        c.extend_from_slice(&[0; 17]);
        assert!(decode_err(c).contains("avro.schema"));
        let mut c = MAGIC.to_vec();
        write_long(&mut c, 2);
        write_bytes(&mut c, b"avro.schema");
        write_bytes(&mut c, b"\"long\"");
        write_bytes(&mut c, b"avro.codec");
        write_bytes(&mut c, b"snappy");
        write_long(&mut c, 0);
        c.extend_from_slice(&[0; 16]);
        assert!(decode_err(c).contains("not supported"));
    }

    #[test]
    fn shapes_the_avro_specification_refuses_read_and_write() {
        // Field names that are not Avro names (hop infers them from dict
        // keys): written under the schema as hop writes it, read back.
        let content = AvroValue::from_json(&json!({"my key": 1, "b": "x", "": null}));
        let a = Avro::new(content.clone()).unwrap();
        let text = String::from_utf8_lossy(&a.serialize()).into_owned();
        assert!(
            text.contains(r#"{"name": "my key", "type": "long"}"#),
            "{text}"
        );
        assert!(!text.contains(GENERATED), "{text}");
        let back = Avro::deserialize(a.serialize()).unwrap();
        assert_eq!(back.content(), &content);
        assert_eq!(back.schema(), a.schema());
        let schema = r#"{"type": "record", "name": "auto_record0", "fields": [{"name": "my key", "type": "long"}, {"name": "b", "type": "string"}]}"#;
        let c = container(schema, 1, &[2, 2, b'x']);
        let m = Message::deserialize(Some(b"avro"), Some(&Bytes::from(c)));
        let Message::Avro(a) = &m else {
            panic!("not avro: {m:?}")
        };
        assert_eq!(a.to_python_str(), "{'my key': 1, 'b': 'x'}");
        // Two arrays in one union (hop infers it for [[1.5], [2]]): fastavro
        // writes [2] with the first member it fits, as [2.0].
        let a = Avro::new(AvroValue::from_json(&json!([[1.5], [2]]))).unwrap();
        assert_eq!(
            a.schema(),
            &json!({"type": "array", "items": [
                {"type": "array", "items": "double"}, {"type": "array", "items": "long"}]})
        );
        let back = Avro::deserialize(a.serialize()).unwrap();
        assert_eq!(back.to_python_str(), "[[1.5], [2.0]]");
        // The other order: each list takes its own member (the second one
        // is wrapped for apache-avro, the bytes are fastavro's).
        let schema = json!({"type": "array", "items": [
            {"type": "array", "items": "long"}, {"type": "array", "items": "double"}]});
        let content = AvroValue::from_json(&json!([[1.5], [2]]));
        let a = Avro::with_schema(content.clone(), schema, true).unwrap();
        let back = Avro::deserialize(a.serialize()).unwrap();
        assert_eq!(back.content(), &content);
        let sync = [9; 16];
        let bytes = a.to_container_with_sync(sync).unwrap();
        let at = bytes.windows(16).position(|w| w == sync).unwrap();
        // One record of 17 bytes: an array block of 2 items, member 1
        // [1.5], member 0 [2], end.
        let mut block = vec![2, 34, 4, 2, 2];
        block.extend_from_slice(&1.5f64.to_le_bytes());
        block.extend_from_slice(&[0, 0, 2, 4, 0, 0]);
        assert_eq!(&bytes[at + 16..bytes.len() - 16], &block[..]);
        // Two maps in one union, two records of a namespaced schema in
        // one union, a union in a union, a field default of a renamed
        // field, a reference to a record inside a wrapped member.
        let schema = json!({"type": "record", "name": "R", "namespace": "org.example", "fields": [
            {"name": "u", "type": [
                {"type": "map", "values": "long"},
                {"type": "map", "values": {"type": "record", "name": "In", "fields": [
                    {"name": "x y", "type": "long", "default": 5}]}},
                {"type": "array", "items": "string"},
                {"type": "array", "items": "In"},
                ["null", "boolean"]]},
            {"name": "w", "type": ["In", "In", "double"]},
            {"name": "m", "type": {"type": "map", "values": "string"}, "default": {"k": "v"}}]});
        for (value, printed) in [
            (
                json!({"u": {"a": 1}, "w": 1.5, "m": {"z": "1", "a": "2"}}),
                "{'u': {'a': 1}, 'w': 1.5, 'm': {'z': '1', 'a': '2'}}",
            ),
            (
                json!({"u": {"a": {}}, "w": {"x y": 2}}),
                "{'u': {'a': {'x y': 5}}, 'w': {'x y': 2}, 'm': {'k': 'v'}}",
            ),
            (
                json!({"u": ["s"], "w": {}}),
                "{'u': ['s'], 'w': {'x y': 5}, 'm': {'k': 'v'}}",
            ),
            (
                json!({"u": [{"x y": 3}], "w": 2}),
                "{'u': [{'x y': 3}], 'w': 2.0, 'm': {'k': 'v'}}",
            ),
            (
                json!({"u": true, "w": 0}),
                "{'u': True, 'w': 0.0, 'm': {'k': 'v'}}",
            ),
            (
                json!({"u": null, "w": 0}),
                "{'u': None, 'w': 0.0, 'm': {'k': 'v'}}",
            ),
        ] {
            let a = Avro::with_schema(AvroValue::from_json(&value), schema.clone(), true).unwrap();
            let back = Avro::deserialize(a.serialize()).unwrap();
            assert_eq!(back.to_python_str(), printed, "{value}");
            assert_eq!(back.schema(), &schema);
        }
        // A schema holding the generated names' prefix gets another one.
        let schema = json!({"type": "record", "name": "skotch_avro_u0", "fields": [
            {"name": "skotch_avro_f0", "type": [{"type": "array", "items": "long"},
                {"type": "array", "items": "string"}]},
            {"name": "a b", "type": "long"}]});
        let content = AvroValue::from_json(&json!({"skotch_avro_f0": ["x"], "a b": 1}));
        let a = Avro::with_schema(content.clone(), schema, true).unwrap();
        assert_eq!(
            Avro::deserialize(a.serialize()).unwrap().content(),
            &content
        );
        // A map and an array in one union need no rewriting, entries in
        // order.
        let content = AvroValue::from_json(&json!([[1], {"z": "a", "b": "c", "m": "d"}]));
        let a = Avro::new(content.clone()).unwrap();
        let back = Avro::deserialize(a.serialize()).unwrap();
        assert_eq!(back.content(), &content);
        assert_eq!(
            back.to_python_str(),
            "[[1], {'z': 'a', 'b': 'c', 'm': 'd'}]"
        );
    }

    #[test]
    fn rewriting_is_bounded() {
        // Many unions of many arrays: every member but the first wrapped,
        // once.
        let members: Vec<Value> = (0..1000)
            .map(|i| json!({"type": "array", "items": if i % 2 == 0 { "long" } else { "string" }}))
            .collect();
        let (out, rw) = rewrite(&Value::Array(members), Mode::Read).unwrap();
        let Value::Array(out) = out else { panic!() };
        assert_eq!(out.len(), 1000);
        assert_eq!(out[0], json!({"type": "array", "items": "long"}));
        assert_eq!(out[1]["name"], json!("skotch_avro_u0"));
        assert!(rw.fields.is_empty());
        // Unions in unions, 60 deep: the rewritten JSON would nest deeper
        // than apache-avro parses a header's schema; refused, on writing
        // too (what skotch writes reads back).
        let mut deep = json!("long");
        for _ in 0..60 {
            deep = json!(["null", deep]);
        }
        let e = rewrite(&deep, Mode::Read).unwrap_err();
        assert!(e.to_string().contains("nests too deeply"), "{e}");
        let e = Avro::with_schema(AvroValue::Null, deep, true).unwrap_err();
        assert!(e.to_string().contains("nests too deeply"), "{e}");
        // Types deeper than MAX_DEPTH are refused while rewriting.
        let mut deep = json!("long");
        for _ in 0..100 {
            deep = json!({"type": "map", "values": deep});
        }
        let e = rewrite(&deep, Mode::Write).unwrap_err();
        assert!(e.to_string().contains("deeper than 64"), "{e}");
        let e = decode_err(container(&deep.to_string(), 1, &[0]));
        assert!(e.contains("deeper than 64"), "{e}");
        // The wrapped members do not count as levels: 64 levels of
        // unions of two arrays are fine as written.
        let mut deep = json!("long");
        for _ in 0..21 {
            deep = json!([{"type": "array", "items": "null"}, {"type": "array", "items": deep}]);
        }
        let (_, rw) = rewrite(&deep, Mode::Write).unwrap();
        let (enc, _) = rewrite(&deep, Mode::Write).unwrap();
        let enc = Schema::parse(&enc).unwrap();
        SchemaCheck::run(&enc, 0, &rw).unwrap();
    }

    #[test]
    fn single_record_refuses_several_and_none() {
        let (many, _, _) = fixture!("avro_many");
        let e = Avro::deserialize(Bytes::from_static(many)).unwrap_err();
        assert!(e.to_string().contains("holds 3"), "{e}");
        let a = Avro::many(vec![]).unwrap();
        let e = Avro::deserialize(a.serialize()).unwrap_err();
        assert!(e.to_string().contains("holds 0"), "{e}");
    }

    #[test]
    fn huge_claimed_lengths_are_refused_before_allocating() {
        // A string claiming 2^60 bytes.
        let mut data = Vec::new();
        write_long(&mut data, 1 << 60);
        let e = decode_err(container("\"string\"", 1, &data));
        assert!(e.contains("allocate 1152921504606846976 bytes"), "{e}");
        // A block claiming 2^40 records of a zero-byte type.
        let e = decode_err(container("\"null\"", 1 << 40, &[]));
        assert!(e.contains("more than 1048576 values"), "{e}");
        // An array block claiming 2^62 nulls.
        let mut data = Vec::new();
        write_long(&mut data, 1 << 62);
        let e = decode_err(container(r#"{"type": "array", "items": "null"}"#, 1, &data));
        assert!(e.contains("more than 1048576 values"), "{e}");
        // Arrays of arrays each claiming 2^17 nulls (apache-avro alone would
        // reserve a buffer per inner array): the value budget stops them.
        let mut data = Vec::new();
        write_long(&mut data, 1000);
        for _ in 0..1000 {
            write_long(&mut data, 1 << 17);
            write_long(&mut data, 0);
        }
        let e = decode_err(container(
            r#"{"type": "array", "items": {"type": "array", "items": "null"}}"#,
            1,
            &data,
        ));
        assert!(e.contains("more than 1048576 values"), "{e}");
        // An array claiming 2^20 records of 1000 string fields, then the
        // end of the block: an error at the first missing string.
        let fields: Vec<String> = (0..1000)
            .map(|i| format!(r#"{{"name": "f{i}", "type": "string"}}"#))
            .collect();
        let schema = format!(
            r#"{{"type": "array", "items": {{"type": "record", "name": "W", "fields": [{}]}}}}"#,
            fields.join(", ")
        );
        let mut data = Vec::new();
        write_long(&mut data, 1 << 20);
        let e = decode_err(container(&schema, 1, &data));
        assert!(e.contains("fill whole buffer"), "{e}");
        // A negative count with a huge byte size.
        let mut data = Vec::new();
        write_long(&mut data, -(1 << 62));
        write_long(&mut data, 1 << 62);
        decode_err(container(r#"{"type": "map", "values": "null"}"#, 1, &data));
        // A block size beyond the input, a fixed size beyond the input.
        let mut c = container("\"long\"", 1, &[2]);
        let at = c.len() - 18;
        c[at] = 0x7e; // block size 63
        assert!(decode_err(c).contains("fill whole buffer"));
        let e = decode_err(container(
            r#"{"type": "fixed", "name": "F", "size": 1000000000}"#,
            1,
            &[],
        ));
        assert!(e.contains("claims 1000000000 bytes"), "{e}");
        // A varint that never ends.
        let e = decode_err(container("\"long\"", 1, &[0xff; 11]));
        assert!(e.contains("Overflow"), "{e}");
        // Over the size limit.
        let e = decode_err(vec![0; MAX_AVRO_BYTES + 1]);
        assert!(e.contains("exceeds the limit"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        // A linked list type (one byte per level): a recursive schema is
        // refused before any record is read, however shallow the data.
        let schema = r#"{"type": "record", "name": "L", "fields": [{"name": "next", "type": ["null", "L"]}]}"#;
        let mut data = vec![2u8; 100_000];
        data.push(0);
        let e = decode_err(container(schema, 1, &data));
        assert!(e.contains("contains itself"), "{e}");
        let e = decode_err(container(schema, 1, &[2, 2, 0]));
        assert!(e.contains("contains itself"), "{e}");
        let e = Avro::with_schema(
            AvroValue::from_json(&json!({"next": null})),
            serde_json::from_str(schema).unwrap(),
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("contains itself"), "{e}");
        // Mutual recursion through a union and an array.
        let schema = r#"{"type": "record", "name": "A", "fields": [{"name": "b", "type": {"type": "record", "name": "B", "fields": [{"name": "a", "type": {"type": "array", "items": "A"}}]}}]}"#;
        assert!(decode_err(container(schema, 1, &[0])).contains("contains itself"));
        // A chain of 100 record types, each holding the previous one by
        // name: 100 levels deep.
        let mut types = vec![r#"{"type": "record", "name": "T0", "fields": []}"#.to_string()];
        for i in 1..100 {
            types.push(format!(
                r#"{{"type": "record", "name": "T{i}", "fields": [{{"name": "x", "type": "T{}"}}]}}"#,
                i - 1
            ));
        }
        let e = decode_err(container(&format!("[{}]", types.join(", ")), 1, &[0]));
        assert!(e.contains("deeper than 64"), "{e}");
        // Schema JSON deeper than serde_json's limit (128) does not parse.
        let deep = format!("{}\"long\"{}", "[".repeat(200), "]".repeat(200));
        decode_err(container(&deep, 1, &[0]));
        // Deep schemas and deep content.
        let deep = format!(
            "{}\"long\"{}",
            "{\"type\": \"array\", \"items\": ".repeat(100),
            "}".repeat(100)
        );
        let deep: Value = serde_json::from_str(&deep).unwrap();
        assert!(Avro::with_schema(AvroValue::Null, deep, true).is_err());
        let mut v = AvroValue::Null;
        for _ in 0..10_000 {
            v = AvroValue::Array(vec![v]);
        }
        assert!(Avro::new(v).unwrap_err().to_string().contains("deeper"));
    }

    #[test]
    fn deflate_bombs_are_bounded() {
        use std::io::Write;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; MAX_AVRO_BYTES + 10]).unwrap();
        let block = enc.finish().unwrap();
        let mut c = MAGIC.to_vec();
        write_long(&mut c, 2);
        write_bytes(&mut c, b"avro.schema");
        write_bytes(&mut c, b"\"boolean\"");
        write_bytes(&mut c, b"avro.codec");
        write_bytes(&mut c, b"deflate");
        write_long(&mut c, 0);
        c.extend_from_slice(&[1; 16]);
        write_long(&mut c, 1);
        write_bytes(&mut c, &block);
        c.extend_from_slice(&[1; 16]);
        let e = decode_err(c);
        assert!(e.contains("maximum allowed: 8388608"), "{e}");
    }

    // --- round trip --------------------------------------------------------------

    fn content() -> impl Strategy<Value = AvroValue> {
        let leaf = prop_oneof![
            Just(AvroValue::Null),
            any::<bool>().prop_map(AvroValue::Boolean),
            any::<i64>().prop_map(AvroValue::Long),
            any::<f64>()
                .prop_filter("NaN != NaN", |f| !f.is_nan())
                .prop_map(AvroValue::Double),
            ".{0,8}".prop_map(AvroValue::String),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(AvroValue::Bytes),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(AvroValue::Array),
                proptest::collection::vec(("[a-z_ 1é-]{0,3}", inner), 0..6).prop_map(|kv| {
                    let mut d = DictBuilder::default();
                    for (k, v) in kv {
                        d.insert(k, v);
                    }
                    AvroValue::Map(d.entries)
                }),
            ]
        })
    }

    /// Equal, except where fastavro's union choice writes an integer as a
    /// double (a member `double` caught it first; module docs).
    fn same(written: &AvroValue, read: &AvroValue) -> bool {
        match (written, read) {
            (AvroValue::Long(i), AvroValue::Double(f)) => *i as f64 == *f,
            (AvroValue::Array(a), AvroValue::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (AvroValue::Bytes(a), AvroValue::Array(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| same(&AvroValue::Long(i64::from(*x)), y))
            }
            (AvroValue::Map(a), AvroValue::Map(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|((k, x), (l, y))| k == l && same(x, y))
            }
            (a, b) => a == b,
        }
    }

    proptest! {
        #[test]
        fn round_trips(c in content()) {
            // Unions of several arrays or maps and keys that are not Avro
            // names (as field names of hop's records) included.
            let a = Avro::new(c.clone()).unwrap();
            let back = Avro::deserialize(a.serialize()).unwrap();
            prop_assert!(same(&c, back.content()), "{c:?} read back as {:?}", back.content());
            prop_assert_eq!(back.schema(), a.schema());
        }

        #[test]
        fn round_trips_many(cs in proptest::collection::vec(content(), 0..4)) {
            let a = Avro::many(cs.clone()).unwrap();
            let back = Avro::from_container(a.serialize(), false).unwrap();
            prop_assert!(same(&AvroValue::Array(cs), back.content()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&b);
            let _ = Avro::from_container(Bytes::from(b), false);
            let _ = Avro::from_container(Bytes::from(with_magic), true);
        }
    }
}
