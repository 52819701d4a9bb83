//! Sans-IO Apache Kafka wire protocol: primitive types, framing, request and
//! response headers, messages and record batches. No sockets, no clocks, no
//! async runtime: bytes in, values out, and back.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod error;
pub mod frame;
pub mod messages;
pub mod record;
pub mod sasl;

pub use codec::{DecodeError, DecodeErrorKind, EncodeError, Reader, Uuid, Writer};
