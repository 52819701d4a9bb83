//! The frame decoder on arbitrary bytes fed in arbitrary chunks: never a
//! panic, never a frame above the limit, and the frames it yields encode
//! back to exactly the bytes it consumed.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use skotch_protocol::frame::{encode_frame, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&params, stream)) = data.split_first() else {
        return;
    };
    // Low nibble: the limit (0-15 bytes x 16); high nibble: the chunk size.
    let max = usize::from(params & 0x0f) * 16;
    let chunk = usize::from(params >> 4) + 1;
    let mut decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut reencoded = Vec::new();
    let mut fed = 0;
    'feed: for c in stream.chunks(chunk) {
        buf.extend_from_slice(c);
        fed += c.len();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max);
                    reencoded.extend_from_slice(&encode_frame(&frame).expect("small frame"));
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let consumed = fed - buf.len();
    assert_eq!(&reencoded[..], &stream[..consumed]);
});
