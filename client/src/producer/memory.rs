//! `buffer.memory`: the bytes the producer may hold for records not yet
//! delivered (Java's `BufferPool`). What is counted is what a batch really
//! allocates: its buffer's capacity (`batch.size`, or the record's size when
//! one record is larger), taken when the batch is opened and given back
//! when it is settled. Records append into that buffer without allocating,
//! so the count is a bound on the producer's record memory; the copy a
//! codec makes while compressing is transient and not counted.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// The pool of `buffer.memory` bytes.
#[derive(Debug, Clone)]
pub(crate) struct BufferPool {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl BufferPool {
    pub(crate) fn new(total: usize) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    fn permits(&self, size: usize) -> u32 {
        // A batch larger than the whole pool waits for the whole pool.
        u32::try_from(size.clamp(1, self.total)).unwrap_or(u32::MAX)
    }

    /// Take `size` bytes, waiting up to `max_block` (`max.block.ms`).
    ///
    /// Errors: [`Error::Timeout`] when the wait runs out,
    /// [`Error::Closed`] when the producer closed meanwhile.
    pub(crate) async fn reserve(&self, size: usize, max_block: Duration) -> Result<Reservation> {
        let n = self.permits(size);
        match tokio::time::timeout(max_block, self.bytes.acquire_many(n)).await {
            Ok(Ok(p)) => {
                p.forget();
                Ok(Reservation { bytes: n })
            }
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout {
                what: format!("waiting for {n} bytes of buffer.memory"),
                after_ms: max_block.as_millis() as u64,
            }),
        }
    }

    /// Take `size` bytes if they are free now.
    pub(crate) fn try_reserve(&self, size: usize) -> Option<Reservation> {
        let n = self.permits(size);
        self.bytes.try_acquire_many(n).ok().map(|p| {
            p.forget();
            Reservation { bytes: n }
        })
    }

    /// Give bytes back.
    pub(crate) fn release(&self, r: Reservation) {
        self.bytes.add_permits(r.bytes as usize);
    }

    /// Bytes free now.
    pub(crate) fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Wake every waiter with [`Error::Closed`].
    pub(crate) fn close(&self) {
        self.bytes.close();
    }
}

/// Bytes taken from the pool; must be given back with
/// [`BufferPool::release`] (dropping it leaks them from the pool).
#[derive(Debug)]
#[must_use]
pub(crate) struct Reservation {
    bytes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reserve_waits_and_times_out() {
        let pool = BufferPool::new(100);
        let a = pool.reserve(60, Duration::from_secs(1)).await.unwrap();
        assert!(pool.try_reserve(50).is_none());
        let e = pool
            .reserve(50, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(e.is_timeout());
        pool.release(a);
        let b = pool.try_reserve(500).unwrap();
        assert_eq!(pool.available(), 0);
        pool.release(b);
        assert_eq!(pool.available(), 100);
        pool.close();
        assert!(matches!(
            pool.reserve(1, Duration::from_secs(1)).await,
            Err(Error::Closed)
        ));
    }
}
