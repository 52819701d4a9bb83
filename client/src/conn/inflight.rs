//! Bookkeeping of requests awaiting responses on one connection: correlation
//! ids and the in-flight FIFO. Kafka answers requests on a connection in the
//! order they were sent, so a response must match the oldest request; anything
//! else means the stream is out of sync and the connection must be dropped.
//! Pure: no I/O, tested deterministically.

use std::collections::VecDeque;

/// Requests sent and not yet answered, oldest first.
#[derive(Debug)]
pub struct InFlight<T> {
    next_id: i32,
    queue: VecDeque<(i32, T)>,
}

/// A response whose correlation id is not the one expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// The id of the oldest request in flight, if any.
    pub expected: Option<i32>,
    /// The id the response carried.
    pub got: i32,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        Self {
            next_id: 0,
            queue: VecDeque::new(),
        }
    }
}

impl<T> InFlight<T> {
    /// Allocate the next correlation id (wrapping, never negative).
    pub fn next_id(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = if id == i32::MAX { 0 } else { id + 1 };
        id
    }

    /// Record a request that expects a response.
    pub fn push(&mut self, id: i32, item: T) {
        self.queue.push_back((id, item));
    }

    /// Match a response to the oldest request.
    pub fn complete(&mut self, got: i32) -> Result<T, Mismatch> {
        match self.queue.front() {
            Some((id, _)) if *id == got => {
                Ok(self.queue.pop_front().map(|(_, t)| t).ok_or(Mismatch {
                    expected: None,
                    got,
                })?)
            }
            front => Err(Mismatch {
                expected: front.map(|(id, _)| *id),
                got,
            }),
        }
    }

    /// Remove and return everything in flight (the connection failed).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.queue.drain(..).map(|(_, t)| t)
    }

    /// Number of requests awaiting a response.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_mismatch() {
        let mut f = InFlight::default();
        let a = f.next_id();
        let b = f.next_id();
        f.push(a, "a");
        f.push(b, "b");
        assert_eq!(
            f.complete(b),
            Err(Mismatch {
                expected: Some(a),
                got: b
            })
        );
        assert_eq!(f.complete(a), Ok("a"));
        assert_eq!(f.complete(b), Ok("b"));
        assert_eq!(
            f.complete(7),
            Err(Mismatch {
                expected: None,
                got: 7
            })
        );
    }

    #[test]
    fn ids_wrap_non_negative() {
        let mut f: InFlight<()> = InFlight {
            next_id: i32::MAX,
            queue: VecDeque::new(),
        };
        assert_eq!(f.next_id(), i32::MAX);
        assert_eq!(f.next_id(), 0);
    }

    #[test]
    fn drain_empties() {
        let mut f = InFlight::default();
        f.push(1, 1);
        f.push(2, 2);
        assert_eq!(f.drain().collect::<Vec<_>>(), vec![1, 2]);
        assert!(f.is_empty());
    }
}
