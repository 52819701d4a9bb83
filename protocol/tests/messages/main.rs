//! Tests of the generated message layer (`skotch_protocol::messages`):
//! round trips at every version, hostile input, known bytes, and a
//! differential check against the kafka-protocol crate.

mod captured;
mod debug_tree;
mod differential;
mod fixtures;
mod hostile;
mod roundtrip;
mod samples;
