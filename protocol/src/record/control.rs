//! Control records (KIP-98): the single record of a control batch, whose
//! key says what it marks. Brokers write them into partitions as
//! transaction markers; consumers use them to drop aborted records and never
//! hand them to users.
//!
//! Key: `version: int16, type: int16` (type 0 = ABORT, 1 = COMMIT; the
//! KRaft metadata log uses further types). The Java client rejects a key
//! shorter than 4 bytes or with a negative version, and reads newer
//! versions by their first two fields; so do we.

use bytes::{BufMut, Bytes, BytesMut};

use super::Record;
use crate::codec::{DecodeError, DecodeErrorKind, Reader};

/// What a control record marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlRecordType {
    /// The producer's open transaction was aborted (0).
    Abort,
    /// The producer's open transaction was committed (1).
    Commit,
    /// Any other type (2 and up are KRaft metadata-log markers).
    Other(i16),
}

impl ControlRecordType {
    /// From the key's type field.
    pub fn from_id(id: i16) -> Self {
        match id {
            0 => Self::Abort,
            1 => Self::Commit,
            other => Self::Other(other),
        }
    }

    /// The key's type field.
    pub fn id(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
            Self::Other(id) => id,
        }
    }
}

/// A decoded control record key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// Key version (0 today).
    pub version: i16,
    /// What it marks.
    pub kind: ControlRecordType,
}

impl ControlRecord {
    /// Parse a control record's key.
    pub fn decode(key: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(Bytes::copy_from_slice(key.get(..4).unwrap_or(key)));
        let version = r.i16("control_record.version")?;
        if version < 0 {
            return Err(DecodeError::new(
                "control_record.version",
                DecodeErrorKind::InvalidValue(i64::from(version)),
            ));
        }
        let kind = ControlRecordType::from_id(r.i16("control_record.type")?);
        Ok(Self { version, kind })
    }

    /// The control record carried by `record` (its key); a null key is an
    /// error.
    pub fn from_record(record: &Record) -> Result<Self, DecodeError> {
        let key = record.key.as_deref().ok_or_else(|| {
            DecodeError::new("control_record.key", DecodeErrorKind::UnexpectedNull)
        })?;
        Self::decode(key)
    }

    /// The 4-byte key (for tests and broker emulation).
    pub fn encode_key(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(4);
        b.put_i16(self.version);
        b.put_i16(self.kind.id());
        b.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_and_commit() {
        let c = ControlRecord::decode(&[0, 0, 0, 1]).unwrap();
        assert_eq!(
            c,
            ControlRecord {
                version: 0,
                kind: ControlRecordType::Commit
            }
        );
        assert_eq!(
            ControlRecord::decode(&[0, 0, 0, 0]).unwrap().kind,
            ControlRecordType::Abort
        );
        assert_eq!(&c.encode_key()[..], &[0, 0, 0, 1]);
        // Newer versions may append fields: the first two still count.
        let c = ControlRecord::decode(&[0, 1, 0, 5, 9, 9]).unwrap();
        assert_eq!((c.version, c.kind), (1, ControlRecordType::Other(5)));
    }

    #[test]
    fn bad_keys() {
        let e = ControlRecord::decode(&[0, 0, 1]).unwrap_err();
        assert_eq!(e.field, "control_record.type");
        let e = ControlRecord::decode(&[0xff, 0xff, 0, 0]).unwrap_err();
        assert_eq!(e.field, "control_record.version");
        let e = ControlRecord::from_record(&Record::default()).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::UnexpectedNull);
    }
}
