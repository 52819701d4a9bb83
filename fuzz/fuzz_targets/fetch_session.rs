//! The client's fetch session (KIP-227) against a model of the broker's
//! session cache, under arbitrary sequences of wanted partition sets,
//! broker evictions, foreign session ids, errors and resets: never a
//! panic, and whenever the model broker accepts a fetch, the partitions it
//! fetches (its cache after applying the request) are exactly the ones
//! the client wanted, with the same offsets, epochs and sizes. A request
//! the model cannot place (wrong epoch, unknown session) is refused as the
//! broker refuses it, and the client must recover with a full fetch.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use skotch_client::consumer::fetch_session::{FetchPlan, FetchSession, PartitionFetch};
use skotch_client::protocol::error::ErrorCode;
use skotch_client::TopicPartition;

/// The broker's side: one session slot.
#[derive(Default)]
struct Broker {
    /// (id, next expected epoch, cached partitions)
    session: Option<(i32, i32, BTreeMap<TopicPartition, PartitionFetch>)>,
    next_id: i32,
}

impl Broker {
    /// Answer `plan`: (error, session id, what is fetched if accepted).
    fn answer(
        &mut self,
        plan: &FetchPlan,
        create: bool,
    ) -> (ErrorCode, i32, Option<BTreeMap<TopicPartition, PartitionFetch>>) {
        let named: BTreeMap<TopicPartition, PartitionFetch> = plan.to_send.iter().cloned().collect();
        if plan.session_id == 0 {
            assert!(plan.full && plan.forgotten.is_empty());
            if plan.session_epoch == 0 && create {
                self.next_id = self.next_id.wrapping_add(1).max(1);
                self.session = Some((self.next_id, 1, named.clone()));
                return (ErrorCode::NONE, self.next_id, Some(named));
            }
            return (ErrorCode::NONE, 0, Some(named));
        }
        let Some((id, epoch, cache)) = &mut self.session else {
            return (ErrorCode::FETCH_SESSION_ID_NOT_FOUND, 0, None);
        };
        if *id != plan.session_id {
            return (ErrorCode::FETCH_SESSION_ID_NOT_FOUND, 0, None);
        }
        if *epoch != plan.session_epoch {
            return (ErrorCode::INVALID_FETCH_SESSION_EPOCH, 0, None);
        }
        for tp in &plan.forgotten {
            cache.remove(tp);
        }
        for (tp, f) in named {
            cache.insert(tp, f);
        }
        *epoch = if *epoch == i32::MAX { 1 } else { *epoch + 1 };
        (ErrorCode::NONE, *id, Some(cache.clone()))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut client = FetchSession::default();
    let mut broker = Broker::default();
    for chunk in data.chunks(3) {
        let [op, a, b] = *chunk else { return };
        match op % 8 {
            // The broker evicts the session.
            0 => broker.session = None,
            // The client resets (lost connection, new assignment).
            1 => client.reset(),
            // A fetch of some of 6 partitions (bit set `a`), offsets from `b`.
            _ => {
                let wanted: BTreeMap<TopicPartition, PartitionFetch> = (0..6)
                    .filter(|p| a & (1 << p) != 0)
                    .map(|p| {
                        (
                            TopicPartition::new(if p < 3 { "a" } else { "b" }, p),
                            PartitionFetch {
                                fetch_offset: i64::from(b >> (p % 3)),
                                current_leader_epoch: i32::from(b & 1),
                                max_bytes: 1024,
                            },
                        )
                    })
                    .collect();
                let plan = client.plan(wanted.clone());
                // Sometimes the answer is lost (the connection dropped).
                if op % 8 == 7 {
                    client.reset();
                    continue;
                }
                let (code, id, fetched) = broker.answer(&plan, b % 5 != 0);
                let ok = client.on_response(code, id);
                assert_eq!(ok, code == ErrorCode::NONE);
                if let Some(fetched) = fetched {
                    assert_eq!(fetched, wanted, "the broker fetches what the client wanted");
                } else {
                    // Refused: the next fetch is a full one.
                    assert!(client.plan(BTreeMap::new()).full);
                    client.reset();
                }
            }
        }
    }
});
