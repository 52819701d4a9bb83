//! Size-prefixed framing: every Kafka request and response is an int32
//! big-endian size followed by that many bytes (protocol guide, "Common
//! Request and Response Structure",
//! <https://kafka.apache.org/protocol#protocol_common>).
//!
//! The decoder checks the size prefix against a maximum as soon as its 4
//! bytes are in, before any of the payload is buffered, so a hostile or
//! corrupt size cannot make us wait for (or allocate) gigabytes. Encoding
//! can reserve the prefix first and patch it once the payload is written,
//! so requests are encoded in place without a copy.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Default maximum frame size: 104857600 bytes (100 MiB), the broker's
/// `socket.request.max.bytes` default. The Java client puts no limit on
/// responses; we bound them with the same figure, which leaves room for the
/// consumer's `fetch.max.bytes` default (52428800 bytes). A consumer
/// configured to fetch more than this per request needs a larger limit.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// Size of the length prefix, in bytes.
pub const FRAME_PREFIX: usize = 4;

/// The most payload the decoder reserves room for in one go when a frame's
/// prefix arrives. Larger frames grow the buffer as their bytes arrive, so
/// a peer cannot make us allocate 100 MiB by sending 4 bytes.
const RESERVE_AHEAD: usize = 1024 * 1024;

