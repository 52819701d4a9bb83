//! The GCN circular model (`_format: circular`) on arbitrary bytes: the
//! JSON record value, and the RFC 822-style circular files `hop publish`
//! loads (Python's `email` parser rules).
//!
//! Input: byte 0 chooses the decoder (mod 3: 0 the record value, 1
//! `Circular::load_rfc822` on the text, 2 `Circular::from_file_bytes`);
//! the rest is its input.
//!
//! Never a panic, and:
//! - a decoded circular's record value (Python's `json.dumps` form) is
//!   ASCII and reads back as the same circular, through
//!   `Message::deserialize` too;
//! - a loaded circular's body is no longer than its text, and its printed
//!   form (hop's `str(circular)`) loads again;
//! - through `Message::deserialize` the value is a Circular or a Blob of
//!   the exact bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skotch_stream::{Circular, Message};

fn check(c: &Circular) {
    let wire = c.serialize();
    assert!(wire.is_ascii());
    assert_eq!(&Circular::deserialize(&wire).expect("own bytes decode"), c);
    let m = Message::Circular(c.clone());
    assert_eq!(Message::deserialize(Some(b"circular"), Some(&wire)), m);
    let printed = c.to_rfc822();
    let _ = Circular::load_rfc822(&printed);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let value = Bytes::copy_from_slice(rest);
            match Circular::deserialize(rest) {
                Ok(c) => check(&c),
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    assert_eq!(
                        Message::deserialize(Some(b"circular"), Some(&value)),
                        Message::Blob(value)
                    );
                }
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(c) = Circular::load_rfc822(text) {
                assert!(c.body.len() <= text.len());
                check(&c);
            }
        }
        _ => {
            if let Ok(c) = Circular::from_file_bytes(rest) {
                assert!(c.body.len() <= rest.len());
                check(&c);
            }
        }
    }
});
