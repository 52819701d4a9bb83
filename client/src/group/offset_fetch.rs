//! OffsetFetch in both shapes: one group per request with topics at the top
//! level (v1-7), or a batch of groups (v8+, KIP-709; v10 names topics by
//! id). Used by the group consumer (its partitions' committed offsets) and
//! by the admin tooling (every committed offset of a group). Pure.

use std::collections::BTreeMap;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use skotch_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
use skotch_protocol::Uuid;

use crate::error::{Error, Result};

/// The OffsetFetch request for `group` at `version`: `topics` maps topic
/// names to partitions, `None` asks for every committed offset (v2+).
/// `require_stable` (v7+, KIP-447) waits for pending transactional commits.
pub(crate) fn request(
    group: &str,
    version: i16,
    topics: Option<&BTreeMap<String, Vec<i32>>>,
    require_stable: bool,
) -> OffsetFetchRequest {
    if version >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.to_string(),
                member_id: None,
                member_epoch: -1,
                topics: topics.map(|ts| {
                    ts.iter()
                        .map(|(t, ps)| OffsetFetchRequestTopics {
                            name: t.clone(),
                            partition_indexes: ps.clone(),
                            ..Default::default()
                        })
                        .collect()
                }),
            }],
            require_stable,
            ..Default::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: group.to_string(),
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|(t, ps)| OffsetFetchRequestTopic {
                        name: t.clone(),
                        partition_indexes: ps.clone(),
                    })
                    .collect()
            }),
            require_stable: require_stable && version >= 7,
            ..Default::default()
        }
    }
}

/// A topic as OffsetFetch names it: by name (v1-9) or by id (v10+).
#[derive(Debug, Clone)]
pub(crate) enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// One partition of an OffsetFetch answer, whatever its shape.
#[derive(Debug)]
pub(crate) struct OffsetEntry {
    pub topic: TopicRef,
    pub partition: i32,
    /// The committed offset; -1 for none.
    pub offset: i64,
    /// The commit's metadata string.
    pub metadata: Option<String>,
    pub error_code: i16,
}

/// Flatten an OffsetFetch answer at `version` for `group`, checking the
/// group-level error.
pub(crate) fn entries(
    resp: OffsetFetchResponse,
    version: i16,
    group: &str,
) -> Result<Vec<OffsetEntry>> {
    let context = || format!("fetch the committed offsets of group {group:?}");
    let mut out = Vec::new();
    if version >= 8 {
        let g = resp
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| Error::Broker {
                code: ErrorCode::GROUP_ID_NOT_FOUND,
                message: Some("the OffsetFetch answer does not mention the group".into()),
                context: context(),
            })?;
        Error::check(g.error_code, None, context)?;
        for t in g.topics {
            let topic = if version >= 10 {
                TopicRef::Id(t.topic_id)
            } else {
                TopicRef::Name(t.name)
            };
            for p in t.partitions {
                out.push(OffsetEntry {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    metadata: p.metadata,
                    error_code: p.error_code,
                });
            }
        }
    } else {
        Error::check(resp.error_code, None, context)?;
        for t in resp.topics {
            for p in t.partitions {
                out.push(OffsetEntry {
                    topic: TopicRef::Name(t.name.clone()),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    metadata: p.metadata,
                    error_code: p.error_code,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skotch_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    };

    fn partition(p: i32, offset: i64, error_code: i16) -> OffsetFetchResponsePartitions {
        OffsetFetchResponsePartitions {
            partition_index: p,
            committed_offset: offset,
            error_code,
            ..Default::default()
        }
    }

    #[test]
    fn offset_fetch_answers_of_every_shape() {
        // v1-7: one group, topics at the top level.
        let old = OffsetFetchResponse {
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![OffsetFetchResponsePartition {
                    partition_index: 2,
                    committed_offset: 7,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        let e = entries(old.clone(), 7, "g").unwrap();
        assert!(matches!(&e[0].topic, TopicRef::Name(n) if n == "t"));
        assert_eq!((e[0].partition, e[0].offset), (2, 7));
        let failed = OffsetFetchResponse {
            error_code: ErrorCode::NOT_COORDINATOR.0,
            ..old
        };
        let err = entries(failed, 7, "g").err().unwrap();
        assert_eq!(err.code(), Some(ErrorCode::NOT_COORDINATOR));

        // v8+: per group; v10 names topics by id.
        let id = Uuid([7; 16]);
        let batched = OffsetFetchResponse {
            groups: vec![OffsetFetchResponseGroup {
                group_id: "g".into(),
                topics: vec![OffsetFetchResponseTopics {
                    name: "t".into(),
                    topic_id: id,
                    partitions: vec![partition(0, 3, 0), partition(1, -1, 0)],
                }],
                error_code: 0,
            }],
            ..Default::default()
        };
        let e = entries(batched.clone(), 9, "g").unwrap();
        assert_eq!(e.len(), 2);
        assert!(matches!(&e[0].topic, TopicRef::Name(n) if n == "t"));
        let e = entries(batched.clone(), 10, "g").unwrap();
        assert!(matches!(&e[1].topic, TopicRef::Id(i) if *i == id));
        assert_eq!(e[1].offset, -1);
        // The group must be in the answer, without error.
        assert!(entries(batched.clone(), 9, "other").is_err());
        let mut failed = batched;
        if let Some(g) = failed.groups.first_mut() {
            g.error_code = ErrorCode::GROUP_AUTHORIZATION_FAILED.0;
        }
        let err = entries(failed, 9, "g").err().unwrap();
        assert_eq!(err.code(), Some(ErrorCode::GROUP_AUTHORIZATION_FAILED));
    }

    #[test]
    fn requests_of_both_shapes() {
        let topics = BTreeMap::from([("t".to_string(), vec![0, 1])]);
        let old = request("g", 7, Some(&topics), true);
        assert_eq!(old.group_id, "g");
        assert!(old.require_stable);
        assert_eq!(old.topics.as_ref().map(Vec::len), Some(1));
        assert!(old.groups.is_empty());
        assert!(!request("g", 6, None, true).require_stable);
        let new = request("g", 9, None, true);
        assert_eq!(new.group_id, "");
        assert_eq!(new.groups[0].group_id, "g");
        assert!(new.groups[0].topics.is_none());
    }
}
