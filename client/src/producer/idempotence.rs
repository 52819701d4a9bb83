//! The idempotent producer (KIP-98, with KIP-360's epoch bumps): the
//! producer id and epoch, a sequence number per partition, and the rules
//! that decide which of a partition's batches may be sent next and what a
//! failed attempt means. DESIGN.md lists every rule with its source; they
//! are those of the Java client's `TransactionManager`, `TxnPartitionMap`,
//! `RecordAccumulator.drain` and `Sender.completeBatch` for a producer
//! without `transactional.id`, plus one stricter rule (see
//! [`PartitionQueue::start_sequences_at_beginning`]).
//!
//! Pure: no I/O and no clock (time comes in as `now`). The sender owns one
//! [`ProducerState`] and one [`PartitionQueue`] per partition; the same
//! types drive the deterministic tests and the model-broker proptest at
//! the end of this file.
//!
//! Without idempotence the queue still keeps a partition's batches in
//! order and bounds them in flight, but retries may reorder or duplicate,
//! exactly as the Java client does with `enable.idempotence=false`.

use std::collections::VecDeque;
use std::time::Instant;

use skotch_protocol::error::ErrorCode;

/// `baseSequence` of a batch without idempotence.
pub const NO_SEQUENCE: i32 = -1;

/// A producer id and epoch, as InitProducerId returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    /// The producer id; -1 when none was assigned.
    pub producer_id: i64,
    /// The epoch; -1 when none was assigned.
    pub epoch: i16,
}

impl ProducerIdAndEpoch {
    /// No producer id (non-idempotent batches carry this).
    pub const NONE: Self = Self {
        producer_id: -1,
        epoch: -1,
    };

    /// True once InitProducerId has given an id.
    pub fn is_valid(&self) -> bool {
        self.producer_id >= 0
    }
}

/// The producer-wide state: Java's `TransactionManager` for a producer with
/// idempotence and no `transactional.id`.
#[derive(Debug, Clone)]
pub struct ProducerState {
    idempotent: bool,
    current: ProducerIdAndEpoch,
    bump_requested: bool,
    fatal: Option<ErrorCode>,
}

impl ProducerState {
    /// State for a producer with or without idempotence.
    pub fn new(idempotent: bool) -> Self {
        Self {
            idempotent,
            current: ProducerIdAndEpoch::NONE,
            bump_requested: false,
            fatal: None,
        }
    }

    /// `enable.idempotence`, as resolved.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The producer id and epoch new batches get.
    pub fn current(&self) -> ProducerIdAndEpoch {
        self.current
    }

    /// True when the sender must send InitProducerId before any batch can
    /// go: idempotence is on and there is no usable id.
    pub fn needs_producer_id(&self) -> bool {
        self.idempotent && !self.current.is_valid() && self.fatal.is_none()
    }

    /// InitProducerId answered.
    pub fn set_producer_id(&mut self, id: ProducerIdAndEpoch) {
        self.current = id;
    }

    /// A partition found its sequences unusable; the epoch is bumped before
    /// the next drain ([`bump_if_requested`](Self::bump_if_requested)).
    pub fn request_bump(&mut self) {
        self.bump_requested = true;
    }

    /// KIP-360: an idempotent producer bumps its epoch locally (the broker
    /// accepts a higher epoch that starts at sequence 0). At the epoch's
    /// limit the id is dropped and InitProducerId asked again, as Java's
    /// `bumpIdempotentProducerEpoch` does. Returns true if it bumped.
    pub fn bump_if_requested(&mut self) -> bool {
        if !std::mem::take(&mut self.bump_requested) || !self.current.is_valid() {
            return false;
        }
        if self.current.epoch == i16::MAX {
            self.current = ProducerIdAndEpoch::NONE;
        } else {
            self.current.epoch += 1;
        }
        true
    }

    /// The producer can no longer send (PRODUCER_FENCED,
    /// INVALID_PRODUCER_EPOCH, an authorization failure of
    /// InitProducerId): every batch fails with this code.
    pub fn set_fatal(&mut self, code: ErrorCode) {
        self.fatal.get_or_insert(code);
    }

    /// The fatal error, if one happened.
    pub fn fatal(&self) -> Option<ErrorCode> {
        self.fatal
    }
}

/// Where a queued batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// Ready to be sent (first time, or a retry whose backoff is over).
    Waiting,
    /// Not to be sent again before this time (retry backoff).
    Backoff(Instant),
    /// In a request that has not been answered yet.
    InFlight,
}

/// One batch of a partition with its idempotence fields.
#[derive(Debug)]
pub struct SequencedBatch<B> {
    /// What the caller keeps with the batch (records, delivery state).
    pub batch: B,
    /// Caller-chosen identity, to find the batch when its answer comes.
    pub id: u64,
    /// Number of records (sequences advance by this).
    pub records: i32,
    /// Producer id and epoch of its sequence; NONE before the first send.
    pub producer: ProducerIdAndEpoch,
    /// Sequence of its first record; [`NO_SEQUENCE`] before the first send
    /// (and always, without idempotence).
    pub base_sequence: i32,
    /// Attempts that failed so far.
    pub attempts: u32,
    /// Where it stands.
    pub state: BatchState,
    /// When its first record was appended (`delivery.timeout.ms` counts
    /// from here).
    pub created: Instant,
    /// Its sequence was rewritten by an epoch bump (Java's
    /// `sequenceHasBeenReset`).
    pub sequence_reset: bool,
    /// An attempt ended without an answer after the request was written
    /// (timeout, connection lost): the broker may hold the records.
    pub maybe_written: bool,
}

