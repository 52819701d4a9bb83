//! What the stream layer does with a message from the wire: an arbitrary
//! header list (keys repeated or not, values null or not, standard names
//! `_id`, `_sender`, `_test`, `_format` with any value) and an arbitrary
//! record value.
//!
//! Input: byte 0 flags (bit 0 `_test` on write, bit 1 a `_sender` on
//! write, bit 2 a null value), 16 bytes of message id, a header count
//! byte (mod 16), then per header a key length byte, the key (UTF-8,
//! lossily: the record decoder only lets valid keys through), a value
//! length byte (255 = null) and the value; a sender length byte and the
//! sender when bit 1 is set; the rest is the record value.
//!
//! Never a panic, and:
//! - read side: `is_test`, `message_id`, `sender` and `format` (and the
//!   same through `Metadata`) agree with the first matching header;
//!   `Message::deserialize` (the model chosen by `_format`, with hop's
//!   fallbacks) gives a Blob of the exact value or a JSON document that
//!   survives our hop-compatible `json.dumps` and reads back the same;
//! - write side: the headers as user headers are refused when a key is
//!   reserved (naming the first one), otherwise `with_standard_headers`
//!   keeps them in order and adds standard headers that read back as the
//!   id, sender, test flag and format written; a message written with its
//!   model's format reads back as the same message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skotch_stream::headers::{self, standard, with_standard_headers, HeaderError, Headers};
use skotch_stream::{Message, Metadata};

/// Splits the input as the module docs say.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn string(&mut self) -> Option<String> {
        let n = self.byte()?;
        Some(String::from_utf8_lossy(self.take(usize::from(n))?).into_owned())
    }
}

struct Case {
    test: bool,
    sender: Option<String>,
    id: uuid::Uuid,
    headers: Vec<(String, Option<Bytes>)>,
    value: Option<Bytes>,
}

fn parse(data: &[u8]) -> Option<Case> {
    let mut input = Input { rest: data };
    let flags = input.byte()?;
    let id = uuid::Uuid::from_slice(input.take(16)?).ok()?;
    let count = input.byte()? % 16;
    let mut headers = Vec::new();
    for _ in 0..count {
        let key = input.string()?;
        let value = match input.byte()? {
            255 => None,
            n => Some(Bytes::copy_from_slice(input.take(usize::from(n))?)),
        };
        headers.push((key, value));
    }
    let sender = if flags & 2 != 0 {
        Some(input.string()?)
    } else {
        None
    };
    let value = (flags & 4 == 0).then(|| Bytes::copy_from_slice(input.rest));
    Some(Case {
        test: flags & 1 != 0,
        sender,
        id,
        headers,
        value,
    })
}

fn first<'a>(headers: &'a [(String, Option<Bytes>)], key: &str) -> Option<&'a Option<Bytes>> {
    headers.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn read_side(headers: &[(String, Option<Bytes>)], value: Option<&Bytes>) {
    // The helpers against the first header of each name.
    assert_eq!(
        headers::is_test(headers),
        first(headers, standard::TEST).is_some()
    );
    let id_value = first(headers, standard::ID).and_then(Option::as_ref);
    match headers::message_id(headers) {
        Some(id) => {
            let v = id_value.expect("an id comes from an _id header");
            let raw = v[..] == id.as_bytes()[..];
            let text = std::str::from_utf8(v)
                .ok()
                .and_then(|s| uuid::Uuid::try_parse(s).ok())
                == Some(id);
            assert!(raw || text, "{v:?} is not {id}");
        }
        None => {
            if let Some(v) = id_value {
                assert_ne!(v.len(), 16, "16 bytes are always an id");
            }
        }
    }
    let sender_value = first(headers, standard::SENDER).and_then(Option::as_ref);
    assert_eq!(
        headers::sender(headers),
        sender_value.and_then(|v| std::str::from_utf8(v).ok())
    );
    let format = headers::format(headers);
    assert_eq!(
        format,
        first(headers, standard::FORMAT).and_then(|v| v.as_deref())
    );

    // The same through a reader's Metadata.
    let md = Metadata {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        timestamp: -1,
        key: None,
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.clone()))
            .collect(),
    };
    assert_eq!(md.message_id(), headers::message_id(headers));
    assert_eq!(md.is_test(), headers::is_test(headers));
    assert_eq!(md.sender(), headers::sender(headers));
    assert_eq!(md.format(), format);
    for (k, _) in headers {
        assert_eq!(md.header_entry(k), first(headers, k));
        assert!(md.has_header(k));
        assert_eq!(md.header(k), first(headers, k).and_then(Option::as_ref));
        let all = md.header_all(k).count();
        assert_eq!(all, headers.iter().filter(|(x, _)| x == k).count());
    }

    // The model.
    let message = Message::deserialize(format, value);
    match &message {
        Message::Blob(b) => assert_eq!(b, &value.cloned().unwrap_or_default()),
        Message::Json(_) => {
            let text = message.serialize();
            let again = Message::deserialize(Some(b"json"), Some(&text));
            assert_eq!(again, message, "{:?}", String::from_utf8_lossy(&text));
        }
        _ => {}
    }
    // Written with its model's format, it reads back as itself.
    let again = Message::deserialize(
        Some(message.format_name().as_bytes()),
        Some(&message.serialize()),
    );
    assert_eq!(again, message);
}

fn write_side(case: &Case) {
    // What a writer would send with these as user headers (a null value
    // becomes empty: user headers always have values).
    let user: Headers = case
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
        .collect();
    if let Err(HeaderError::Reserved { key, index }) = user.validate() {
        let first_reserved = case
            .headers
            .iter()
            .position(|(k, _)| k.starts_with('_'))
            .expect("a reserved key was found");
        assert_eq!(index, first_reserved);
        assert_eq!(key, case.headers[index].0);
        return;
    }
    assert!(case.headers.iter().all(|(k, _)| !k.starts_with('_')));
    let message = Message::deserialize(None, case.value.as_ref());
    let format = message.format_name();
    let all = with_standard_headers(&user, case.id, case.sender.as_deref(), case.test, format);
    assert_eq!(&all[..user.len()], &user.0[..]);
    let received: Vec<(String, Option<Bytes>)> =
        all.into_iter().map(|(k, v)| (k, Some(v))).collect();
    assert_eq!(headers::message_id(&received), Some(case.id));
    assert_eq!(headers::is_test(&received), case.test);
    assert_eq!(headers::sender(&received), case.sender.as_deref());
    assert_eq!(headers::format(&received), Some(format.as_bytes()));
    let value = message.serialize();
    read_side(&received, Some(&value));
    assert_eq!(
        Message::deserialize(headers::format(&received), Some(&value)),
        message
    );
}

fuzz_target!(|data: &[u8]| {
    let Some(case) = parse(data) else {
        return;
    };
    read_side(&case.headers, case.value.as_ref());
    write_side(&case);
});