/// A frame that cannot be accepted (decoding) or represented (encoding).
/// After a decoding error the byte stream has lost its framing: close the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The size prefix is negative.
    NegativeSize {
        /// The size the prefix announced.
        size: i32,
        /// The configured maximum, in bytes.
        max: usize,
    },
    /// The size prefix is above the maximum.
    TooLarge {
        /// The size the prefix announced (or the payload has), in bytes.
        size: usize,
        /// The maximum, in bytes: the decoder's limit, or `i32::MAX` for
        /// what a prefix can express when encoding.
        max: usize,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NegativeSize { size, max } => write!(
                f,
                "frame size {size} is negative (the limit is {max} bytes)"
            ),
            Self::TooLarge { size, max } => write!(
                f,
                "frame size {size} bytes exceeds the limit of {max} bytes"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits a byte stream into frames. Stateless apart from its limit: all
/// progress lives in the caller's buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max: usize,
}

impl Default for FrameDecoder {
    /// A decoder with [`DEFAULT_MAX_FRAME`].
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder accepting payloads of at most `max_frame_size` bytes (the
    /// prefix not counted). See [`DEFAULT_MAX_FRAME`].
    pub fn new(max_frame_size: usize) -> Self {
        Self {
            max: max_frame_size,
        }
    }

    /// The limit, in bytes.
    pub fn max_frame_size(&self) -> usize {
        self.max
    }

    /// Take the next complete frame's payload off the front of `buf`.
    ///
    /// `Ok(None)`: more bytes are needed (nothing was consumed; read more
    /// into `buf` and call again). `Err`: the size prefix is negative or
    /// above the limit; this is reported as soon as the 4 prefix bytes are
    /// in, whatever follows.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(size) = self.peek_size(buf)? else {
            return Ok(None);
        };
        let total = FRAME_PREFIX + size;
        if buf.len() < total {
            buf.reserve((total - buf.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        buf.advance(FRAME_PREFIX);
        Ok(Some(buf.split_to(size).freeze()))
    }

    /// The checked payload size of the frame at the front of `buf`, or
    /// `None` until its prefix is complete.
    pub fn peek_size(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(&[a, b, c, d]) = buf.get(..FRAME_PREFIX) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([a, b, c, d]);
        let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize {
            size,
            max: self.max,
        })?;
        if size > self.max {
            return Err(FrameError::TooLarge {
                size,
                max: self.max,
            });
        }
        Ok(Some(size))
    }
}

/// `payload` with its size prefix.
pub fn encode_frame(payload: &[u8]) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::with_capacity(FRAME_PREFIX + payload.len());
    let frame = begin_frame(&mut out);
    out.put_slice(payload);
    frame.finish(&mut out)?;
    Ok(out.freeze())
}

/// Start a frame at the end of `out` by reserving its size prefix; write
/// the payload after it, then call [`FrameStart::finish`] to patch the
/// size in. Several frames may be written one after another this way.
pub fn begin_frame(out: &mut BytesMut) -> FrameStart {
    let at = out.len();
    out.put_i32(0);
    FrameStart { at }
}

/// A frame whose size prefix is still to be written; see [`begin_frame`].
#[derive(Debug)]
#[must_use = "the size prefix stays 0 until finish is called"]
pub struct FrameStart {
    at: usize,
}

impl FrameStart {
    /// Where the frame (its prefix) starts in the buffer.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Patch the size prefix to cover everything written after it; returns
    /// the payload size. Errors if the payload exceeds what an int32 size
    /// can say (2 GiB - 1), or if `out` no longer holds the prefix.
    pub fn finish(self, out: &mut BytesMut) -> Result<usize, FrameError> {
        let payload = out.len().saturating_sub(self.at + FRAME_PREFIX);
        let too_large = FrameError::TooLarge {
            size: payload,
            max: i32::MAX as usize,
        };
        let size = i32::try_from(payload).map_err(|_| too_large.clone())?;
        let prefix = out
            .get_mut(self.at..self.at + FRAME_PREFIX)
            .ok_or(too_large)?;
        prefix.copy_from_slice(&size.to_be_bytes());
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn byte_at_a_time() {
        let mut stream = BytesMut::new();
        for p in [&b"hello"[..], b"", b"xy"] {
            stream.extend_from_slice(&encode_frame(p).unwrap());
        }
        let mut d = FrameDecoder::new(16);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in stream.iter() {
            buf.put_u8(*b);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![&b"hello"[..], &b""[..], &b"xy"[..]]);
        assert!(buf.is_empty());
    }

    #[test]
    fn need_more_is_not_an_error_and_consumes_nothing() {
        let mut d = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.put_slice(&[3, b'a']);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 5);
        buf.put_slice(b"bc");
        assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::from_static(b"abc"))));
    }

    #[test]
    fn limits_are_checked_from_the_prefix_alone() {
        let mut d = FrameDecoder::new(4);
        assert_eq!(d.max_frame_size(), 4);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 4, 1, 2, 3, 4][..]);
        assert!(d.decode(&mut buf).unwrap().is_some());
        let mut buf = BytesMut::from(&[0u8, 0, 0, 5][..]);
        let e = d.decode(&mut buf).unwrap_err();
        assert_eq!(e, FrameError::TooLarge { size: 5, max: 4 });
        assert_eq!(
            e.to_string(),
            "frame size 5 bytes exceeds the limit of 4 bytes"
        );
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xfe][..]);
        let e = d.decode(&mut buf).unwrap_err();
        assert_eq!(e, FrameError::NegativeSize { size: -2, max: 4 });
        assert!(e.to_string().contains("-2") && e.to_string().contains('4'));
        // A huge announced size is rejected with only the prefix in, and
        // an accepted large one does not reserve its whole size up front.
        let mut d = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0x7fu8, 0xff, 0xff, 0xff][..]);
        assert!(d.decode(&mut buf).is_err());
        let mut buf = BytesMut::new();
        buf.put_i32(DEFAULT_MAX_FRAME as i32);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(buf.capacity() < 2 * RESERVE_AHEAD);
    }

    #[test]
    fn frames_written_in_place() {
        let mut out = BytesMut::new();
        let f = begin_frame(&mut out);
        out.put_slice(b"abc");
        assert_eq!(f.finish(&mut out), Ok(3));
        let g = begin_frame(&mut out);
        assert_eq!(g.position(), 7);
        assert_eq!(g.finish(&mut out), Ok(0));
        assert_eq!(&out[..], &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0]);
        // The prefix was cut away behind the frame's back.
        let h = begin_frame(&mut out);
        out.truncate(2);
        assert!(h.finish(&mut out).is_err());
    }

    proptest! {
        #[test]
        fn any_split_yields_the_same_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..6),
            chunk in 1usize..20,
        ) {
            let mut stream = BytesMut::new();
            for p in &payloads {
                stream.extend_from_slice(&encode_frame(p).unwrap());
            }
            let mut d = FrameDecoder::new(64);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                buf.extend_from_slice(c);
                while let Some(f) = d.decode(&mut buf).unwrap() {
                    got.push(f.to_vec());
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), max in 0usize..100) {
            let mut d = FrameDecoder::new(max);
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(f)) = d.decode(&mut buf) {
                prop_assert!(f.len() <= max);
            }
        }
    }
}
