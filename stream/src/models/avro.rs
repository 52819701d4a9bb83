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
//! it), and the limits below.
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
//!   same as, so order survives both ways).
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
//! - before any record is read, the writer schema is walked (references
//!   followed by name, memoised): it may nest at most [`MAX_DEPTH`] levels
//!   (apache-avro decodes recursively), may not contain itself (a
//!   recursive record; hop's `SchemaGenerator` never writes one), a
//!   `fixed` may not be larger than the input (apache-avro allocates it by
//!   the schema's size), and apache-avro's Rust-specific record attributes
//!   (`org.apache.avro.rust.*`) are refused. The schema's JSON nests at
//!   most 128 levels (serde_json's recursion limit, where apache-avro
//!   parses the header; checked by skotch for a schema given in memory);
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
//! - Names and unions apache-avro refuses, where fastavro accepts them:
//!   record field names must match `[A-Za-z_][A-Za-z0-9_]*` (hop's
//!   inference makes a dict key a field name, e.g. `"my key"`), and a
//!   union may hold at most one array and one map (the Avro specification's
//!   rule; hop's inference writes `[array<double>, array<long>]` for
//!   `[[1.5], [2]]`). Reading such a message gives a
//!   [`Blob`](super::Message::Blob) with a warning (as any value skotch
//!   cannot read as its `_format`); [`Avro::new`] and
//!   [`Avro::with_schema`] refuse such content with a clear error, so a
//!   message skotch builds always serializes.
//! - Recursive schemas are refused (above); fastavro reads them.
//! - Codecs: `null` and `deflate` (fastavro reads `snappy`, `zstandard`,
//!   `bzip2`, `xz` and `lz4` with extra Python packages).
//! - The `big-decimal` logical type is read as bytes and not written.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{DecimalSchema, FixedSchema, InnerDecimalSchema, Name, UuidSchema};
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

/// The deepest JSON nesting of a schema skotch hands to apache-avro
/// (serde_json's recursion limit).
const MAX_SCHEMA_JSON_DEPTH: usize = 128;

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
/// deserializer walks a record).
struct SchemaCheck<'a> {
    names: HashMap<Name, &'a Schema>,
    heights: HashMap<Name, usize>,
    active: HashSet<Name>,
    max_fixed: usize,
}

