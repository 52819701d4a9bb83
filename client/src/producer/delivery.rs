//! Delivery results, settled once per batch. Every record of a batch
//! shares one [`BatchDelivery`]; a record's [`DeliveryFuture`] is that
//! `Arc` plus the record's index and timestamp, so `send` allocates nothing
//! per record for it. Callers that do not want a future per record can
//! drop it and use a [`DeliveryCallback`], called once per batch.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset; -1 with `acks=0`.
    pub offset: i64,
    /// The record's timestamp (the broker's, for LogAppendTime topics).
    pub timestamp: i64,
}

/// What the broker said about a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAck {
    /// Offset of the batch's first record; -1 with `acks=0` (or when the
    /// broker reported a duplicate without its offset).
    pub base_offset: i64,
    /// The broker's append time for LogAppendTime topics, else -1.
    pub log_append_time: i64,
}

/// The shared fate of one batch's records.
#[derive(Debug)]
pub(crate) struct BatchDelivery {
    topic: Arc<str>,
    partition: i32,
    outcome: OnceLock<Result<BatchAck>>,
    wakers: Mutex<Vec<Waker>>,
}

impl BatchDelivery {
    pub(crate) fn new(topic: Arc<str>, partition: i32) -> Arc<Self> {
        Arc::new(Self {
            topic,
            partition,
            outcome: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
        })
    }

    /// Settle the batch (the first call wins) and wake every waiting record.
    pub(crate) fn settle(&self, outcome: Result<BatchAck>) {
        if self.outcome.set(outcome).is_ok() {
            let wakers =
                std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
            for w in wakers {
                w.wake();
            }
        }
    }

    pub(crate) fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    pub(crate) fn partition(&self) -> i32 {
        self.partition
    }
}

/// Resolves to the record's [`RecordMetadata`] once the broker has it, or
/// to the error that made it fail. Dropping it does not cancel the send.
#[derive(Debug)]
pub struct DeliveryFuture {
    batch: Arc<BatchDelivery>,
    index: i32,
    timestamp: i64,
    /// Where this future's waker sits in the batch's list, once polled:
    /// a later poll replaces it there (O(1)) rather than searching the
    /// list, which with thousands of records per batch awaited by
    /// different tasks would be quadratic.
    waker_slot: Option<usize>,
}

impl DeliveryFuture {
    pub(crate) fn new(batch: Arc<BatchDelivery>, index: i32, timestamp: i64) -> Self {
        Self {
            batch,
            index,
            timestamp,
            waker_slot: None,
        }
    }

    fn result(&self, outcome: &Result<BatchAck>) -> Result<RecordMetadata> {
        let ack = outcome.as_ref().map_err(Clone::clone)?;
        Ok(RecordMetadata {
            topic: self.batch.topic.to_string(),
            partition: self.batch.partition,
            offset: if ack.base_offset < 0 {
                -1
            } else {
                ack.base_offset + i64::from(self.index)
            },
            timestamp: if ack.log_append_time >= 0 {
                ack.log_append_time
            } else {
                self.timestamp
            },
        })
    }

    /// The result if the batch is settled, without waiting.
    pub fn try_result(&self) -> Option<Result<RecordMetadata>> {
        self.batch.outcome.get().map(|o| self.result(o))
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(o) = self.batch.outcome.get() {
            return Poll::Ready(self.result(o));
        }
        {
            let batch = self.batch.clone();
            let mut w = batch.wakers.lock().unwrap_or_else(|p| p.into_inner());
            // After a settle the list is empty again: the slot is then
            // gone and the outcome check below answers.
            match self.waker_slot.and_then(|i| w.get_mut(i)) {
                Some(old) => {
                    if !old.will_wake(cx.waker()) {
                        old.clone_from(cx.waker());
                    }
                }
                None => {
                    self.waker_slot = Some(w.len());
                    w.push(cx.waker().clone());
                }
            }
        }
        // Settled between the first check and registering: settle took the
        // wakers before we pushed ours, so look again.
        match self.batch.outcome.get() {
            Some(o) => Poll::Ready(self.result(o)),
            None => Poll::Pending,
        }
    }
}

/// What a [`DeliveryCallback`] is told about one batch.
#[derive(Debug)]
pub struct DeliveryReport<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Number of records in the batch.
    pub record_count: i32,
    /// The batch's first offset (records follow in send order), or the
    /// error every record of the batch failed with.
    pub result: std::result::Result<BatchAck, &'a Error>,
}

/// Called once per settled batch, on the producer's sender task: keep it
/// short and never block in it. Set with `ProducerConfig::on_delivery`.
/// The batch-level alternative to awaiting a [`DeliveryFuture`] per record.
#[derive(Clone)]
pub struct DeliveryCallback(pub Arc<dyn Fn(&DeliveryReport<'_>) + Send + Sync>);

impl DeliveryCallback {
    /// Wrap a function.
    pub fn new(f: impl Fn(&DeliveryReport<'_>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for DeliveryCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliveryCallback")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn futures_share_one_outcome() {
        let d = BatchDelivery::new(Arc::from("t"), 3);
        let f0 = DeliveryFuture::new(d.clone(), 0, 100);
        let f1 = DeliveryFuture::new(d.clone(), 1, 101);
        assert!(f0.try_result().is_none());
        let waiting = tokio::spawn(f1);
        tokio::task::yield_now().await;
        d.settle(Ok(BatchAck {
            base_offset: 40,
            log_append_time: -1,
        }));
        d.settle(Err(Error::Closed));
        let m0 = f0.await.unwrap();
        let m1 = waiting.await.unwrap().unwrap();
        assert_eq!((m0.offset, m0.timestamp, m0.partition), (40, 100, 3));
        assert_eq!((m1.offset, m1.timestamp), (41, 101));
        assert_eq!(m1.topic, "t");
    }

    #[test]
    fn repeated_polls_keep_one_waker_per_future() {
        let d = BatchDelivery::new(Arc::from("t"), 0);
        let mut cx = Context::from_waker(Waker::noop());
        let mut futures: Vec<DeliveryFuture> = (0..100)
            .map(|i| DeliveryFuture::new(d.clone(), i, 0))
            .collect();
        for _ in 0..10 {
            for f in &mut futures {
                assert!(Pin::new(&mut *f).poll(&mut cx).is_pending());
            }
        }
        assert_eq!(d.wakers.lock().unwrap().len(), 100);
        d.settle(Err(Error::Closed));
        let mut last = futures.pop().unwrap();
        assert!(matches!(
            Pin::new(&mut last).poll(&mut cx),
            Poll::Ready(Err(_))
        ));
    }
}
