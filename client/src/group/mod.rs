//! Consumer groups: assignors and the ConsumerProtocol bytes they exchange,
//! the per-partition offset tracker behind manual commits, the sans-IO
//! group state machines (classic and KIP-848) and the tokio driver that runs
//! them.

pub mod assignor;
pub mod consumer_protocol;
pub mod tracker;
