//! The VOEvent decoder (`_format: voevent`) on arbitrary bytes: XML
//! (hop-client's `VOEvent.load` through xmltodict) and the JSON of old
//! hop-client writers, rebuilt into XML.
//!
//! Input: byte 0 chooses the framing (bit 0: wrap the rest in a
//! `<voe:VOEvent ivorn="i">...</voe:VOEvent>` root, so that mutations reach
//! the element mapping sooner); the rest is the record value.
//!
//! Never a panic (the decoder's limits keep memory bounded; libFuzzer's
//! malloc limit would catch a blow-up), and:
//! - what decodes as XML re-publishes byte for byte;
//! - whatever decodes (XML or old JSON) reads back from its own bytes as
//!   the same VOEvent, and the fields' JSON form is an object of hop's
//!   eleven fields;
//! - through `Message::deserialize` the value is a VoEvent or a Blob of
//!   the exact bytes, and written with its model's format reads back as
//!   the same message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skotch_stream::{Message, VoEvent};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let value = if flags & 1 == 1 {
        let mut v = b"<voe:VOEvent ivorn=\"i\">".to_vec();
        v.extend_from_slice(rest);
        v.extend_from_slice(b"</voe:VOEvent>");
        Bytes::from(v)
    } else {
        Bytes::copy_from_slice(rest)
    };

    match VoEvent::deserialize(value.clone()) {
        Ok(v) => {
            if VoEvent::from_xml(value.clone()).is_ok() {
                assert_eq!(v.serialize(), value, "XML re-publishes unchanged");
            }
            let again = VoEvent::deserialize(v.serialize()).expect("own bytes decode");
            assert_eq!(again, v);
            let json = v.to_json();
            assert_eq!(json.as_object().map(|m| m.len()), Some(11));
            assert_eq!(Some(v.ivorn()), json.get("ivorn"));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let message = Message::deserialize(Some(b"voevent"), Some(&value));
    match &message {
        Message::VoEvent(_) => {}
        Message::Blob(b) => assert_eq!(b, &value),
        other => panic!("voevent decoded as {other:?}"),
    }
    let again = Message::deserialize(
        Some(message.format_name().as_bytes()),
        Some(&message.serialize()),
    );
    assert_eq!(again, message);
});
