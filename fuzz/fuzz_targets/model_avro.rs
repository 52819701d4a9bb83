//! The Avro decoder (`_format: avro`, hop-client's `AvroBlob`) on arbitrary
//! bytes: object container files with their schema in the header.
//!
//! Input: byte 0 chooses the framing (bit 0: prefix the rest with a valid
//! header, null codec, whose schema is a record of every Avro type with a
//! nested record, union, array and map (not recursive: skotch refuses
//! recursive schemas) and the shapes skotch rewrites for apache-avro (a
//! field name that is not an Avro name, a union of two arrays, two maps
//! and a union), and sync marker 16 × 0, so that mutations reach
//! apache-avro's block and datum decoders sooner; bit 1: read with
//! `single_record` false); the rest is the record value.
//!
//! Never a panic (apache-avro's allocation cap and skotch's value, byte and
//! depth budgets keep memory bounded; libFuzzer's malloc and RSS limits
//! would catch a blow-up), and:
//! - what decodes re-encodes (`serialize`) and reads back with the same
//!   schema and record count (content can change where hop's would: a
//!   union's first fitting branch takes the value);
//! - through `Message::deserialize` the value is an Avro message or a Blob
//!   of the exact bytes, and written with its model's format reads back as
//!   the same message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skotch_stream::{Avro, Message};

const SCHEMA: &str = r#"{"type": "record", "name": "R", "fields": [
{"name": "n", "type": "null"}, {"name": "b", "type": "boolean"},
{"name": "i", "type": "int"}, {"name": "l", "type": "long"},
{"name": "f", "type": "float"}, {"name": "d", "type": "double"},
{"name": "y", "type": "bytes"}, {"name": "s", "type": "string"},
{"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
{"name": "x", "type": {"type": "fixed", "name": "F", "size": 2}},
{"name": "a", "type": {"type": "array", "items": ["null", "long", "string"]}},
{"name": "m", "type": {"type": "map", "values": "double"}},
{"name": "r", "type": ["null", {"type": "record", "name": "S", "fields": [
  {"name": "v", "type": ["long", {"type": "map", "values": {"type": "array", "items": "E"}}]},
  {"name": "w", "type": {"type": "array", "items": {"type": "array", "items": "null"}}}]}]},
{"name": "my key", "type": [{"type": "array", "items": "long"}, {"type": "array", "items": "double"},
  {"type": "map", "values": "string"}, {"type": "map", "values": "E"}, "null", ["null", "S"]],
  "default": []}]}"#;

fn zigzag(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let value = if flags & 1 == 1 {
        let mut v = b"Obj\x01".to_vec();
        zigzag(&mut v, 1);
        zigzag(&mut v, 11);
        v.extend_from_slice(b"avro.schema");
        zigzag(&mut v, SCHEMA.len() as i64);
        v.extend_from_slice(SCHEMA.as_bytes());
        zigzag(&mut v, 0);
        v.extend_from_slice(&[0; 16]);
        v.extend_from_slice(rest);
        Bytes::from(v)
    } else {
        Bytes::copy_from_slice(rest)
    };
    let single = flags & 2 == 0;

    match Avro::from_container(value.clone(), single) {
        Ok(a) => {
            assert_eq!(a.raw(), Some(&value));
            // Content may change as in hop (a union's first fitting branch
            // can turn an int into a double); the schema may not.
            let again = Avro::from_container(a.serialize(), single).expect("own bytes decode");
            assert_eq!(again.schema(), a.schema());
            assert_eq!(again.records().len(), a.records().len());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let message = Message::deserialize(Some(b"avro"), Some(&value));
    match &message {
        Message::Avro(_) => {}
        Message::Blob(b) => assert_eq!(b, &value),
        other => panic!("avro decoded as {other:?}"),
    }
    let again = Message::deserialize(
        Some(message.format_name().as_bytes()),
        Some(&message.serialize()),
    );
    match (&again, &message) {
        (Message::Avro(x), Message::Avro(y)) => assert_eq!(x.schema(), y.schema()),
        _ => assert_eq!(again, message),
    }
});
