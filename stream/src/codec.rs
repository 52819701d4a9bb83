//! Codecs: how the [`Engine`](crate::Engine) turns a record's value into
//! the value a handler gets, and a handler's output back into bytes
//! (slipstream's `ICodec`, with `encode`/`decode`).
//!
//! | codec | value | `_format` written | reads |
//! | --- | --- | --- | --- |
//! | [`HopCodec`] (the default) | hop's [`Message`] model | the model's name (`json`, `blob`, ...) | every record, as [`StreamReader::read`](crate::StreamReader::read) does (the `_format` header picks the model; never fails) |
//! | [`JsonCodec<T>`] | any `T: Serialize + DeserializeOwned` | `json` | UTF-8 JSON that deserializes into `T` |
//! | [`AvroCodec<T>`] | any `T: Serialize + DeserializeOwned` matching an Avro schema | `avro` | an Avro object container file (hop's `AvroBlob` wire form) holding one record |
//!
//! A codec sees the record's [`Metadata`] (headers included) when
//! decoding. Decoding runs on the handler's task, once per attempt; a
//! value that does not decode fails the attempt like a handler error (the
//! handler's [`CrashPolicy`](crate::CrashPolicy) decides what happens).

use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::metadata::Metadata;
use crate::models::Message;

/// A value that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec} codec: {message}")]
pub struct CodecError {
    /// The codec's name (`json`, `avro`, ...).
    pub codec: &'static str,
    /// What went wrong.
    pub message: String,
}

impl CodecError {
    /// An error of codec `codec`.
    pub fn new(codec: &'static str, message: impl Into<String>) -> Self {
        Self {
            codec,
            message: message.into(),
        }
    }
}

/// Serializes and deserializes record values (slipstream's `ICodec`).
///
/// Implementations must not panic on any input and should be cheap: they
/// run on the async workers, once per record.
pub trait Codec: Send + Sync + 'static {
    /// The value handlers get and emit.
    type Value: Send + 'static;

    /// The value of a fetched record; `payload` is `None` for a null value
    /// (a tombstone).
    ///
    /// Errors: the bytes are not a valid value for this codec.
    fn decode(
        &self,
        payload: Option<&Bytes>,
        metadata: &Metadata,
    ) -> Result<Self::Value, CodecError>;

    /// The bytes to write for `value`.
    ///
    /// Errors: the value cannot be represented (e.g. it does not match an
    /// Avro schema).
    fn encode(&self, value: &Self::Value) -> Result<Bytes, CodecError>;

    /// The `_format` header written with `value` (hop's model name), so
    /// hop-client readers pick the right model.
    fn format_name<'a>(&'a self, value: &'a Self::Value) -> &'a str;
}

/// hop's message models, as the stream readers and writers use them: the
/// engine's default codec. Decoding never fails (what hop cannot read is
/// a [`Message::Blob`] of the exact bytes, see [`crate::models`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HopCodec;

impl Codec for HopCodec {
    type Value = Message;

    fn decode(&self, payload: Option<&Bytes>, metadata: &Metadata) -> Result<Message, CodecError> {
        let format = crate::headers::format(&metadata.headers);
        Ok(Message::deserialize(format, payload))
    }

    fn encode(&self, value: &Message) -> Result<Bytes, CodecError> {
        Ok(value.serialize())
    }

    fn format_name<'a>(&'a self, value: &'a Message) -> &'a str {
        value.format_name()
    }
}

/// JSON through serde for any `T: Serialize + DeserializeOwned`
/// (slipstream's `JsonCodec`). Writes compact JSON with `_format: json`, so
/// hop-client reads the outputs as `JSONBlob`s.
pub struct JsonCodec<T> {
    _value: PhantomData<fn() -> T>,
}

impl<T> JsonCodec<T> {
    /// The JSON codec for `T`.
    pub fn new() -> Self {
        Self {
            _value: PhantomData,
        }
    }
}

impl<T> Default for JsonCodec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonCodec<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for JsonCodec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonCodec<{}>", std::any::type_name::<T>())
    }
}

impl<T> Codec for JsonCodec<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Value = T;

    fn decode(&self, payload: Option<&Bytes>, _metadata: &Metadata) -> Result<T, CodecError> {
        let bytes = payload.ok_or_else(|| CodecError::new("json", "null value (a tombstone)"))?;
        serde_json::from_slice(bytes).map_err(|e| CodecError::new("json", e.to_string()))
    }

    fn encode(&self, value: &T) -> Result<Bytes, CodecError> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| CodecError::new("json", e.to_string()))
    }

    fn format_name<'a>(&'a self, _value: &'a T) -> &'a str {
        crate::models::JSON_FORMAT
    }
}

