//! hop-client-style streams over Apache Kafka.
//!
//! A `kafka://` URL names brokers and topics; [`Stream::open_reader`] and
//! [`Stream::open_writer`] open it for reading or writing, as hop-client's
//! `stream.open(url, "r" | "w")`. Messages are models ([`Message::Json`],
//! [`Message::Blob`]) chosen by the `_format` header, and every written
//! message carries hop's standard headers (`_id`, `_sender`, `_test`,
//! `_format`).
//!
//! Credentials: [`StreamOptions::auth`] takes an [`Auth`] (a
//! [`Credential`]) directly, or pick one from the credentials file, hop's
//! `auth.toml`, with [`CredentialStore::select_for_url`] (see
//! [`credentials`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), skotch_stream::StreamError> {
//! use skotch_stream::{Message, Stream, StartPosition};
//! let mut w = Stream::new().open_writer("kafka://127.0.0.1:9092/alerts").await?;
//! w.write(Message::Json(serde_json::json!({"hello": "world"}))).await?;
//! w.close().await?;
//!
//! let stream = Stream::new().start_at(StartPosition::Earliest).until_eos(true);
//! let mut r = stream.open_reader("kafka://127.0.0.1:9092/alerts").await?;
//! while let Some(m) = r.read_with_metadata().await {
//!     let (message, metadata) = m?;
//!     println!("{} {:?}", metadata.offset, message);
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod concurrent;
pub mod crash_policy;
pub mod credentials;
pub mod engine;
pub mod headers;
pub mod journal;
pub mod metadata;
pub mod models;
pub mod options;
pub mod robust_writer;
pub mod sink;
mod stream;
pub mod url;

pub use codec::{AvroCodec, Codec, CodecError, HopCodec, JsonCodec};
pub use concurrent::{process_concurrently, ProcessError};
pub use crash_policy::{CrashPolicy, DeadLetterOptions, Decision, RestartOptions};
pub use credentials::{
    default_path, is_valid_hostname, Credential, CredentialError, CredentialStore, AUTH_FILE_ENV,
};
pub use engine::{
    Engine, EngineError, EngineOptions, HandlerBuilder, HandlerOptions, Record, Records,
    ShutdownHandle,
};
pub use headers::{HeaderError, Headers};
pub use journal::{
    EntryId, FsyncPolicy, Journal, JournalError, JournalMessage, JournalOptions, Pending,
};
pub use metadata::Metadata;
pub use models::{
    Avro, AvroValue, Circular, DecodeError, External, GcnTextNotice, Message, ModelError, VoEvent,
};
pub use options::{
    Auth, Compression, CredentialSource, GroupOptions, OptionError, SaslMechanism, StartPosition,
    StreamOptions,
};
pub use robust_writer::{RobustError, RobustStats, RobustWriter};
pub use sink::Output;
pub use skotch_client::{
    GroupHandle, GroupProtocol, ManualCommitListener, Password, RebalanceListener,
    SecurityProtocol, TopicPartition,
};
pub use stream::{
    open_reader, open_writer, Result, Stream, StreamError, StreamReader, StreamWriter, WriteOptions,
};
pub use url::{BrokerAddr, KafkaUrl, UrlError};