impl<B> SequencedBatch<B> {
    fn has_sequence(&self) -> bool {
        self.base_sequence != NO_SEQUENCE
    }

    /// The sequence of the batch's last record.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.records - 1)
    }
}

/// Sequences wrap to 0 after `i32::MAX` (Java's
/// `DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(sequence: i32, by: i32) -> i32 {
    if sequence > i32::MAX - by {
        by - (i32::MAX - sequence) - 1
    } else {
        sequence + by
    }
}

/// How an attempt to send a batch ended, when it did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The broker answered with an error for this partition.
    /// `log_start_offset` is -1 when the answer did not carry one.
    Broker {
        /// The partition's error code.
        code: ErrorCode,
        /// ProduceResponse's `log_start_offset`.
        log_start_offset: i64,
    },
    /// The request was written but no answer came (request timeout,
    /// connection lost): the broker may or may not have the records.
    Unknown,
    /// The request never left (no connection, no leader): certainly not
    /// written.
    NotSent,
}

impl Failure {
    fn is_retriable(&self) -> bool {
        match self {
            Failure::Broker { code, .. } => code.is_retriable(),
            Failure::Unknown | Failure::NotSent => true,
        }
    }
}

/// A partition's answer in a ProduceResponse: `None` when the batch is
/// written, DUPLICATE_SEQUENCE_NUMBER included (an earlier attempt was
/// written; Java's `Sender.completeBatch` treats it as success), else the
/// failure.
pub fn classify(code: ErrorCode, log_start_offset: i64) -> Option<Failure> {
    if code.is_ok() || code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
        None
    } else {
        Some(Failure::Broker {
            code,
            log_start_offset,
        })
    }
}

/// What the sender must do after a failed attempt.
#[derive(Debug)]
pub enum Verdict<B> {
    /// The batch waits for its backoff and is sent again.
    Retry,
    /// The batch failed; its records get the error.
    Failed(SequencedBatch<B>),
    /// The producer is fenced: this batch and every other fail.
    Fatal(SequencedBatch<B>),
}

/// One partition's batches, oldest first, with its sequence state (Java's
/// `TxnPartitionEntry`). Batches stay here while in flight, so order is
/// kept across retries: a batch leaves only when it succeeds or fails.
#[derive(Debug)]
pub struct PartitionQueue<B> {
    batches: VecDeque<SequencedBatch<B>>,
    /// The producer id and epoch this partition's sequences belong to.
    producer: ProducerIdAndEpoch,
    next_sequence: i32,
    last_acked_sequence: i32,
    in_flight: usize,
    /// A batch that may have been written left without an answer (it
    /// expired); new batches wait until the sequences are known again
    /// (Java's `partitionsWithUnresolvedSequences`).
    unresolved: bool,
    /// The epoch was (or will be) bumped because of this partition: its
    /// sequences restart at 0 once nothing of it is in flight (Java's
    /// `partitionsToRewriteSequences`).
    rewrite: bool,
}

impl<B> Default for PartitionQueue<B> {
    fn default() -> Self {
        Self {
            batches: VecDeque::new(),
            producer: ProducerIdAndEpoch::NONE,
            next_sequence: 0,
            last_acked_sequence: NO_SEQUENCE,
            in_flight: 0,
            unresolved: false,
            rewrite: false,
        }
    }
}

impl<B> PartitionQueue<B> {
    /// Queue a closed batch of `records` records behind the others.
    pub fn push(&mut self, batch: B, id: u64, records: i32, created: Instant) {
        self.batches.push_back(SequencedBatch {
            batch,
            id,
            records,
            producer: ProducerIdAndEpoch::NONE,
            base_sequence: NO_SEQUENCE,
            attempts: 0,
            state: BatchState::Waiting,
            created,
            sequence_reset: false,
            maybe_written: false,
        });
    }