/// Avro through serde for any `T: Serialize + DeserializeOwned` that fits
/// `schema` (slipstream's cookbook `AvroCodec`, with the `apache-avro`
/// crate).
///
/// The wire form is hop-client's `AvroBlob`: an Avro object container
/// file (schema in its header, no compression) holding the record, with
/// `_format: avro`. Decoding reads the writer's schema from the container
/// and resolves it to this codec's schema (Avro schema resolution, e.g. a
/// field added with a default); a container holding no record or more
/// than one is an error. Hostile bytes are bounded as for the
/// [`Avro`](crate::Avro) model, whose reader checks a container before
/// this codec decodes it (so a value is decoded twice: safety over speed).
pub struct AvroCodec<T> {
    schema: Arc<apache_avro::Schema>,
    _value: PhantomData<fn() -> T>,
}

impl<T> AvroCodec<T> {
    /// The codec for values of `schema`.
    pub fn new(schema: apache_avro::Schema) -> Self {
        Self {
            schema: Arc::new(schema),
            _value: PhantomData,
        }
    }

    /// The codec for the schema in `json` (Avro's JSON schema form).
    ///
    /// Errors: the schema does not parse.
    pub fn parse(json: &str) -> Result<Self, CodecError> {
        apache_avro::Schema::parse_str(json)
            .map(Self::new)
            .map_err(|e| CodecError::new("avro", format!("schema: {e}")))
    }

    /// The schema values are written with.
    pub fn schema(&self) -> &apache_avro::Schema {
        &self.schema
    }
}

impl<T> Clone for AvroCodec<T> {
    fn clone(&self) -> Self {
        Self {
            schema: self.schema.clone(),
            _value: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for AvroCodec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AvroCodec<{}>", std::any::type_name::<T>())
    }
}

/// Runs `f`, turning a panic inside `apache-avro` into an error: a bad
/// record must fail its attempt, not the process.
fn guarded<R>(what: &str, f: impl FnOnce() -> Result<R, CodecError>) -> Result<R, CodecError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(CodecError::new(
            "avro",
            format!("{what}: the avro library panicked"),
        ))
    })
}

