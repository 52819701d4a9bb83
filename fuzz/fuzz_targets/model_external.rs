//! hop's external-message model (`_format: external`) on arbitrary bytes:
//! the record value (`External::deserialize`, strict) and the files
//! `hop publish -f EXTERNAL` loads (`External::load`, other keys allowed).
//!
//! Never a panic, and:
//! - a decoded pointer's record value is ASCII (Python's `json.dumps`) and
//!   reads back as the same pointer, through `Message::deserialize` too;
//! - whatever `deserialize` accepts, `load` accepts with the same URL;
//! - through `Message::deserialize` the value is an External or a Blob of
//!   the exact bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skotch_stream::{External, Message};

fuzz_target!(|data: &[u8]| {
    let value = Bytes::copy_from_slice(data);
    let through_message = Message::deserialize(Some(b"external"), Some(&value));
    match External::deserialize(data) {
        Ok(e) => {
            let wire = e.serialize();
            assert!(wire.is_ascii());
            assert_eq!(External::deserialize(&wire).expect("own bytes decode"), e);
            assert_eq!(External::load(data).expect("load accepts it too"), e);
            assert_eq!(through_message, Message::External(e));
        }
        Err(err) => {
            assert!(!err.to_string().is_empty());
            assert_eq!(through_message, Message::Blob(value));
            if let Ok(e) = External::load(data) {
                assert!(e.url.len() <= data.len());
            }
        }
    }
});
