//! Consumer groups: assignors and the ConsumerProtocol bytes they exchange,
//! the per-partition offset tracker behind manual commits, the sans-IO
//! group state machines (classic and KIP-848) and the tokio driver that runs
//! them.

pub mod assignor;
pub mod classic;
pub mod commit_metadata;
pub mod consumer_protocol;
pub(crate) mod coordinator;
pub mod handle;
pub(crate) mod heartbeat;
pub mod kip848;
pub mod listener;
pub(crate) mod offset_fetch;
pub mod tracker;

pub use handle::GroupHandle;
pub use listener::{ManualCommitListener, RebalanceListener};
pub use tracker::{MarkDone, OffsetTracker};