impl<T> Codec for AvroCodec<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Value = T;

    fn decode(&self, payload: Option<&Bytes>, _metadata: &Metadata) -> Result<T, CodecError> {
        let bytes = payload.ok_or_else(|| CodecError::new("avro", "null value (a tombstone)"))?;
        // apache-avro's `types::Value` decoding reserves by claimed
        // lengths (capped per allocation, not in total), so hostile bytes
        // are first read by the model's bounded reader (8 MiB of input,
        // 1 048 576 values, schema depth 64, no recursive schemas; see
        // `models::avro`), which also requires exactly one record. Only a
        // container that passes is resolved to this codec's schema.
        crate::models::Avro::from_container(bytes.clone(), true)
            .map_err(|e| CodecError::new("avro", e.to_string()))?;
        // apache-avro's process-wide allocation cap (see `avro_limits`).
        crate::models::avro::avro_limits();
        guarded("decode", || {
            let err = |e: apache_avro::Error| CodecError::new("avro", e.to_string());
            let mut reader = apache_avro::Reader::builder(Cursor::new(&bytes[..]))
                .reader_schema(&self.schema)
                .build()
                .map_err(err)?;
            let value = match reader.next() {
                Some(v) => v.map_err(err)?,
                None => return Err(CodecError::new("avro", "the container holds no record")),
            };
            if reader.next().is_some() {
                return Err(CodecError::new(
                    "avro",
                    "the container holds more than one record",
                ));
            }
            apache_avro::from_value::<T>(&value).map_err(err)
        })
    }

    fn encode(&self, value: &T) -> Result<Bytes, CodecError> {
        crate::models::avro::avro_limits();
        guarded("encode", || {
            let err = |e: apache_avro::Error| CodecError::new("avro", e.to_string());
            let mut w = apache_avro::Writer::new(&self.schema, Vec::new()).map_err(err)?;
            w.append_ser(value).map_err(err)?;
            w.into_inner().map(Bytes::from).map_err(err)
        })
    }

    fn format_name<'a>(&'a self, _value: &'a T) -> &'a str {
        "avro"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    fn metadata() -> Metadata {
        Metadata {
            topic: Arc::from("t"),
            partition: 0,
            offset: 0,
            timestamp: -1,
            key: None,
            headers: Vec::new(),
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Reading {
        sensor: String,
        value: f64,
        tags: Vec<String>,
        count: Option<i64>,
    }

    #[test]
    fn hop_codec_round_trips_models() {
        let c = HopCodec;
        let m = Message::Json(serde_json::json!({"a": [1, 2]}));
        let bytes = c.encode(&m).unwrap();
        assert_eq!(c.format_name(&m), "json");
        let mut md = metadata();
        md.headers
            .push(("_format".into(), Some(Bytes::from_static(b"json"))));
        assert_eq!(c.decode(Some(&bytes), &md).unwrap(), m);
        // Not JSON under `_format: json`: a Blob, never an error.
        let raw = Bytes::from_static(b"\xff not json");
        assert_eq!(
            c.decode(Some(&raw), &md).unwrap(),
            Message::Blob(raw.clone())
        );
        assert_eq!(c.decode(None, &md).unwrap(), Message::Blob(Bytes::new()));
    }

    #[test]
    fn json_codec_errors_name_the_problem() {
        let c = JsonCodec::<Reading>::new();
        let e = c
            .decode(Some(&Bytes::from_static(b"{\"sensor\": 1}")), &metadata())
            .unwrap_err();
        assert_eq!(e.codec, "json");
        assert!(e.to_string().starts_with("json codec: invalid type"), "{e}");
        let e = c.decode(None, &metadata()).unwrap_err();
        assert!(e.message.contains("tombstone"), "{e}");
        let e = c
            .decode(Some(&Bytes::from_static(b"\xff\xfe")), &metadata())
            .unwrap_err();
        assert_eq!(e.codec, "json");
    }

    const SCHEMA: &str = r#"{"type": "record", "name": "Reading", "fields": [
        {"name": "sensor", "type": "string"},
        {"name": "value", "type": "double"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "count", "type": ["null", "long"], "default": null}
    ]}"#;

    #[test]
    fn avro_codec_round_trips_and_resolves_schemas() {
        let c = AvroCodec::<Reading>::parse(SCHEMA).unwrap();
        let r = Reading {
            sensor: "s1".into(),
            value: 2.5,
            tags: vec!["a".into(), "é".into()],
            count: Some(7),
        };
        let bytes = c.encode(&r).unwrap();
        assert_eq!(&bytes[..4], b"Obj\x01", "an object container file");
        assert_eq!(c.format_name(&r), "avro");
        assert_eq!(c.decode(Some(&bytes), &metadata()).unwrap(), r);

        // Written with an older schema (no `count`): resolved to the
        // codec's schema, `count` takes its default.
        #[derive(Serialize)]
        struct Old {
            sensor: String,
            value: f64,
            tags: Vec<String>,
        }
        let old = AvroCodec::<Reading>::parse(
            r#"{"type": "record", "name": "Reading", "fields": [
                {"name": "sensor", "type": "string"},
                {"name": "value", "type": "double"},
                {"name": "tags", "type": {"type": "array", "items": "string"}}]}"#,
        )
        .unwrap();
        let mut w = apache_avro::Writer::new(old.schema(), Vec::new()).unwrap();
        w.append_ser(Old {
            sensor: "s2".into(),
            value: 1.0,
            tags: vec![],
        })
        .unwrap();
        let bytes = Bytes::from(w.into_inner().unwrap());
        let got = c.decode(Some(&bytes), &metadata()).unwrap();
        assert_eq!(got.count, None);
        assert_eq!(got.sensor, "s2");
    }

    #[test]
    fn avro_codec_rejects_bad_input_without_panicking() {
        let c = AvroCodec::<Reading>::parse(SCHEMA).unwrap();
        let good = c
            .encode(&Reading {
                sensor: "s".into(),
                value: 0.0,
                tags: vec!["x".into(); 3],
                count: None,
            })
            .unwrap();
        for bad in [
            Bytes::new(),
            Bytes::from_static(b"Obj\x01"),
            Bytes::from_static(b"{\"sensor\": \"s\"}"),
            good.slice(..good.len() - 5),
            good.slice(..good.len() / 2),
        ] {
            assert_eq!(c.decode(Some(&bad), &metadata()).unwrap_err().codec, "avro");
        }
        assert!(c.decode(None, &metadata()).is_err());
        // A container with two records.
        let mut w = apache_avro::Writer::new(c.schema(), Vec::new()).unwrap();
        for _ in 0..2 {
            w.append_ser(Reading {
                sensor: "s".into(),
                value: 0.0,
                tags: vec![],
                count: None,
            })
            .unwrap();
        }
        let two = Bytes::from(w.into_inner().unwrap());
        let e = c.decode(Some(&two), &metadata()).unwrap_err();
        assert!(e.message.contains("holds 2"), "{e}");
        // A value that does not fit the schema.
        let wrong = AvroCodec::<Vec<i32>>::new(c.schema().clone());
        assert!(wrong.encode(&vec![1, 2]).is_err());
        assert!(AvroCodec::<Reading>::parse("{not a schema").is_err());
    }

    proptest! {
        #[test]
        fn json_codec_round_trips(
            sensor in ".{0,20}",
            value in -1e12f64..1e12,
            tags in proptest::collection::vec(".{0,8}", 0..5),
            count in proptest::option::of(any::<i64>()),
        ) {
            let c = JsonCodec::<Reading>::new();
            let r = Reading { sensor, value, tags, count };
            let bytes = c.encode(&r).unwrap();
            prop_assert_eq!(c.decode(Some(&bytes), &metadata()).unwrap(), r);
        }

        #[test]
        fn json_codec_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let c = JsonCodec::<Reading>::new();
            let _ = c.decode(Some(&Bytes::from(bytes)), &metadata());
        }
    }
}