impl<'a> SchemaCheck<'a> {
    fn run(schema: &'a Schema, max_fixed: usize) -> Result<HashMap<Name, &'a Schema>, DecodeError> {
        let mut c = SchemaCheck {
            names: names_of(schema)?,
            heights: HashMap::new(),
            active: HashSet::new(),
            max_fixed,
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
        let mut h = 0;
        for f in &r.fields {
            h = h.max(self.height(&f.schema, level + 1)?);
        }
        self.active.remove(name);
        self.heights.insert(name.clone(), 1 + h);
        Ok(1 + h)
    }
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

thread_local! {
    /// The budget of the read under way on this thread: apache-avro calls
    /// [`Decoded`]'s `Deserialize` (no state can be passed in), on the
    /// reading thread, inside `Iterator::next`.
    static BUDGET: std::cell::Cell<Budget> =
        const { std::cell::Cell::new(Budget { values: 0, bytes: 0 }) };
}

/// Sets [`BUDGET`] for one read; empties it when dropped.
struct BudgetGuard;

impl BudgetGuard {
    fn new() -> BudgetGuard {
        BUDGET.with(|b| {
            b.set(Budget {
                values: MAX_VALUES,
                bytes: MAX_DECODED_BYTES,
            })
        });
        BudgetGuard
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        BUDGET.with(|b| {
            b.set(Budget {
                values: 0,
                bytes: 0,
            })
        });
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

/// One datum as apache-avro's schema-aware deserializer hands it over
/// (`Reader::into_deser_iter`): records and maps arrive entry by entry in
/// wire order, arrays item by item, so nothing is allocated ahead by a
/// claimed count and every value is paid for from [`BUDGET`] before it is
/// read.
struct Decoded(AvroValue);

impl<'de> serde::Deserialize<'de> for Decoded {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        spend::<D::Error>(1, 0)?;
        d.deserialize_any(DecodedVisitor).map(Decoded)
    }
}

/// A map key or record field name, paid for by its length.
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
        spend::<E>(0, v.len())?;
        Ok(Key(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key, E> {
        spend::<E>(0, v.len())?;
        Ok(Key(v))
    }
}

struct DecodedVisitor;

impl<'de> serde::de::Visitor<'de> for DecodedVisitor {
    type Value = AvroValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an Avro value")
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
        // No reservation by the claimed count (`size_hint`): items are
        // pushed as they are read and paid for.
        let mut items = Vec::new();
        while let Some(Decoded(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(AvroValue::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<AvroValue, A::Error> {
        let mut out = DictBuilder::default();
        while let Some((Key(k), Decoded(v))) = map.next_entry()? {
            out.insert(k, v);
        }
        Ok(AvroValue::Map(out.entries))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<AvroValue, A::Error> {
        use serde::de::VariantAccess;
        let (Key(symbol), variant) = data.variant()?;
        variant.unit_variant()?;
        Ok(AvroValue::String(symbol))
    }
}

/// The header's `avro.schema`, as written (hop's `AvroBlob.schema`).
fn header_schema(buf: &[u8]) -> Result<Value, DecodeError> {
    let meta_schema = Schema::map(Schema::Bytes).build();
    let reader = GenericDatumReader::builder(&meta_schema)
        .build()
        .map_err(|e| apache_err("header: ", e))?;
    let mut rest = buf.get(MAGIC.len()..).unwrap_or_default();
    let meta = reader
        .read_value(&mut rest)
        .map_err(|e| apache_err("header: ", e))?;
    let apache_avro::types::Value::Map(meta) = meta else {
        return Err(avro_err("header metadata is not a map"));
    };
    match meta.get("avro.schema") {
        Some(apache_avro::types::Value::Bytes(b)) => {
            serde_json::from_slice(b).map_err(|e| avro_err(format!("avro.schema is not JSON: {e}")))
        }
        _ => Err(avro_err("header has no avro.schema")),
    }
}

fn read_container(buf: &[u8]) -> Result<(Value, Vec<AvroValue>), DecodeError> {
    if buf.len() > MAX_AVRO_BYTES {
        return Err(avro_err(format!(
            "value of {} bytes exceeds the limit of {MAX_AVRO_BYTES}",
            buf.len()
        )));
    }
    avro_limits();
    // apache-avro reads the header (magic, metadata, codec, schema, sync
    // marker) ...
    let reader = Reader::new(buf).map_err(|e| apache_err("", e))?;
    // ... whose schema skotch checks before any record is read.
    SchemaCheck::run(reader.writer_schema(), buf.len())?;
    let schema_json = header_schema(buf)?;
    let _budget = BudgetGuard::new();
    let mut records = Vec::new();
    for r in reader.into_deser_iter::<Decoded>() {
        records.push(r.map_err(|e| apache_err("", e))?.0);
    }
    Ok((schema_json, records))
}

// --- writing ----------------------------------------------------------------

/// The record type apache-avro writes a map's entries with (below).
const ENTRY_PREFIX: &str = "skotch_map_entry_";

/// The schema skotch has apache-avro encode with: `schema` with every
/// `{"type": "map", "values": T}` replaced by a record holding one field,
/// an array of records `{key: string, value: T}`. The two encode to the
/// same bytes (a block count, then key and value per entry, then 0; a
/// record adds nothing), and an array keeps the entries in order where
/// apache-avro's `Value::Map` (a `HashMap`) would not: skotch writes a
/// dict's entries in order, as fastavro does. (The wrapping record, a named
/// type, keeps a union holding both a map and an array valid.) The
/// container's header holds `schema` itself.
fn maps_as_entries(v: &Value, prefix: &str, n: &mut usize) -> Value {
    let mut recurse = |x: &Value| maps_as_entries(x, prefix, n);
    match v {
        Value::Array(branches) => Value::Array(branches.iter().map(&mut recurse).collect()),
        Value::Object(obj) => {
            let mut out = obj.clone();
            match obj.get("type") {
                Some(Value::String(t)) if t == "map" => {
                    let Some(values) = obj.get("values") else {
                        return v.clone();
                    };
                    let values = recurse(values);
                    let name = format!("{prefix}{n}");
                    *n += 1;
                    let mut key = Map::new();
                    key.insert("name".into(), Value::from("key"));
                    key.insert("type".into(), Value::from("string"));
                    let mut value = Map::new();
                    value.insert("name".into(), Value::from("value"));
                    value.insert("type".into(), values);
                    let mut entry = Map::new();
                    entry.insert("type".into(), Value::from("record"));
                    entry.insert("name".into(), Value::from(name));
                    entry.insert(
                        "fields".into(),
                        Value::Array(vec![Value::Object(key), Value::Object(value)]),
                    );
                    let mut array = Map::new();
                    array.insert("type".into(), Value::from("array"));
                    array.insert("items".into(), Value::Object(entry));
                    let mut entries = Map::new();
                    entries.insert("name".into(), Value::from("entries"));
                    entries.insert("type".into(), Value::Object(array));
                    let mut wrapper = Map::new();
                    wrapper.insert("type".into(), Value::from("record"));
                    wrapper.insert("name".into(), Value::from(format!("{prefix}{n}_map")));
                    wrapper.insert("fields".into(), Value::Array(vec![Value::Object(entries)]));
                    return Value::Object(wrapper);
                }
                Some(Value::String(t)) if t == "array" => {
                    if let Some(items) = obj.get("items") {
                        out.insert("items".into(), recurse(items));
                    }
                }
                Some(Value::String(t)) if t == "record" || t == "error" => {
                    if let Some(Value::Array(fields)) = obj.get("fields") {
                        let fields = fields
                            .iter()
                            .map(|f| match f {
                                Value::Object(f) => {
                                    let mut f = f.clone();
                                    if let Some(t) = f.get("type") {
                                        let t = recurse(t);
                                        f.insert("type".into(), t);
                                    }
                                    Value::Object(f)
                                }
                                other => other.clone(),
                            })
                            .collect();
                        out.insert("fields".into(), Value::Array(fields));
                    }
                }
                Some(t @ (Value::Object(_) | Value::Array(_))) => {
                    out.insert("type".into(), recurse(t));
                }
                _ => {}
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

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
    if !json_nesting_ok(schema_json, MAX_SCHEMA_JSON_DEPTH) {
        return Err(avro_err(format!(
            "invalid schema: nests deeper than {MAX_DEPTH}"
        )));
    }
    let schema = Schema::parse(schema_json).map_err(|e| apache_err("invalid schema: ", e))?;
    let names = SchemaCheck::run(&schema, MAX_AVRO_BYTES)?;

    let mut schema_text = Vec::new();
    write_py_json(&mut schema_text, schema_json);
    let text = String::from_utf8_lossy(&schema_text);
    let prefix = if text.contains(ENTRY_PREFIX) {
        format!("{ENTRY_PREFIX}{}_", uuid::Uuid::new_v4().simple())
    } else {
        ENTRY_PREFIX.to_string()
    };
    let encoding = Schema::parse(&maps_as_entries(schema_json, &prefix, &mut 0))
        .map_err(|e| apache_err("invalid schema: ", e))?;

    // The header: magic, metadata (fastavro's order), sync marker.
    let entry = |k: &str, v: Vec<u8>| {
        AValue::Record(vec![
            ("key".into(), AValue::String(k.into())),
            ("value".into(), AValue::Bytes(v)),
        ])
    };
    let meta = AValue::Array(vec![
        entry("avro.codec", b"null".to_vec()),
        entry("avro.schema", schema_text),
    ]);
    let mut out = MAGIC.to_vec();
    GenericDatumWriter::builder(header_entries_schema()?)
        .build()
        .and_then(|w| w.write_value(&mut out, meta))
        .map_err(|e| apache_err("header: ", e))?;
    out.extend_from_slice(&sync);

    // The blocks: apache-avro's Writer, fastavro's block size.
    let conv = Convert { names: &names };
    let mut w = Writer::builder()
        .schema(&encoding)
        .writer(out)
        .block_size(SYNC_INTERVAL)
        .marker(sync)
        .has_header(true)
        .build()
        .map_err(|e| apache_err("", e))?;
    for r in records {
        let v = conv.value(&schema, r)?;
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

/// hop's content as apache-avro values for a schema, the way fastavro
/// writes Python values (module docs): a union's branch is fastavro's
/// choice, a record's missing field takes its default or null, a map is
/// written as its entries (see [`maps_as_entries`]).
struct Convert<'a> {
    names: &'a HashMap<Name, &'a Schema>,
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

    fn value(&self, s: &'a Schema, v: &AvroValue) -> Result<AValue, DecodeError> {
        let s = self.resolve(s)?;
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
            (Schema::Map(m), AvroValue::Map(entries)) => AValue::Record(vec![(
                "entries".into(),
                AValue::Array(
                    entries
                        .iter()
                        .map(|(k, x)| {
                            Ok(AValue::Record(vec![
                                ("key".into(), AValue::String(k.clone())),
                                ("value".into(), self.value(&m.types, x)?),
                            ]))
                        })
                        .collect::<Result<_, DecodeError>>()?,
                ),
            )]),
            (Schema::Record(r), AvroValue::Map(_)) => {
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    let default;
                    let value = match (v.get(&f.name), &f.default) {
                        (Some(x), _) => x,
                        (None, Some(d)) => {
                            default = AvroValue::from_json(d);
                            &default
                        }
                        (None, None) if null_ok(&f.schema) => &AvroValue::Null,
                        (None, None) => {
                            return Err(avro_err(format!(
                                "no value and no default for field {:?} of {:?}",
                                f.name,
                                r.name.fullname(None)
                            )))
                        }
                    };
                    let coerced;
                    let value = match (&f.schema, value) {
                        (Schema::Float | Schema::Double, AvroValue::String(t)) => {
                            coerced = AvroValue::Double(py_float(t).ok_or_else(|| {
                                avro_err(format!("field {:?}: {t:?} is not a float", f.name))
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
            let b = self.resolve(b)?;
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
                Schema::Record(r) => {
                    let n = r.fields.iter().filter(|f| v.get(&f.name).is_some()).count() as i64;
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
        let s = self.resolve(s)?;
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
            (Schema::Map(m), AvroValue::Map(entries)) => {
                for (_, item) in entries {
                    if !self.validates(&m.types, item)? {
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
                    let default = f.default.as_ref().map(AvroValue::from_json);
                    let item = v
                        .get(&f.name)
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
    fn schemas_apache_avro_refuses_are_clear_errors() {
        // A field name Avro does not allow (hop infers it from a dict key).
        let content = AvroValue::from_json(&json!({"my key": 1, "b": "x"}));
        let e = Avro::new(content).unwrap_err();
        assert!(e.to_string().contains("Invalid field name my key"), "{e}");
        let schema = r#"{"type": "record", "name": "auto_record0", "fields": [{"name": "my key", "type": "long"}, {"name": "b", "type": "string"}]}"#;
        let c = container(schema, 1, &[2, 2, b'x']);
        assert!(decode_err(c.clone()).contains("Invalid field name"));
        let m = Message::deserialize(Some(b"avro"), Some(&Bytes::from(c.clone())));
        assert_eq!(m, Message::Blob(Bytes::from(c)));
        // Two arrays in one union (hop infers it for [[1.5], [2]]).
        let content = AvroValue::from_json(&json!([[1.5], [2]]));
        let e = Avro::new(content).unwrap_err();
        assert!(e.to_string().contains("duplicate types"), "{e}");
        // A map and an array in one union are fine (hop's avro_nested
        // fixture has one), entries in order.
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
                proptest::collection::vec(("[a-z]{1,3}", inner), 0..6).prop_map(|kv| {
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
            let a = Avro::new(c.clone());
            // apache-avro refuses unions of two arrays or two maps, which
            // hop's inference can produce (module docs).
            prop_assume!(!matches!(&a, Err(e) if e.to_string().contains("duplicate types")));
            let a = a.unwrap();
            let back = Avro::deserialize(a.serialize()).unwrap();
            prop_assert!(same(&c, back.content()), "{c:?} read back as {:?}", back.content());
            prop_assert_eq!(back.schema(), a.schema());
        }

        #[test]
        fn round_trips_many(cs in proptest::collection::vec(content(), 0..4)) {
            let a = Avro::many(cs.clone());
            prop_assume!(!matches!(&a, Err(e) if e.to_string().contains("duplicate types")));
            let a = a.unwrap();
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
