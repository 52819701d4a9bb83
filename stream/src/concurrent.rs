//! Process a group stream with several concurrent tasks while committing in
//! order: water-healer's `healing`. Work may finish out of order; the
//! committed offset only ever moves to the end of the run of finished
//! records, so after a crash or a failure the next reader resumes at the
//! first record that did not finish, and nothing is skipped.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::metadata::Metadata;
use crate::models::Message;
use crate::stream::{StreamError, StreamReader};

/// Why [`process_concurrently`] stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError<E: std::fmt::Display + std::fmt::Debug> {
    /// Reading failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The reader is not a manual-commit group reader: open it with
    /// [`GroupOptions`](crate::GroupOptions) and `auto_commit: false`.
    #[error("concurrent processing needs a consumer-group reader with auto_commit off")]
    NotManual,
    /// A task failed on this message; it and everything after it in its
    /// partition stay uncommitted, so the next reader gets them again.
    #[error("processing {}-{} offset {} failed: {error}", metadata.topic, metadata.partition, metadata.offset)]
    Task {
        /// The message that failed.
        metadata: Box<Metadata>,
        /// The task's error.
        error: E,
    },
    /// A task panicked or was cancelled.
    #[error("a processing task did not finish: {0}")]
    Join(String),
}

/// Read `reader` and run `work` on each message with at most `concurrency`
/// tasks at a time (at least 1). A message is marked done when its task
/// returns `Ok`. On the first error, reading stops, the tasks already
/// running finish, the done offsets are committed, and the error is
/// returned. Returns `Ok(n)` (messages processed) when the stream ends
/// (`until_eos`).
pub async fn process_concurrently<F, Fut, E>(
    reader: &mut StreamReader,
    concurrency: usize,
    work: F,
) -> Result<u64, ProcessError<E>>
where
    F: Fn(Message, Metadata) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + std::fmt::Debug + Send + 'static,
{
    if reader.auto_commit() != Some(false) {
        return Err(ProcessError::NotManual);
    }
    let handle = reader.group_handle().ok_or(ProcessError::NotManual)?;
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let (fail_tx, mut fail_rx) = mpsc::unbounded_channel::<(Metadata, E)>();
    let mut tasks = JoinSet::new();
    let mut done = 0u64;
    let mut outcome: Result<(), ProcessError<E>> = Ok(());
    loop {
        // Reap finished tasks so the set stays small.
        while let Some(r) = tasks.try_join_next() {
            match r {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(e) => outcome = Err(ProcessError::Join(e.to_string())),
            }
        }
        if let Ok((metadata, error)) = fail_rx.try_recv() {
            outcome = Err(ProcessError::Task {
                metadata: Box::new(metadata),
                error,
            });
        }
        if outcome.is_err() {
            break;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        if let Ok((metadata, error)) = fail_rx.try_recv() {
            outcome = Err(ProcessError::Task {
                metadata: Box::new(metadata),
                error,
            });
            break;
        }
        let (message, metadata) = match reader.read_with_metadata().await {
            None => break,
            Some(Err(e)) => {
                outcome = Err(e.into());
                break;
            }
            Some(Ok(m)) => m,
        };
        let fut = work(message, metadata.clone());
        let handle = handle.clone();
        let fail_tx = fail_tx.clone();
        tasks.spawn(async move {
            let r = fut.await;
            drop(permit);
            match r {
                Ok(()) => {
                    handle.mark_done(
                        &skotch_client::TopicPartition::new(
                            metadata.topic.as_ref(),
                            metadata.partition,
                        ),
                        metadata.offset,
                    );
                    true
                }
                Err(e) => {
                    let _ = fail_tx.send((metadata, e));
                    false
                }
            }
        });
    }
    // Let the running tasks finish: their results still count.
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => {
                if outcome.is_ok() {
                    outcome = Err(ProcessError::Join(e.to_string()));
                }
            }
        }
    }
    if outcome.is_ok() {
        if let Ok((metadata, error)) = fail_rx.try_recv() {
            outcome = Err(ProcessError::Task {
                metadata: Box::new(metadata),
                error,
            });
        }
    }
    if let Err(e) = handle.commit_done().await {
        tracing::warn!(error = %e, "commit after concurrent processing failed");
        if outcome.is_ok() {
            return Err(ProcessError::Stream(e.into()));
        }
    }
    outcome.map(|()| done)
}
