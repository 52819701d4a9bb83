//! The GCN text notice model (`_format: gcntextnotice`) on arbitrary
//! bytes: hop-client's `GCNTextNotice` field rules (Python's `strip`,
//! `splitlines` and `lower`).
//!
//! Input: the record value.
//!
//! Never a panic, and:
//! - UTF-8 decodes (every text is a notice), anything else is `NotUtf8`;
//! - a notice re-publishes byte for byte and reads back as itself, through
//!   `Message::deserialize` too;
//! - keys are distinct, and the fields hold no more text than the notice
//!   plus the line feeds that join repeated keys and continuation lines.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skotch_stream::{DecodeError, GcnTextNotice, Message};

fuzz_target!(|data: &[u8]| {
    let value = Bytes::copy_from_slice(data);
    match GcnTextNotice::from_text(value.clone()) {
        Ok(n) => {
            assert!(std::str::from_utf8(data).is_ok());
            assert_eq!(n.serialize(), value);
            assert_eq!(GcnTextNotice::deserialize(n.serialize()).unwrap(), n);
            let fields = n.fields();
            let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), fields.len(), "keys are distinct");
            let text: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
            // Lowercasing can grow a key (at most 3x in UTF-8); each line
            // adds at most one joining line feed.
            assert!(text <= 3 * data.len() + data.len() + 1);
            for (k, v) in fields {
                assert_eq!(n.get(k), Some(v.as_str()));
            }
            let m = Message::GcnTextNotice(n);
            assert_eq!(Message::deserialize(Some(b"gcntextnotice"), Some(&value)), m);
        }
        Err(e) => {
            assert!(matches!(e, DecodeError::NotUtf8 { .. }));
            assert!(std::str::from_utf8(data).is_err());
            assert_eq!(
                Message::deserialize(Some(b"gcntextnotice"), Some(&value)),
                Message::Blob(value)
            );
        }
    }
});