    /// Number of batches queued or in flight.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// True when nothing is queued or in flight.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Batches in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The batches, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &SequencedBatch<B>> {
        self.batches.iter()
    }

    /// The next sequence a new batch would get.
    pub fn next_sequence(&self) -> i32 {
        self.next_sequence
    }

    /// The last sequence the broker acknowledged, or [`NO_SEQUENCE`].
    pub fn last_acked_sequence(&self) -> i32 {
        self.last_acked_sequence
    }

    fn is_next_sequence(&self, sequence: i32) -> bool {
        increment_sequence(self.last_acked_sequence, 1) == sequence
            || (self.last_acked_sequence == NO_SEQUENCE && sequence == 0)
    }

    fn has_sequenced(&self) -> bool {
        self.batches.iter().any(|b| b.has_sequence())
    }

    /// Java's `startSequencesAtBeginning`: batches that already have a
    /// sequence get new ones from 0 under `producer`, in order.
    ///
    /// One rule stricter than Java: a batch that may already be in the
    /// log under its old sequence (an attempt went unanswered) is not
    /// renumbered, since the broker could not recognise the resend as a
    /// duplicate; it is returned to be failed instead, so that an
    /// acknowledged record is never written twice.
    pub fn start_sequences_at_beginning(
        &mut self,
        producer: ProducerIdAndEpoch,
    ) -> Vec<SequencedBatch<B>> {
        debug_assert_eq!(self.in_flight, 0);
        let mut failed = Vec::new();
        let mut kept = VecDeque::with_capacity(self.batches.len());
        let mut sequence = 0;
        for mut b in self.batches.drain(..) {
            if b.has_sequence() {
                if b.maybe_written {
                    failed.push(b);
                    continue;
                }
                b.producer = producer;
                b.base_sequence = sequence;
                b.sequence_reset = true;
                sequence = increment_sequence(sequence, b.records);
            }
            kept.push_back(b);
        }
        self.batches = kept;
        self.producer = producer;
        self.next_sequence = sequence;
        self.last_acked_sequence = NO_SEQUENCE;
        self.unresolved = false;
        self.rewrite = false;
        failed
    }

    /// Before draining: apply a pending rewrite once nothing is in flight.
    /// Returns the batches the rewrite had to fail (see
    /// [`start_sequences_at_beginning`](Self::start_sequences_at_beginning)).
    pub fn maybe_rewrite(&mut self, state: &ProducerState) -> Vec<SequencedBatch<B>> {
        if self.rewrite && self.in_flight == 0 && state.current().is_valid() {
            self.start_sequences_at_beginning(state.current())
        } else {
            Vec::new()
        }
    }

    /// The next batch to send, marked in flight, with its sequence
    /// assigned on its first send (Java assigns it at drain time too). At
    /// most `max_in_flight` batches of the partition are in flight.
    ///
    /// Idempotent rules (Java's `shouldStopDrainBatchesForPartition`):
    /// nothing goes without a producer id; a batch being retried goes only
    /// when it is the oldest unacknowledged one (so a partition recovers
    /// one batch at a time, in order); a new batch waits while the
    /// partition's sequences are unresolved or being rewritten, while
    /// batches of an older epoch are in flight, and (stricter than Java)
    /// while any batch is being retried or, until the partition has
    /// acknowledged one batch of this producer id and epoch, while one is
    /// in flight.
    pub fn next_to_send(
        &mut self,
        state: &ProducerState,
        now: Instant,
        max_in_flight: usize,
    ) -> Option<&mut SequencedBatch<B>> {
        if self.in_flight >= max_in_flight || state.fatal().is_some() {
            return None;
        }
        let index = self
            .batches
            .iter()
            .position(|b| b.state != BatchState::InFlight)?;
        match self.batches[index].state {
            BatchState::Backoff(t) if now < t => return None,
            _ => {}
        }
        if state.is_idempotent() {
            let current = state.current();
            if !current.is_valid() || self.rewrite {
                return None;
            }
            if self.batches[index].has_sequence() {
                if index != 0 {
                    return None;
                }
            } else {
                // A new batch waits while an older one is being retried:
                // the broker recognises a resend as a duplicate only among
                // the last 5 batches it wrote (its producer state cache,
                // sized for max.in.flight = 5), so no more may be written
                // behind a batch whose first attempt may have landed.
                if self.unresolved
                    || self
                        .batches
                        .iter()
                        .any(|b| b.has_sequence() && b.attempts > 0)
                {
                    return None;
                }
                // Until the partition has acknowledged a batch of this
                // producer id and epoch, one batch at a time: a broker
                // that does not know the producer accepts any first
                // sequence (KIP-360), so a second batch could be written
                // ahead of a first one that was refused (a leader not yet
                // ready, a leader that died before replicating it).
                if self.in_flight > 0
                    && (self.last_acked_sequence == NO_SEQUENCE || self.producer != current)
                {
                    return None;
                }
                if self.producer != current {
                    if self.in_flight > 0 || self.has_sequenced() {
                        return None;
                    }
                    // Java's maybeUpdateProducerIdAndEpoch: a new id or
                    // epoch starts the partition's sequences at 0.
                    self.producer = current;
                    self.next_sequence = 0;
                    self.last_acked_sequence = NO_SEQUENCE;
                }
                let next = self.next_sequence;
                let b = &mut self.batches[index];
                b.producer = current;
                b.base_sequence = next;
                self.next_sequence = increment_sequence(next, b.records);
            }
        }
        self.in_flight += 1;
        let b = &mut self.batches[index];
        b.state = BatchState::InFlight;
        Some(b)
    }

    /// When a batch in backoff becomes sendable, if one is what the queue
    /// waits for.
    pub fn next_retry(&self) -> Option<Instant> {
        match self
            .batches
            .iter()
            .find(|b| b.state != BatchState::InFlight)?
            .state
        {
            BatchState::Backoff(t) => Some(t),
            _ => None,
        }
    }

    /// Batch `id`, to put its bytes back after an attempt.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut SequencedBatch<B>> {
        self.batches.iter_mut().find(|b| b.id == id)
    }

    fn index_of(&self, id: u64) -> Option<usize> {
        self.batches.iter().position(|b| b.id == id)
    }

    fn take(&mut self, index: usize) -> Option<SequencedBatch<B>> {
        let b = self.batches.remove(index)?;
        if b.state == BatchState::InFlight {
            self.in_flight -= 1;
        }
        Some(b)
    }

    /// The broker has batch `id` (NONE, or DUPLICATE_SEQUENCE_NUMBER: an
    /// earlier attempt was written). Returns it for its records to be
    /// settled; `None` if it is not here (already settled).
    pub fn on_success(&mut self, id: u64) -> Option<SequencedBatch<B>> {
        let i = self.index_of(id)?;
        let b = self.take(i)?;
        // Java's updateLastAckedSequence: only for the current sequences.
        if b.has_sequence() && b.producer == self.producer {
            // The broker's sequence check acknowledges a partition's
            // batches in order, so the last one answered is the highest.
            self.last_acked_sequence = b.last_sequence();
        }
        Some(b)
    }

    /// Batch `id` failed an attempt. `retry_at` is when it may go again;
    /// `can_retry` is false once `delivery.timeout.ms` (or `retries`) is
    /// used up. Returns what to do; a request for an epoch bump is made
    /// on `state`.
    pub fn on_failure(
        &mut self,
        id: u64,
        failure: Failure,
        retry_at: Instant,
        can_retry: bool,
        state: &mut ProducerState,
    ) -> Option<Verdict<B>> {
        let i = self.index_of(id)?;
        if self.batches[i].state == BatchState::InFlight {
            self.in_flight -= 1;
        }
        let b = &mut self.batches[i];
        b.attempts = b.attempts.saturating_add(1);
        b.state = BatchState::Backoff(retry_at);
        match failure {
            Failure::Unknown => b.maybe_written = true,
            // The broker's sequence check says this attempt is not in the
            // log; nor then is an earlier one of the same sequence.
            Failure::Broker { code, .. }
                if code == ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
                    || code == ErrorCode::UNKNOWN_PRODUCER_ID =>
            {
                b.maybe_written = false
            }
            _ => {}
        }
        if !state.is_idempotent() || !b.has_sequence() {
            return Some(if can_retry && failure.is_retriable() {
                Verdict::Retry
            } else {
                Verdict::Failed(self.take(i)?)
            });
        }
        let (base_sequence, sequence_reset) = (b.base_sequence, b.sequence_reset);
        if let Failure::Broker { code, .. } = failure {
            if code == ErrorCode::PRODUCER_FENCED || code == ErrorCode::INVALID_PRODUCER_EPOCH {
                // Java's Sender maps INVALID_PRODUCER_EPOCH on produce to
                // ProducerFencedException: fatal.
                state.set_fatal(code);
                return Some(Verdict::Fatal(self.take(i)?));
            }
        }
        let retry = match failure {
            // Java's TransactionManager.canRetry, idempotent branch.
            Failure::Broker {
                code,
                log_start_offset,
            } if code == ErrorCode::UNKNOWN_PRODUCER_ID => {
                // Without a log start offset the partition was moving:
                // retry as is. A batch renumbered by a bump gets the same
                // error as the batch that caused the bump: no second bump.
                if log_start_offset != -1 && !sequence_reset {
                    self.rewrite = true;
                    state.request_bump();
                }
                true
            }
            Failure::Broker { code, .. } if code == ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER => {
                let next = self.is_next_sequence(base_sequence);
                if !self.unresolved && (sequence_reset || !next) {
                    // Not the next batch: an earlier one failed and is
                    // being retried; this one follows it.
                } else {
                    // The broker misses sequences the producer thought it
                    // had (e.g. lost with an unclean leader change): start
                    // over with a new epoch.
                    self.rewrite = true;
                    state.request_bump();
                }
                true
            }
            other => other.is_retriable(),
        };
        if retry && can_retry {
            return Some(Verdict::Retry);
        }
        // Java's handleFailedBatch(adjustSequenceNumbers): the batches
        // behind this one carry sequences after a gap; renumber them under
        // a new epoch.
        let failed = self.take(i)?;
        if self.has_sequenced()
            || self.next_sequence != increment_sequence(failed.last_sequence(), 1)
        {
            self.rewrite = true;
            state.request_bump();
        } else if failed.maybe_written {
            self.unresolved = true;
        } else {
            // The failed batch was the last one sent: later batches just
            // reuse its sequences.
            self.next_sequence = failed.base_sequence;
        }
        Some(Verdict::Failed(failed))
    }

    /// Remove the batches that are not in flight and have waited longer
    /// than `timeout` since they were created (`delivery.timeout.ms`).
    /// A batch that was sent before (it was waiting to be retried) leaves
    /// the partition's sequences unresolved (Java's
    /// `markSequenceUnresolved`).
    pub fn expire(&mut self, now: Instant, timeout: std::time::Duration) -> Vec<SequencedBatch<B>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.batches.len() {
            let b = &self.batches[i];
            if b.state != BatchState::InFlight
                && now.saturating_duration_since(b.created) >= timeout
            {
                if let Some(b) = self.take(i) {
                    if b.has_sequence() {
                        self.unresolved = true;
                    }
                    out.push(b);
                }
            } else {
                i += 1;
            }
        }
        out
    }

    /// Java's `maybeResolveSequences`: once nothing with a sequence is
    /// left, unresolved sequences are either fine (every sequence up to
    /// the next one was acknowledged: the expired batch was written after
    /// all) or need a new epoch.
    pub fn maybe_resolve(&mut self, state: &mut ProducerState) {
        if !self.unresolved || self.has_sequenced() {
            return;
        }
        self.unresolved = false;
        if !self.is_next_sequence(self.next_sequence) {
            self.rewrite = true;
            state.request_bump();
        }
    }

    /// Take every batch out (the producer is fenced, or closing after a
    /// fatal error).
    pub fn drain_all(&mut self) -> Vec<SequencedBatch<B>> {
        self.in_flight = 0;
        self.batches.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PID: ProducerIdAndEpoch = ProducerIdAndEpoch {
        producer_id: 7,
        epoch: 0,
    };

    fn state() -> ProducerState {
        let mut s = ProducerState::new(true);
        s.set_producer_id(PID);
        s
    }

    fn broker(code: ErrorCode) -> Failure {
        Failure::Broker {
            code,
            log_start_offset: 0,
        }
    }

    /// Queue with `n` batches of 10 records, ids 0..n, of a partition
    /// that knows the producer (sequences up to the wrap point were
    /// acknowledged, so the next is 0), so several may be in flight.
    fn queue(n: u64, t0: Instant) -> PartitionQueue<()> {
        let mut q = PartitionQueue {
            producer: PID,
            last_acked_sequence: i32::MAX,
            ..Default::default()
        };
        for id in 0..n {
            q.push((), id, 10, t0);
        }
        q
    }

    fn send(q: &mut PartitionQueue<()>, s: &ProducerState, now: Instant) -> Option<(u64, i32)> {
        q.next_to_send(s, now, 5).map(|b| (b.id, b.base_sequence))
    }

    #[test]
    fn sequences_advance_by_record_count_and_wait_for_a_producer_id() {
        let t0 = Instant::now();
        let mut s = ProducerState::new(true);
        let mut q = PartitionQueue::default();
        for id in 0..3 {
            q.push((), id, 10, t0);
        }
        assert!(s.needs_producer_id());
        assert_eq!(send(&mut q, &s, t0), None);
        s.set_producer_id(PID);
        assert_eq!(send(&mut q, &s, t0), Some((0, 0)));
        // The partition does not know the producer yet: one at a time.
        assert_eq!(send(&mut q, &s, t0), None);
        assert_eq!(q.on_success(0).unwrap().base_sequence, 0);
        assert_eq!(q.last_acked_sequence(), 9);
        assert_eq!(send(&mut q, &s, t0), Some((1, 10)));
        assert_eq!(send(&mut q, &s, t0), Some((2, 20)));
        assert_eq!(q.next_sequence(), 30);
    }

    #[test]
    fn at_most_max_in_flight() {
        let t0 = Instant::now();
        let s = state();
        let mut q = queue(7, t0);
        for _ in 0..5 {
            assert!(send(&mut q, &s, t0).is_some());
        }
        assert_eq!(send(&mut q, &s, t0), None);
        q.on_success(0);
        assert_eq!(send(&mut q, &s, t0), Some((5, 50)));
    }

    #[test]
    fn a_retry_goes_only_as_the_oldest_batch_and_keeps_its_sequence() {
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(3, t0);
        for _ in 0..3 {
            send(&mut q, &s, t0);
        }
        // Batch 0 lost its connection; 1 and 2 come back out of order.
        assert!(matches!(
            q.on_failure(0, Failure::Unknown, t0, true, &mut s),
            Some(Verdict::Retry)
        ));
        for id in [1, 2] {
            let v = q.on_failure(
                id,
                broker(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
                t0,
                true,
                &mut s,
            );
            assert!(matches!(v, Some(Verdict::Retry)));
        }
        assert!(!s.bump_if_requested(), "not the next sequence: no bump");
        assert_eq!(send(&mut q, &s, t0), Some((0, 0)));
        // 1 waits until 0 is answered.
        assert_eq!(send(&mut q, &s, t0), None);
        q.on_success(0);
        assert_eq!(send(&mut q, &s, t0), Some((1, 10)));
        assert_eq!(send(&mut q, &s, t0), None);
        q.on_success(1);
        assert_eq!(send(&mut q, &s, t0), Some((2, 20)));
    }

    #[test]
    fn backoff_is_respected() {
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(1, t0);
        send(&mut q, &s, t0);
        let later = t0 + Duration::from_millis(100);
        q.on_failure(
            0,
            broker(ErrorCode::NOT_LEADER_OR_FOLLOWER),
            later,
            true,
            &mut s,
        );
        assert_eq!(q.next_retry(), Some(later));
        assert_eq!(send(&mut q, &s, t0), None);
        assert_eq!(send(&mut q, &s, later), Some((0, 0)));
    }

    #[test]
    fn out_of_order_at_the_next_sequence_bumps_the_epoch_and_renumbers() {
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(3, t0);
        send(&mut q, &s, t0);
        q.on_success(0);
        send(&mut q, &s, t0);
        send(&mut q, &s, t0);
        // Batch 1 (sequence 10) is the next one, yet out of order: the
        // broker lost sequences.
        let v = q.on_failure(
            1,
            broker(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
            t0,
            true,
            &mut s,
        );
        assert!(matches!(v, Some(Verdict::Retry)));
        assert!(s.bump_if_requested());
        assert_eq!(s.current().epoch, 1);
        // Nothing goes while 2 is in flight under the old epoch.
        assert!(q.maybe_rewrite(&s).is_empty());
        assert_eq!(send(&mut q, &s, t0), None);
        q.on_failure(
            2,
            broker(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
            t0,
            true,
            &mut s,
        );
        assert!(q.maybe_rewrite(&s).is_empty());
        let b = q.next_to_send(&s, t0, 5).unwrap();
        assert_eq!((b.id, b.base_sequence, b.producer.epoch), (1, 0, 1));
        assert!(b.sequence_reset);
        q.on_success(1);
        let b = q.next_to_send(&s, t0, 5).unwrap();
        assert_eq!((b.id, b.base_sequence), (2, 10));
    }

    #[test]
    fn unknown_producer_id_bumps_unless_the_partition_was_moving() {
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(1, t0);
        send(&mut q, &s, t0);
        q.on_failure(
            0,
            Failure::Broker {
                code: ErrorCode::UNKNOWN_PRODUCER_ID,
                log_start_offset: -1,
            },
            t0,
            true,
            &mut s,
        );
        assert!(!s.bump_if_requested());
        send(&mut q, &s, t0);
        q.on_failure(0, broker(ErrorCode::UNKNOWN_PRODUCER_ID), t0, true, &mut s);
        assert!(s.bump_if_requested());
        assert!(q.maybe_rewrite(&s).is_empty());
        let b = q.next_to_send(&s, t0, 5).unwrap();
        assert_eq!((b.base_sequence, b.producer.epoch), (0, 1));
        // The renumbered batch gets the same error: retried, no new bump.
        q.on_failure(0, broker(ErrorCode::UNKNOWN_PRODUCER_ID), t0, true, &mut s);
        assert!(!s.bump_if_requested());
    }

    #[test]
    fn fenced_is_fatal() {
        for code in [
            ErrorCode::PRODUCER_FENCED,
            ErrorCode::INVALID_PRODUCER_EPOCH,
        ] {
            let t0 = Instant::now();
            let mut s = state();
            let mut q = queue(2, t0);
            send(&mut q, &s, t0);
            let v = q.on_failure(0, broker(code), t0, true, &mut s);
            assert!(matches!(v, Some(Verdict::Fatal(_))));
            assert_eq!(s.fatal(), Some(code));
            assert_eq!(send(&mut q, &s, t0), None);
            assert!(!s.needs_producer_id());
            assert_eq!(q.drain_all().len(), 1);
        }
    }

    #[test]
    fn a_fatal_broker_error_fails_the_batch_and_renumbers_the_rest() {
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(2, t0);
        send(&mut q, &s, t0);
        send(&mut q, &s, t0);
        let v = q.on_failure(0, broker(ErrorCode::MESSAGE_TOO_LARGE), t0, true, &mut s);
        assert!(matches!(v, Some(Verdict::Failed(_))));
        assert!(s.bump_if_requested());
        q.on_failure(
            1,
            broker(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
            t0,
            true,
            &mut s,
        );
        assert!(q.maybe_rewrite(&s).is_empty());
        assert_eq!(send(&mut q, &s, t0), Some((1, 0)));
    }

    #[test]
    fn the_last_batch_failing_frees_its_sequences() {
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(1, t0);
        send(&mut q, &s, t0);
        q.on_failure(0, broker(ErrorCode::INVALID_RECORD), t0, true, &mut s);
        assert!(!s.bump_if_requested());
        q.push((), 1, 10, t0);
        assert_eq!(send(&mut q, &s, t0), Some((1, 0)));
    }

    #[test]
    fn out_of_time_after_an_unknown_outcome_leaves_sequences_unresolved() {
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(1, t0);
        send(&mut q, &s, t0);
        // Timed out, and delivery.timeout.ms is used up.
        let v = q.on_failure(0, Failure::Unknown, t0, false, &mut s);
        assert!(matches!(v, Some(Verdict::Failed(_))));
        q.push((), 1, 10, t0);
        q.maybe_resolve(&mut s);
        // Sequence 0..9 may or may not be in the log: new epoch.
        assert!(s.bump_if_requested());
        assert!(q.maybe_rewrite(&s).is_empty());
        let b = q.next_to_send(&s, t0, 5).unwrap();
        assert_eq!((b.id, b.base_sequence, b.producer.epoch), (1, 0, 1));
    }

    #[test]
    fn expired_retry_is_resolved_by_later_success() {
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(2, t0);
        send(&mut q, &s, t0);
        send(&mut q, &s, t0);
        q.on_failure(0, Failure::Unknown, t0, true, &mut s);
        let expired = q.expire(t0 + Duration::from_secs(1), Duration::from_secs(1));
        assert_eq!(expired.len(), 1);
        q.push((), 2, 10, t0 + Duration::from_secs(1));
        // Batch 1 still in flight: batch 2 waits.
        assert_eq!(send(&mut q, &s, t0), None);
        // Batch 1 succeeds: so 0 was written too.
        q.on_success(1);
        q.maybe_resolve(&mut s);
        assert!(!s.bump_if_requested());
        assert_eq!(send(&mut q, &s, t0), Some((2, 20)));
    }

    #[test]
    fn a_maybe_written_batch_is_failed_rather_than_renumbered() {
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(2, t0);
        send(&mut q, &s, t0);
        send(&mut q, &s, t0);
        // 0 fails for good; 1's answer was lost.
        q.on_failure(0, broker(ErrorCode::MESSAGE_TOO_LARGE), t0, true, &mut s);
        q.on_failure(1, Failure::Unknown, t0, true, &mut s);
        assert!(s.bump_if_requested());
        let failed = q.maybe_rewrite(&s);
        assert_eq!(failed.iter().map(|b| b.id).collect::<Vec<_>>(), vec![1]);
        assert!(q.is_empty());
    }

    #[test]
    fn epoch_exhaustion_asks_for_a_new_id_and_other_partitions_restart() {
        let t0 = Instant::now();
        let mut s = ProducerState::new(true);
        s.set_producer_id(ProducerIdAndEpoch {
            producer_id: 7,
            epoch: i16::MAX,
        });
        let mut q = queue(2, t0);
        send(&mut q, &s, t0);
        q.on_success(0);
        s.request_bump();
        assert!(s.bump_if_requested());
        assert!(s.needs_producer_id());
        assert_eq!(send(&mut q, &s, t0), None);
        s.set_producer_id(ProducerIdAndEpoch {
            producer_id: 8,
            epoch: 0,
        });
        let b = q.next_to_send(&s, t0, 5).unwrap();
        assert_eq!((b.producer.producer_id, b.base_sequence), (8, 0));
    }

    #[test]
    fn without_idempotence_batches_have_no_sequence() {
        let t0 = Instant::now();
        let mut s = ProducerState::new(false);
        let mut q = queue(2, t0);
        assert_eq!(send(&mut q, &s, t0), Some((0, NO_SEQUENCE)));
        assert_eq!(send(&mut q, &s, t0), Some((1, NO_SEQUENCE)));
        assert!(matches!(
            q.on_failure(0, Failure::Unknown, t0, true, &mut s),
            Some(Verdict::Retry)
        ));
        assert!(matches!(
            q.on_failure(1, broker(ErrorCode::CORRUPT_MESSAGE), t0, true, &mut s),
            Some(Verdict::Retry)
        ));
        assert!(matches!(
            q.on_failure(0, Failure::Unknown, t0, false, &mut s),
            Some(Verdict::Failed(_))
        ));
    }

    #[test]
    fn duplicate_sequence_is_success() {
        assert_eq!(classify(ErrorCode::NONE, 0), None);
        assert_eq!(classify(ErrorCode::DUPLICATE_SEQUENCE_NUMBER, 0), None);
        assert_eq!(
            classify(ErrorCode::NOT_LEADER_OR_FOLLOWER, -1),
            Some(Failure::Broker {
                code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
                log_start_offset: -1
            })
        );
        // A retriable error the broker gives while a partition moves:
        // retried with the same sequence, no epoch bump.
        let t0 = Instant::now();
        let mut s = state();
        let mut q = queue(1, t0);
        send(&mut q, &s, t0);
        for code in [
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ErrorCode::NOT_ENOUGH_REPLICAS,
            ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            ErrorCode::REQUEST_TIMED_OUT,
        ] {
            let v = q.on_failure(0, classify(code, -1).unwrap(), t0, true, &mut s);
            assert!(matches!(v, Some(Verdict::Retry)), "{code:?}");
            assert_eq!(send(&mut q, &s, t0), Some((0, 0)));
        }
        assert!(!s.bump_if_requested());
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 3), 8);
    }

    // ---- model broker ----

    /// A partition leader applying Kafka's producer state checks
    /// (`ProducerAppendInfo.checkSequence`, the 5-batch duplicate cache).
    #[derive(Default)]
    struct ModelBroker {
        epoch: Option<i16>,
        last_seq: i32,
        /// (first seq, last seq) of the last 5 batches of this epoch.
        cache: VecDeque<(i32, i32)>,
        log: Vec<u64>,
    }

    impl ModelBroker {
        fn append(&mut self, epoch: i16, seq: i32, records: &[u64]) -> ErrorCode {
            let last = increment_sequence(seq, records.len() as i32 - 1);
            match self.epoch {
                Some(e) if epoch < e => return ErrorCode::INVALID_PRODUCER_EPOCH,
                Some(e) if epoch == e => {
                    if self.cache.contains(&(seq, last)) {
                        return ErrorCode::DUPLICATE_SEQUENCE_NUMBER;
                    }
                    if seq != increment_sequence(self.last_seq, 1) {
                        return ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER;
                    }
                }
                // A producer the partition has never seen may start at any
                // sequence (KIP-360); a new epoch must start at 0.
                known => {
                    if known.is_some() && seq != 0 {
                        return ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER;
                    }
                    self.epoch = Some(epoch);
                    self.cache.clear();
                }
            }
            self.last_seq = last;
            self.cache.push_back((seq, last));
            if self.cache.len() > 5 {
                self.cache.pop_front();
            }
            self.log.extend_from_slice(records);
            ErrorCode::NONE
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        Append,
        Send,
        /// The broker handles the oldest request on the wire.
        Process,
        /// The oldest request is lost before the broker sees it.
        Drop,
        /// The oldest request is processed but its answer is lost.
        LoseAnswer,
        /// The leader refuses the oldest request (NOT_LEADER_OR_FOLLOWER).
        Refuse,
        /// The oldest answer reaches the producer.
        Answer,
        /// delivery.timeout.ms runs out for the next failures and queued
        /// batches, then comes back.
        Expire,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            3 => Just(Step::Append),
            4 => Just(Step::Send),
            4 => Just(Step::Process),
            1 => Just(Step::Drop),
            1 => Just(Step::LoseAnswer),
            1 => Just(Step::Refuse),
            4 => Just(Step::Answer),
            1 => Just(Step::Expire),
        ]
    }

    /// A batch's record ids.
    type Records = Vec<u64>;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Whatever the network and the broker do, an acknowledged record
        /// is in the log exactly once, the log never goes backwards, and
        /// every record ends acknowledged, failed, or still queued.
        #[test]
        fn random_interleavings_never_reorder_or_duplicate(
            steps in proptest::collection::vec(step(), 1..200)
        ) {
            let t0 = Instant::now();
            let mut s = state();
            let mut q: PartitionQueue<Records> = PartitionQueue::default();
            let mut broker = ModelBroker::default();
            // Requests on the wire: (batch id, epoch, seq, records).
            let mut wire: VecDeque<(u64, i16, i32, Records)> = VecDeque::new();
            // Answers on the way back: (batch id, Ok or failure).
            let mut answers: VecDeque<(u64, Result<(), Failure>)> = VecDeque::new();
            let mut next_record = 0u64;
            let mut next_id = 0u64;
            let mut acked: Vec<u64> = Vec::new();
            let mut failed: Vec<u64> = Vec::new();
            let mut expired_mode = false;
            let settle = |v: Option<Verdict<Records>>, failed: &mut Vec<u64>| {
                if let Some(Verdict::Failed(b) | Verdict::Fatal(b)) = v {
                    failed.extend(b.batch);
                }
            };
            let apply = |q: &mut PartitionQueue<Records>,
                         s: &mut ProducerState,
                         id: u64,
                         r: Result<(), Failure>,
                         expired: bool,
                         acked: &mut Vec<u64>,
                         failed: &mut Vec<u64>| {
                match r {
                    Ok(()) => {
                        if let Some(b) = q.on_success(id) {
                            acked.extend(b.batch);
                        }
                    }
                    Err(f) => settle(q.on_failure(id, f, t0, !expired, s), failed),
                }
            };
            for st in steps {
                match st {
                    Step::Append => {
                        let n = 1 + (next_record % 3) as usize;
                        let recs: Records = (next_record..next_record + n as u64).collect();
                        next_record += n as u64;
                        q.push(recs, next_id, n as i32, t0);
                        next_id += 1;
                    }
                    Step::Send => {
                        if s.bump_if_requested() {
                            // bumped below per partition
                        }
                        for b in q.maybe_rewrite(&s) {
                            failed.extend(b.batch);
                        }
                        if let Some(b) = q.next_to_send(&s, t0, 5) {
                            wire.push_back((b.id, b.producer.epoch, b.base_sequence, b.batch.clone()));
                        }
                    }
                    Step::Process => {
                        if let Some((id, epoch, seq, recs)) = wire.pop_front() {
                            let code = broker.append(epoch, seq, &recs);
                            let r = if code.is_ok() || code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
                                Ok(())
                            } else {
                                Err(Failure::Broker { code, log_start_offset: 0 })
                            };
                            answers.push_back((id, r));
                        }
                    }
                    Step::Drop => {
                        if let Some((id, ..)) = wire.pop_front() {
                            answers.push_back((id, Err(Failure::Unknown)));
                        }
                    }
                    Step::LoseAnswer => {
                        if let Some((id, epoch, seq, recs)) = wire.pop_front() {
                            broker.append(epoch, seq, &recs);
                            answers.push_back((id, Err(Failure::Unknown)));
                        }
                    }
                    Step::Refuse => {
                        if let Some((id, ..)) = wire.pop_front() {
                            answers.push_back((id, Err(Failure::Broker {
                                code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
                                log_start_offset: -1,
                            })));
                        }
                    }
                    Step::Answer => {
                        if let Some((id, r)) = answers.pop_front() {
                            apply(&mut q, &mut s, id, r, expired_mode, &mut acked, &mut failed);
                        }
                    }
                    Step::Expire => {
                        expired_mode = !expired_mode;
                        if expired_mode {
                            for b in q.expire(t0, std::time::Duration::ZERO) {
                                failed.extend(b.batch);
                            }
                        }
                    }
                }
                q.maybe_resolve(&mut s);
            }
            // Let everything finish: the network heals, time is plenty.
            for _ in 0..10_000 {
                while let Some((id, epoch, seq, recs)) = wire.pop_front() {
                    let code = broker.append(epoch, seq, &recs);
                    let r = if code.is_ok() || code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
                        Ok(())
                    } else {
                        Err(Failure::Broker { code, log_start_offset: 0 })
                    };
                    answers.push_back((id, r));
                }
                while let Some((id, r)) = answers.pop_front() {
                    apply(&mut q, &mut s, id, r, false, &mut acked, &mut failed);
                }
                q.maybe_resolve(&mut s);
                s.bump_if_requested();
                for b in q.maybe_rewrite(&s) {
                    failed.extend(b.batch);
                }
                if let Some(b) = q.next_to_send(&s, t0, 5) {
                    wire.push_back((b.id, b.producer.epoch, b.base_sequence, b.batch.clone()));
                }
                if q.is_empty() && wire.is_empty() && answers.is_empty() {
                    break;
                }
            }
            proptest::prop_assert!(q.is_empty(), "stuck: {:?}", q);
            // The log is in order and has no duplicates.
            proptest::prop_assert!(broker.log.windows(2).all(|w| w[0] < w[1]), "log {:?}", broker.log);
            // Every acknowledged record is in the log; every record is
            // acknowledged or failed, never both.
            for r in &acked {
                proptest::prop_assert!(broker.log.binary_search(r).is_ok(), "acked {} not in log", r);
            }
            let mut all: Vec<u64> = acked.iter().chain(failed.iter()).copied().collect();
            all.sort_unstable();
            proptest::prop_assert_eq!(all, (0..next_record).collect::<Vec<_>>());
            // Nothing was failed when the network was healthy and time plenty.
            proptest::prop_assert!(s.fatal().is_none());
        }
    }
}
