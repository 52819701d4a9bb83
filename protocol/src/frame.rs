//! Size-prefixed framing: every Kafka request and response is an int32
//! big-endian length followed by that many bytes (protocol guide, "Common
//! Request and Response Structure").
//!
//! The decoder checks the length prefix against a maximum before buffering
//! anything, so a hostile or corrupt size cannot make us allocate.

use bytes::{Buf, Bytes, BytesMut};

/// Default maximum frame size: 100 MiB, the broker's
/// `socket.request.max.bytes` default.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// A frame that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The size prefix is negative.
    NegativeSize(i32),
    /// The size prefix is above the configured maximum.
    TooLarge {
        /// The size the prefix announced, in bytes.
        size: usize,
        /// The maximum, in bytes.
        max: usize,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NegativeSize(n) => write!(f, "frame size {n} is negative"),
            Self::TooLarge { size, max } => {
                write!(
                    f,
                    "frame of {size} bytes exceeds the maximum of {max} bytes"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits a byte stream into frames.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max` bytes (after the prefix).
    pub fn new(max: usize) -> Self {
        Self { max }
    }

    /// The next complete frame's payload, `Ok(None)` if more bytes are
    /// needed. Consumes the frame from `buf`. After an error the stream is
    /// unusable.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
        if size > self.max {
            return Err(FrameError::TooLarge {
                size,
                max: self.max,
            });
        }
        if buf.len() < 4 + size {
            // Make room once for the whole frame rather than growing in
            // steps; the size is already bounded by `max`.
            buf.reserve(4 + size - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(size).freeze()))
    }
}

/// Prefix `payload` with its size.
pub fn encode_frame(payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_at_a_time() {
        let mut stream = encode_frame(b"hello");
        stream.extend_from_slice(&encode_frame(b""));
        stream.extend_from_slice(&encode_frame(b"xy"));
        let mut d = FrameDecoder::new(16);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in stream.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![&b"hello"[..], &b""[..], &b"xy"[..]]);
        assert!(buf.is_empty());
    }

    #[test]
    fn limits() {
        let mut d = FrameDecoder::new(4);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 5][..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(FrameError::TooLarge { size: 5, max: 4 })
        );
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::NegativeSize(-1)));
        // A huge announced size is rejected before any buffering.
        let mut d = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0x7fu8, 0xff, 0xff, 0xff][..]);
        assert!(d.decode(&mut buf).is_err());
    }
}
