//! The Produce request body as chunks: small encoded pieces between the
//! record batches, and the batches themselves as the shared buffers they
//! were built in, so a batch's bytes go from its buffer to the socket
//! without being copied into a request frame (the connection writes the
//! chunks with vectored writes). Byte for byte what the generated
//! `ProduceRequest` encoder writes (versions 3-13, checked by the tests).

use bytes::{BufMut, Bytes, BytesMut};
use skotch_protocol::{EncodeError, Uuid, Writer};

/// One topic's batches in a request.
pub(crate) struct TopicBatches<'a> {
    pub(crate) name: &'a str,
    pub(crate) id: Uuid,
    /// (partition, encoded record batch).
    pub(crate) partitions: Vec<(i32, &'a Bytes)>,
}

/// Encode a Produce request body (no transactional id) at `version`.
pub(crate) fn encode(
    version: i16,
    acks: i16,
    timeout_ms: i32,
    topics: &[TopicBatches<'_>],
) -> Result<Vec<Bytes>, EncodeError> {
    if !(3..=13).contains(&version) {
        return Err(EncodeError::UnsupportedVersion {
            message: "ProduceRequest",
            version,
        });
    }
    let flexible = version >= 9;
    let mut chunks =
        Vec::with_capacity(topics.iter().map(|t| t.partitions.len()).sum::<usize>() * 2 + 1);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_nullable_string(None, flexible, "transactional_id")?;
    buf.put_i16(acks);
    buf.put_i32(timeout_ms);
    buf.put_array_len(Some(topics.len()), flexible, "topic_data")?;
    for t in topics {
        if version <= 12 {
            buf.put_string(t.name, flexible, "name")?;
        } else {
            buf.put_uuid(&t.id);
        }
        buf.put_array_len(Some(t.partitions.len()), flexible, "partition_data")?;
        for (index, records) in &t.partitions {
            buf.put_i32(*index);
            let len = records.len();
            if flexible {
                let n = u32::try_from(len + 1).map_err(|_| EncodeError::TooLong {
                    field: "records",
                    len,
                })?;
                buf.put_uvarint(n);
            } else {
                let n = i32::try_from(len).map_err(|_| EncodeError::TooLong {
                    field: "records",
                    len,
                })?;
                buf.put_i32(n);
            }
            chunks.push(buf.split().freeze());
            chunks.push((*records).clone());
            if flexible {
                buf.put_uvarint(0); // partition tagged fields
            }
        }
        if flexible {
            buf.put_uvarint(0); // topic tagged fields
        }
    }
    if flexible {
        buf.put_uvarint(0); // request tagged fields
    }
    chunks.push(buf.freeze());
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skotch_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use skotch_protocol::messages::{Message, ProduceRequest};

    #[test]
    fn chunks_match_the_generated_encoder_at_every_version() {
        let a = Bytes::from_static(b"batch-a");
        let b = Bytes::from(vec![7u8; 300]);
        let c = Bytes::new();
        let id = Uuid([9; 16]);
        for version in 3..=13 {
            let topics = [
                TopicBatches {
                    name: "t1",
                    id,
                    partitions: vec![(0, &a), (5, &b)],
                },
                TopicBatches {
                    name: "t2",
                    id,
                    partitions: vec![(1, &c)],
                },
            ];
            let chunks = encode(version, -1, 30_000, &topics).unwrap();
            let ours: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            // The batches are chunks of their own, not copies.
            assert!(chunks.iter().any(|ch| ch.as_ptr() == b.as_ptr()));
            let req = ProduceRequest {
                transactional_id: None,
                acks: -1,
                timeout_ms: 30_000,
                topic_data: topics
                    .iter()
                    .map(|t| TopicProduceData {
                        name: t.name.to_string(),
                        topic_id: t.id,
                        partition_data: t
                            .partitions
                            .iter()
                            .map(|(i, r)| PartitionProduceData {
                                index: *i,
                                records: Some((*r).clone()),
                            })
                            .collect(),
                    })
                    .collect(),
            };
            let mut want = BytesMut::new();
            req.encode(&mut want, version).unwrap();
            assert_eq!(ours, &want[..], "version {version}");
        }
        assert!(encode(2, -1, 0, &[]).is_err());
    }
}
