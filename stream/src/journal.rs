//! A crash-safe on-disk journal of outgoing messages: the storage half of a
//! publisher that survives crashes, modelled on hop-client's
//! `hop.robust_publisher.RobustProducer` (its `PublicationJournal`).
//!
//! A message is appended to the journal *before* it is handed to the
//! producer and marked sent once the broker acknowledged it; a publisher
//! that restarts after a crash resends every message appended but never
//! marked sent. That is at-least-once delivery: a message whose
//! acknowledgement was lost (or whose mark did not reach the disk) is sent
//! twice, with the same `_id` header, so readers can drop duplicates.
//!
//! # Use by a robust writer
//!
//! ```no_run
//! # fn demo() -> Result<(), skotch_stream::journal::JournalError> {
//! use skotch_stream::journal::{Journal, JournalMessage};
//! // 1. Open (or create) the journal; `pending` holds what a previous run
//! //    appended but never marked sent, in append order: resend those first.
//! let (mut journal, pending) = Journal::open("publisher.journal")?;
//! for p in &pending {
//!     // send p.message, then on its acknowledgement:
//!     journal.mark_sent(p.id)?;
//! }
//! // 2. For each new message: append (durable on return by default), send,
//! //    mark sent on acknowledgement.
//! let message = JournalMessage { topic: "alerts".into(), ..Default::default() };
//! let id = journal.append(&message)?;
//! // ... producer.send(...).await, then on success:
//! journal.mark_sent(id)?;
//! # Ok(()) }
//! ```
//!
//! The journal does blocking file I/O (an `fsync` per append by default,
//! milliseconds on a disk); async code calls it from a blocking-capable
//! context (`tokio::task::spawn_blocking`, `block_in_place`) or accepts the
//! stall. A failed send that should be retried needs nothing from the
//! journal: the message stays pending until [`Journal::mark_sent`].
//!
//! # File format (version 1)
//!
//! All integers are big-endian. The file starts with a 12-byte header,
//! then holds records back to back:
//!
//! ```text
//! file    := magic "SKOTCHJR" (8 bytes) ‖ version u32 (= 1) ‖ record*
//! record  := len u32 ‖ crc u32 ‖ type u8 ‖ head_crc u32 ‖ payload (len bytes)
//!              len       payload length in bytes, at most MAX_PAYLOAD_LEN (1 GiB)
//!              crc       CRC-32C (Castagnoli) of type ‖ payload
//!              type      1 = message, 2 = sent mark
//!              head_crc  CRC-32C of the 9 bytes len ‖ crc ‖ type
//! message := id u64 ‖ flags u8 ‖ [timestamp i64, if flags bit 0] ‖ topic str
//!            ‖ key opt ‖ value opt ‖ count u32 ‖ count × (header key str ‖ header value opt)
//!              flags     bit 0: a timestamp follows; other bits must be 0
//! sent    := id u64                                          (payload exactly 8 bytes)
//! str     := n u32 ‖ n bytes of UTF-8
//! opt     := n u32 ‖ n bytes, or n = 0xFFFF_FFFF for null (no bytes)
//! ```
//!
//! `head_crc` protects the length before it is trusted, as hop's header
//! CRC does: without it a flipped bit in a length in the middle of the file
//! would look like a record running past the end, i.e. like a torn tail,
//! and every record after it would be silently dropped. Message ids only
//! grow along the file, so file order, id order and append order agree.
//! This is not hop's file format (hop uses zlib CRC-32 and 64-bit lengths);
//! a hop journal is refused as "not a skotch journal".
//!
//! # Torn tails and corruption
//!
//! Appends only ever add bytes at the end, so a crash can damage only the
//! records written last: a `kill -9` in the middle of a write leaves a
//! prefix of the record (a *torn tail*); a power loss can also leave the
//! unsynced end of the file zero-filled or partly written. Bit rot or a
//! stray write can damage any record. Recovery reads records in order; at
//! the first record that is damaged (fewer than 13 header bytes left, a
//! header CRC mismatch, a length above the cap, a payload running past the
//! end of the file, a payload CRC mismatch) it looks for an *intact record*
//! (both CRCs right, fully inside the file) further on:
//!
//! - none: the damage is a **torn tail**. It is cut off (the file is
//!   truncated to the end of the last intact record) with a `tracing`
//!   warning naming the offset and cause, and recovery succeeds. A header
//!   whose CRC is right but whose payload runs past the end of the file is
//!   torn by definition (nothing can follow it). A file that is shorter
//!   than the 12-byte header and a prefix of it, or all zero bytes, is a
//!   torn creation and becomes an empty journal.
//! - some: the damage is **corruption**: truncating there would drop
//!   records that were written whole. Recovery fails with
//!   [`JournalError::Corrupt`] naming the offset of the damaged record and
//!   what is wrong with it ([`Problem`]).
//!
//! The search starts right after a damaged header (whose length cannot be
//! trusted), or at the end of a record whose header is intact but whose
//! payload is not. So a byte flipped anywhere in the *last* record counts
//! as a torn tail (that record is dropped: a lost message the writer had
//! appended, or a lost sent mark, which only means a duplicate), and a
//! byte flipped in any earlier record is an error naming that record's
//! offset. A record whose CRCs are right but whose content makes no sense
//! (unknown type, malformed message fields, an id that does not grow, a
//! sent mark for an id that is not pending) is always an error: a crash
//! cannot produce it. A corrupt journal needs a person: to salvage the
//! records before the damage, truncate the file at the offset in the error
//! (`truncate -s OFFSET FILE`), accepting the loss of what follows.
//!
//! # Durability ([`FsyncPolicy`])
//!
//! - [`FsyncPolicy::EveryAppend`] (default): every write (a message, a
//!   sent mark, a truncation) is `fsync`ed (`sync_data`) before the call
//!   returns. A message is on disk before it is handed to the producer;
//!   after a process crash, an OS crash or a power loss, every message
//!   whose `append` returned is recovered unless its sent mark was written,
//!   and recovery never fails because of the crash (only the record being
//!   written can be torn). Costs one `fsync` per append and per mark.
//! - [`FsyncPolicy::Interval`]: `fsync` at a write when the given time has
//!   passed since the last one, and on drop. Survives a process crash
//!   (`kill -9`) like `EveryAppend`. After an OS crash or power loss, the
//!   records written since the last `fsync` may be lost, and since the
//!   file system may write their pages in any order, recovery may find a
//!   hole followed by a record and report corruption. Call
//!   [`Journal::sync`] to bound the window while idle.
//! - [`FsyncPolicy::Never`]: the OS page cache only. Survives a process
//!   crash; an OS crash or power loss may lose any record not yet written
//!   back by the OS, or leave the journal reported as corrupt.
//!
//! Creating the journal file also syncs its directory (except with
//! `Never`), so that the file itself survives a power loss. A failed
//! `fsync` leaves the file's state unknown (the kernel may have dropped
//! the unwritten pages), so the journal refuses every later call
//! ([`JournalError::Poisoned`]); reopening it recovers from what the disk
//! holds.
//!
//! # Compaction
//!
//! The file holds every message not yet marked sent plus dead records
//! (messages marked sent, and the marks). It is compacted:
//!
//! - when the last pending message is marked sent: the file is truncated
//!   to its header instead of appending the mark. Nothing is pending, so a
//!   crash at any point of the truncation loses nothing (at worst that
//!   message is sent again);
//! - on open, after recovery: truncated to the header when nothing is
//!   pending, else rewritten when it holds dead records;
//! - while messages are pending, when the dead bytes reach
//!   [`JournalOptions::compact_after`] and outnumber the live ones (so the
//!   file stays within about twice its live size once large).
//!
//! A rewrite copies the pending records, in order and with their ids, to
//! `.<name>.compact` in the same directory (mode 0600, locked), `fsync`s
//! it, renames it over the journal and syncs the directory: a crash before
//! the rename leaves the old journal whole (the stale temporary file is
//! removed at the next open), a crash after it leaves the new one whole.
//! This `fsync` happens whatever the [`FsyncPolicy`]: a rewrite must never
//! turn durable messages into unsynced ones.
//!
//! # Permissions and locking
//!
//! The journal holds every unsent message unencrypted. On Unix it is
//! created with mode 0600, and a journal its group or others may access
//! (`mode & 0o077 != 0`) is refused ([`JournalError::Permissions`]), as
//! the credentials file is. An open journal holds an exclusive advisory
//! lock on its file (`flock` on Unix, through [`File::try_lock`]): a second
//! open, from another process or the same one, fails at once with
//! [`JournalError::Locked`] instead of two publishers interleaving records.
//! The lock goes with the file when it is closed, including on a crash.
//!
//! # Differences from hop's journal
//!
//! Ids ([`EntryId`]) are not recycled while the journal is open (hop
//! restarts them at 0 whenever it empties, so a late duplicate
//! acknowledgement could mark the wrong message); a reopened journal
//! continues above the highest id in the file. hop fails on any damage,
//! a torn tail after `kill -9` included; here only corruption fails. hop
//! only empties its file when nothing is pending, so a publisher that is
//! never idle grows it without bound; here dead records are also
//! compacted away while messages are pending. hop's file is created with
//! the umask's mode; here it is 0600, and locked.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The first 8 bytes of every journal file.
pub const MAGIC: [u8; 8] = *b"SKOTCHJR";

/// The file format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Length of the file header ([`MAGIC`] and [`VERSION`]): 12 bytes.
pub const FILE_HEADER_LEN: u64 = 12;

/// Length of a record's header (len, crc, type, head_crc): 13 bytes.
pub const RECORD_HEADER_LEN: u64 = 13;

/// The largest record payload the format allows: 1 GiB (2^30 bytes).
///
/// Above anything the producer sends (it refuses records over `i32::MAX /
/// 2` bytes whatever `max.request.size` says). A record claiming more is
/// damaged; recovery never allocates by a length it has not checked
/// against this cap and against the bytes left in the file.
pub const MAX_PAYLOAD_LEN: u64 = 1 << 30;

const FILE_HEADER: [u8; FILE_HEADER_LEN as usize] = {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    let v = VERSION.to_be_bytes();
    let mut i = 0;
    while i < 8 {
        h[i] = MAGIC[i];
        i += 1;
    }
    h[8] = v[0];
    h[9] = v[1];
    h[10] = v[2];
    h[11] = v[3];
    h
};

const HEADER_LEN: usize = RECORD_HEADER_LEN as usize;

/// Record type: a message to send.
const TYPE_MESSAGE: u8 = 1;
/// Record type: the message with this id was sent.
const TYPE_SENT: u8 = 2;

/// Message flag: a timestamp follows the flags.
const FLAG_TIMESTAMP: u8 = 1;

/// The length that stands for a null key, value or header value.
const NULL_LEN: u32 = u32::MAX;

/// Above this the append buffer is freed after use rather than kept, so
/// one huge message does not pin its size in memory for the journal's
/// life.
const KEEP_BUFFER: usize = 64 * 1024;

/// The id of a message in its journal, returned by [`Journal::append`] and
/// given back to [`Journal::mark_sent`] (hop's "sequence number").
///
/// Ids grow in append order and are never reused while a journal is open;
/// a reopened journal continues above the highest id in its file, so an id
/// is unique among the messages pending at any one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(u64);

impl EntryId {
    /// The id as a number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<EntryId> for u64 {
    fn from(id: EntryId) -> u64 {
        id.0
    }
}

/// What a writer needs to send a message again exactly as the first time:
/// the Kafka record, after the stream layer turned the model into bytes and
/// added the standard headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalMessage {
    /// The topic the message goes to, as resolved at the first write.
    pub topic: String,
    /// The record key; `None` for a null key.
    pub key: Option<Bytes>,
    /// The record value: the serialized model; `None` for a null value.
    pub value: Option<Bytes>,
    /// Every header in wire order, the standard ones (`_id`, `_sender`,
    /// `_test`, `_format`) included, so that a resend carries the same
    /// `_id`. Keys are UTF-8 (Kafka's rule); a value may be null.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// The record's timestamp, milliseconds since the Unix epoch, so that a
    /// resend keeps the original create time; `None` lets the producer
    /// stamp the resend.
    pub timestamp: Option<i64>,
}

/// A message appended but not marked sent, found by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its id, for [`Journal::mark_sent`].
    pub id: EntryId,
    /// The message.
    pub message: JournalMessage,
}

/// When the journal `fsync`s its file (see the module docs, "Durability",
/// for what each survives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// `fsync` after every write, before the call returns: a message is on
    /// disk before it goes to the producer, and survives a power loss.
    #[default]
    EveryAppend,
    /// `fsync` at a write when at least this long has passed since the
    /// last `fsync`, and on drop: up to this much (plus any idle time
    /// without [`Journal::sync`]) can be lost to an OS crash or power
    /// loss.
    Interval(Duration),
    /// Never `fsync` (except around a compaction's rename): the OS page
    /// cache only. Survives the process being killed, not a power loss.
    Never,
}

/// Settings of a journal. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    /// When to `fsync`. Default [`FsyncPolicy::EveryAppend`].
    pub fsync: FsyncPolicy,
    /// The largest message record payload [`Journal::append`] accepts, in
    /// bytes (the message's topic, key, value and headers plus about 30
    /// bytes of framing: see [`Journal::payload_len`]); larger messages get
    /// [`JournalError::TooLarge`]. Capped at [`MAX_PAYLOAD_LEN`], the
    /// default. Recovery always accepts records up to [`MAX_PAYLOAD_LEN`],
    /// so lowering this never makes an existing journal unreadable.
    pub max_payload_len: u64,
    /// Dead bytes (records of messages marked sent, and the marks) that
    /// trigger a rewrite while messages are still pending, once they also
    /// outnumber the live bytes. Default 64 MiB. `0` compacts as soon as
    /// the dead bytes outnumber the live ones; `u64::MAX` only compacts
    /// when nothing is pending and on open.
    pub compact_after: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::EveryAppend,
            max_payload_len: MAX_PAYLOAD_LEN,
            compact_after: 64 << 20,
        }
    }
}

/// What is wrong with a damaged or nonsensical part of a journal file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file does not start with [`MAGIC`] (nor a prefix of the header,
    /// nor zeros): it is not a skotch journal.
    #[error("not a skotch journal (it does not start with the magic bytes \"SKOTCHJR\")")]
    BadMagic,
    /// The header names a format version this build cannot read.
    #[error("unsupported journal format version {0} (this build reads version {v})", v = VERSION)]
    UnsupportedVersion(u32),
    /// The record runs past the end of the file (only ever a torn tail).
    #[error("the record needs {needed} bytes but only {available} are left in the file")]
    Truncated {
        /// Bytes the record needs (its header, or header and payload).
        needed: u64,
        /// Bytes left in the file from the record's start.
        available: u64,
    },
    /// The record header's CRC is wrong: its length cannot be trusted.
    #[error("record header CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    HeaderCrc {
        /// The CRC in the file.
        stored: u32,
        /// The CRC of the header bytes read.
        computed: u32,
    },
    /// The record's CRC over its type and payload is wrong.
    #[error("record CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    PayloadCrc {
        /// The CRC in the file.
        stored: u32,
        /// The CRC of the type and payload read.
        computed: u32,
    },
    /// The record claims a payload longer than [`MAX_PAYLOAD_LEN`].
    #[error("bad record length {len} (the most is {max} bytes)", max = MAX_PAYLOAD_LEN)]
    BadLength {
        /// The claimed payload length.
        len: u64,
    },
    /// A record with intact CRCs has a type this build does not know.
    #[error("unknown record type {0}")]
    UnknownType(u8),
    /// A record with intact CRCs does not decode.
    #[error("malformed {field}: {why}")]
    Malformed {
        /// The record or field, e.g. `message topic`.
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A message record's id is not above the one before it.
    #[error("message id {id} does not follow the previous message id {previous} (ids only grow)")]
    IdNotIncreasing {
        /// The id of this record.
        id: u64,
        /// The id of the message record before it.
        previous: u64,
    },
    /// A sent mark names an id that is not pending at that point.
    #[error("sent mark for id {0}, which is not a pending message at that point")]
    UnknownSent(u64),
}

/// Recovery found corruption: damage followed by intact records, or an
/// intact record that makes no sense (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt journal at byte offset {offset}: {problem}")]
pub struct Corrupt {
    /// Byte offset in the file of the record (or header field) at fault.
    pub offset: u64,
    /// What is wrong there.
    pub problem: Problem,
}

/// The damaged end of a journal that recovery cuts off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Byte offset where it starts: the end of the last intact record (0
    /// when even the file header is torn).
    pub offset: u64,
    /// Its length in bytes, to the end of the file.
    pub len: u64,
    /// What is wrong with its first record.
    pub cause: Problem,
}

/// What recovery finds in a journal's bytes ([`Journal::recover_from_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The messages appended but not marked sent, in append order.
    pub pending: Vec<Pending>,
    /// Bytes of the file to keep: the header and every intact record
    /// before the torn tail (0 when the header itself is missing or torn).
    pub valid_len: u64,
    /// The torn tail after `valid_len`, if any.
    pub torn_tail: Option<TornTail>,
    /// The id the next append gets: one above the highest message id in
    /// the file, 0 when there is none.
    pub next_id: EntryId,
    /// Where each pending message's record is, in `pending`'s order.
    slots: Vec<(EntryId, Slot)>,
}

/// Errors of the journal. Every variant that concerns the file names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Reading, writing, syncing or renaming failed.
    #[error("journal {}: {op}: {source}", .path.display())]
    Io {
        /// The file (or, for a compaction, its temporary file).
        path: PathBuf,
        /// What was being done, e.g. `opening`, `syncing`.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file's group or others may access it (Unix).
    #[error(
        "journal {} has mode {mode:04o}: its group or others may read or write it, and it holds \
         every unsent message; make it private with `chmod 600 {}`",
        .path.display(),
        .path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// The path exists and is not a regular file.
    #[error("journal {} is not a regular file", .path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Another open journal (another publisher, or another [`Journal`] in
    /// this process) holds the file's lock.
    #[error(
        "journal {} is in use: another publisher holds its lock (two publishers cannot share a \
         journal)",
        .path.display()
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// Recovery found corruption (see the module docs for how it differs
    /// from a torn tail, which is not an error).
    #[error("journal {} is corrupt at byte offset {offset}: {problem}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damaged record (or header field).
        offset: u64,
        /// What is wrong there.
        problem: Problem,
    },
    /// The message's record would exceed [`JournalOptions::max_payload_len`].
    #[error(
        "the message needs a {len}-byte journal record payload, more than the limit of {max} bytes"
    )]
    TooLarge {
        /// Its payload length ([`Journal::payload_len`]).
        len: u64,
        /// The limit.
        max: u64,
    },
    /// [`Journal::mark_sent`] got an id that is not pending (already marked,
    /// or never appended to this journal).
    #[error("no pending message has journal id {id}")]
    UnknownId {
        /// The id given.
        id: EntryId,
    },
    /// Every id up to `u64::MAX` was used (a crafted file can get here).
    #[error("journal {}: message ids are exhausted", .path.display())]
    IdsExhausted {
        /// The file.
        path: PathBuf,
    },
    /// An earlier write or `fsync` failed and the file's state is unknown.
    #[error(
        "journal {} is unusable after an earlier write or fsync failure; reopen it to recover",
        .path.display()
    )]
    Poisoned {
        /// The file.
        path: PathBuf,
    },
}

/// Where a pending message's record lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// Byte offset of the record header.
    offset: u64,
    /// Record length, header included.
    len: u64,
}

/// An open journal file, locked for this process. See the module docs.
pub struct Journal {
    /// The file's canonical path: compaction renames over it, so a symlink
    /// given to `open` stays a symlink.
    path: PathBuf,
    file: File,
    options: JournalOptions,
    /// File length: the end of the last record, where the next one goes.
    len: u64,
    /// The pending messages' records, by id (= append order).
    pending: BTreeMap<EntryId, Slot>,
    /// Sum of the pending records' lengths.
    live: u64,
    next_id: u64,
    /// Written since the last fsync.
    dirty: bool,
    last_sync: Instant,
    poisoned: bool,
    /// Dead bytes below which no rewrite is tried; raised after a failed
    /// rewrite so that it is not retried at every mark.
    compact_floor: u64,
    /// Reused record buffer.
    buf: Vec<u8>,
}

impl fmt::Debug for Journal {
    // Not derived: the record buffer may hold a whole message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("file_len", &self.len)
            .field("pending", &self.pending.len())
            .field("next_id", &self.next_id)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

/// A rewritten journal file, not yet renamed over the old one.
struct Compacted {
    /// Locked, synced, positioned at its end.
    file: File,
    slots: BTreeMap<EntryId, Slot>,
    len: u64,
}

impl Journal {
    /// Opens the journal at `path` with the default [`JournalOptions`]
    /// (fsync every append); see [`Journal::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<(Journal, Vec<Pending>), JournalError> {
        Self::open_with(path, JournalOptions::default())
    }

    /// Opens the journal at `path`, creating it (mode 0600 on Unix) when
    /// missing, locks it, recovers it and compacts it.
    ///
    /// Returns the journal and the messages a previous run appended but did
    /// not mark sent, in append order, with their ids: resend them, then
    /// [`mark_sent`](Self::mark_sent) each on acknowledgement. A torn tail
    /// is cut off with a `tracing` warning (module docs, "Torn tails and
    /// corruption"). Reads the whole file into memory once (at most about
    /// twice the pending messages' size plus
    /// [`JournalOptions::compact_after`], given the compaction rules).
    ///
    /// Errors: [`JournalError::Permissions`] (group or others may access
    /// it), [`JournalError::NotAFile`], [`JournalError::Locked`] (another
    /// open journal holds it), [`JournalError::Corrupt`] (naming the byte
    /// offset and problem), [`JournalError::Io`].
    pub fn open_with(
        path: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<(Journal, Vec<Pending>), JournalError> {
        let (mut file, path) = open_locked(path.as_ref())?;
        // A rewrite that crashed before its rename left this behind; we
        // hold the journal's lock, so no rewrite is running now.
        let tmp = temp_path(&path);
        if let Err(e) = fs::remove_file(&tmp) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = %tmp.display(), error = %e, "journal: cannot remove a stale compaction file");
            }
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| io_error(&path, "reading", e))?;
        let file_len = data.len() as u64;
        let recovered = Self::recover_from_bytes(&data).map_err(|c| JournalError::Corrupt {
            path: path.clone(),
            offset: c.offset,
            problem: c.problem,
        })?;
        drop(data);
        let Recovered {
            pending,
            valid_len,
            torn_tail,
            next_id,
            slots,
        } = recovered;
        if let Some(t) = &torn_tail {
            tracing::warn!(
                journal = %path.display(),
                offset = t.offset,
                bytes = t.len,
                cause = %t.cause,
                "journal: cutting off a torn tail (a record cut short by a crash while it was written)"
            );
        }
        let live = slots.iter().map(|(_, s)| s.len).sum();
        let mut journal = Journal {
            path,
            file,
            options,
            len: valid_len,
            pending: slots.into_iter().collect(),
            live,
            next_id: next_id.0,
            dirty: false,
            last_sync: Instant::now(),
            poisoned: false,
            compact_floor: 0,
            buf: Vec::new(),
        };
        journal.settle(file_len)?;
        if journal.dead_len() > 0 {
            // Optional: a journal that cannot be rewritten still works.
            if let Err(e) = journal.rewrite() {
                tracing::warn!(journal = %journal.path.display(), error = %e, "journal: compaction on open failed; continuing with the file as it is");
            }
        }
        Ok((journal, pending))
    }

    /// After recovery: gives the file its header, cuts off a torn tail,
    /// truncates it to the header when nothing is pending, and positions
    /// it at its end. `file_len` is the length read.
    fn settle(&mut self, file_len: u64) -> Result<(), JournalError> {
        let created = self.len < FILE_HEADER_LEN;
        if created {
            // A new (empty) file, or one whose header is torn: start over.
            self.len = 0;
            self.set_len(0)?;
            self.file
                .seek(SeekFrom::Start(0))
                .map_err(|e| io_error(&self.path, "seeking", e))?;
            #[cfg(unix)]
            {
                // The umask may have taken away the owner's bits; a journal
                // the owner cannot reopen for writing is useless.
                use std::os::unix::fs::PermissionsExt;
                let _ = self.file.set_permissions(fs::Permissions::from_mode(0o600));
            }
            self.write_bytes(&FILE_HEADER)?;
        } else {
            let keep = if self.pending.is_empty() {
                FILE_HEADER_LEN
            } else {
                self.len
            };
            if keep != file_len {
                self.len = keep;
                self.set_len(keep)?;
            }
        }
        self.file
            .seek(SeekFrom::Start(self.len))
            .map_err(|e| io_error(&self.path, "seeking", e))?;
        if self.len != file_len {
            self.after_write()?;
        }
        if created && self.options.fsync != FsyncPolicy::Never {
            sync_dir(&self.path);
        }
        Ok(())
    }

    /// Appends `message` and returns its id; with
    /// [`FsyncPolicy::EveryAppend`] it is on disk when this returns. Hand
    /// the message to the producer only after this succeeded.
    ///
    /// Errors: [`JournalError::TooLarge`] (nothing written),
    /// [`JournalError::Io`] (a failed write is taken back, so the journal
    /// stays usable; a failed `fsync` poisons it and the message may or may
    /// not be in the file), [`JournalError::Poisoned`],
    /// [`JournalError::IdsExhausted`].
    pub fn append(&mut self, message: &JournalMessage) -> Result<EntryId, JournalError> {
        self.check_usable()?;
        let len = Self::payload_len(message);
        let max = self.options.max_payload_len.min(MAX_PAYLOAD_LEN);
        if len > max {
            return Err(JournalError::TooLarge { len, max });
        }
        if self.next_id == u64::MAX {
            return Err(JournalError::IdsExhausted {
                path: self.path.clone(),
            });
        }
        let id = EntryId(self.next_id);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        encode_message(&mut buf, id.0, message);
        let slot = self.write_record(&buf);
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
        let slot = slot?;
        self.pending.insert(id, slot);
        self.live += slot.len;
        self.next_id += 1;
        Ok(id)
    }

    /// Marks the message `id` sent: it will not be returned by recovery any
    /// more. Call it when the broker acknowledged the message (or when it
    /// failed for good and should not be retried, as hop does for
    /// non-retriable errors).
    ///
    /// Appends a 21-byte mark, synced as [`FsyncPolicy`] says; when `id` is
    /// the last pending message the file is truncated to its header
    /// instead. May then compact the file (see the module docs); a failed
    /// compaction is logged, not returned.
    ///
    /// Errors: [`JournalError::UnknownId`] (not pending: never appended,
    /// or already marked), [`JournalError::Io`],
    /// [`JournalError::Poisoned`].
    pub fn mark_sent(&mut self, id: EntryId) -> Result<(), JournalError> {
        self.check_usable()?;
        let Some(slot) = self.pending.get(&id).copied() else {
            return Err(JournalError::UnknownId { id });
        };
        if self.pending.len() == 1 {
            self.truncate_to_header()?;
            self.pending.clear();
            self.live = 0;
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        encode_sent(&mut buf, id.0);
        let written = self.write_record(&buf);
        self.buf = buf;
        written?;
        self.pending.remove(&id);
        self.live -= slot.len;
        self.maybe_rewrite();
        Ok(())
    }

    /// `fsync`s what was written since the last `fsync`, whatever the
    /// policy. Useful with [`FsyncPolicy::Interval`] when going idle.
    ///
    /// Errors: [`JournalError::Io`] (and the journal is poisoned),
    /// [`JournalError::Poisoned`].
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.check_usable()?;
        if self.dirty {
            self.sync_now()?;
        }
        Ok(())
    }

    /// Compacts now: truncates the file to its header when nothing is
    /// pending, else rewrites it without dead records when it has any.
    ///
    /// Errors: [`JournalError::Io`] (the old file stays in use, unless
    /// the journal is poisoned), [`JournalError::Poisoned`].
    pub fn compact(&mut self) -> Result<(), JournalError> {
        self.check_usable()?;
        if self.pending.is_empty() {
            if self.len > FILE_HEADER_LEN {
                self.truncate_to_header()?;
            }
            Ok(())
        } else if self.dead_len() > 0 {
            self.rewrite()
        } else {
            Ok(())
        }
    }

    /// Number of messages appended and not marked sent.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// True when `id` is appended and not marked sent.
    pub fn is_pending(&self, id: EntryId) -> bool {
        self.pending.contains_key(&id)
    }

    /// The journal file's path (canonical: symlinks resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes: [`FILE_HEADER_LEN`] when empty.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// The options the journal was opened with.
    pub fn options(&self) -> &JournalOptions {
        &self.options
    }

    /// The payload length, in bytes, of the record that would hold
    /// `message`: 25 bytes of fixed fields (33 with a timestamp), plus the
    /// topic, key and value lengths, plus 8 bytes and the key and value
    /// lengths per header. Compared with
    /// [`JournalOptions::max_payload_len`]; the record adds
    /// [`RECORD_HEADER_LEN`] bytes.
    pub fn payload_len(message: &JournalMessage) -> u64 {
        fn opt(b: &Option<Bytes>) -> u64 {
            4 + b.as_ref().map_or(0, |b| b.len() as u64)
        }
        let mut n =
            8 + 1 + 4 + message.topic.len() as u64 + opt(&message.key) + opt(&message.value) + 4;
        if message.timestamp.is_some() {
            n += 8;
        }
        for (k, v) in &message.headers {
            n += 4 + k.len() as u64 + opt(v);
        }
        n
    }

    /// Recovers a journal from its bytes, without touching the file system:
    /// what [`Journal::open`] does before it cuts off a torn tail and
    /// compacts. Never panics; allocates at most a few times `data.len()`.
    ///
    /// Errors: [`Corrupt`] naming the byte offset and the [`Problem`]:
    /// damage followed by an intact record, an intact record that makes no
    /// sense, a bad magic or an unsupported version (module docs, "Torn
    /// tails and corruption").
    pub fn recover_from_bytes(data: &[u8]) -> Result<Recovered, Corrupt> {
        let empty = |torn: Option<TornTail>| Recovered {
            pending: Vec::new(),
            valid_len: 0,
            torn_tail: torn,
            next_id: EntryId(0),
            slots: Vec::new(),
        };
        let torn_at_zero = |cause: Problem| {
            empty(Some(TornTail {
                offset: 0,
                len: data.len() as u64,
                cause,
            }))
        };
        if data.is_empty() {
            return Ok(empty(None));
        }
        // A crash while the file was created leaves a prefix of the header,
        // or (power loss) zeros where the header should be.
        let all_zero = data.iter().all(|&b| b == 0);
        if data.len() < FILE_HEADER.len() {
            return if FILE_HEADER.starts_with(data) || all_zero {
                Ok(torn_at_zero(Problem::Truncated {
                    needed: FILE_HEADER_LEN,
                    available: data.len() as u64,
                }))
            } else {
                Err(Corrupt {
                    offset: 0,
                    problem: Problem::BadMagic,
                })
            };
        }
        if data[..8] != MAGIC {
            return if all_zero {
                Ok(torn_at_zero(Problem::BadMagic))
            } else {
                Err(Corrupt {
                    offset: 0,
                    problem: Problem::BadMagic,
                })
            };
        }
        let version = be_u32(&data[8..12]);
        if version != VERSION {
            return Err(Corrupt {
                offset: 8,
                problem: Problem::UnsupportedVersion(version),
            });
        }

        let mut pending: BTreeMap<u64, (Slot, JournalMessage)> = BTreeMap::new();
        let mut last_id: Option<u64> = None;
        let mut pos = FILE_HEADER.len();
        let mut torn_tail = None;
        while pos < data.len() {
            match next_record(data, pos) {
                Step::Record { kind, payload, end } => {
                    let corrupt = |problem| Corrupt {
                        offset: pos as u64,
                        problem,
                    };
                    match kind {
                        TYPE_MESSAGE => {
                            let (id, message) = decode_message(payload).map_err(corrupt)?;
                            if let Some(previous) = last_id {
                                if id <= previous {
                                    return Err(corrupt(Problem::IdNotIncreasing { id, previous }));
                                }
                            }
                            last_id = Some(id);
                            let slot = Slot {
                                offset: pos as u64,
                                len: (end - pos) as u64,
                            };
                            pending.insert(id, (slot, message));
                        }
                        TYPE_SENT => {
                            let id = decode_sent(payload).map_err(corrupt)?;
                            if pending.remove(&id).is_none() {
                                return Err(corrupt(Problem::UnknownSent(id)));
                            }
                        }
                        other => return Err(corrupt(Problem::UnknownType(other))),
                    }
                    pos = end;
                }
                Step::Damage { problem, resume } => {
                    if intact_record_from(data, resume) {
                        return Err(Corrupt {
                            offset: pos as u64,
                            problem,
                        });
                    }
                    torn_tail = Some(TornTail {
                        offset: pos as u64,
                        len: (data.len() - pos) as u64,
                        cause: problem,
                    });
                    break;
                }
            }
        }
        let mut out = Vec::with_capacity(pending.len());
        let mut slots = Vec::with_capacity(pending.len());
        for (id, (slot, message)) in pending {
            let id = EntryId(id);
            out.push(Pending { id, message });
            slots.push((id, slot));
        }
        Ok(Recovered {
            pending: out,
            valid_len: pos as u64,
            torn_tail,
            next_id: EntryId(last_id.map_or(0, |id| id.saturating_add(1))),
            slots,
        })
    }

    fn check_usable(&self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Bytes of records that are not pending messages.
    fn dead_len(&self) -> u64 {
        self.len.saturating_sub(FILE_HEADER_LEN + self.live)
    }

    /// Appends a whole record at the end and syncs as the policy says.
    fn write_record(&mut self, record: &[u8]) -> Result<Slot, JournalError> {
        let offset = self.len;
        self.write_bytes(record)?;
        self.after_write()?;
        Ok(Slot {
            offset,
            len: record.len() as u64,
        })
    }

    /// Writes `bytes` at the end (the file's position). On failure, takes
    /// back whatever part reached the file: a later record must never
    /// follow a damaged one, which recovery would call corruption.
    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), JournalError> {
        let offset = self.len;
        if let Err(e) = self.file.write_all(bytes) {
            let undone = self
                .file
                .set_len(offset)
                .and_then(|()| self.file.seek(SeekFrom::Start(offset)));
            if undone.is_err() {
                self.poisoned = true;
            }
            return Err(io_error(&self.path, "appending a record", e));
        }
        self.len += bytes.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Truncates the file to `len` (a failure leaves it as it was).
    fn set_len(&mut self, len: u64) -> Result<(), JournalError> {
        self.file
            .set_len(len)
            .map_err(|e| io_error(&self.path, "truncating", e))?;
        self.dirty = true;
        Ok(())
    }

    /// Empties the journal: nothing is pending, so a crash at any point
    /// loses nothing.
    fn truncate_to_header(&mut self) -> Result<(), JournalError> {
        self.set_len(FILE_HEADER_LEN)?;
        self.len = FILE_HEADER_LEN;
        if let Err(e) = self.file.seek(SeekFrom::Start(FILE_HEADER_LEN)) {
            self.poisoned = true;
            return Err(io_error(&self.path, "seeking", e));
        }
        self.after_write()
    }

    /// Syncs after a write if the policy says so now.
    fn after_write(&mut self) -> Result<(), JournalError> {
        let due = match self.options.fsync {
            FsyncPolicy::EveryAppend => true,
            FsyncPolicy::Interval(every) => self.last_sync.elapsed() >= every,
            FsyncPolicy::Never => false,
        };
        if due {
            self.sync_now()
        } else {
            Ok(())
        }
    }

    fn sync_now(&mut self) -> Result<(), JournalError> {
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty
            // pages: what the file holds is unknown until it is reread.
            self.poisoned = true;
            return Err(io_error(&self.path, "syncing", e));
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Rewrites the file when the dead bytes are worth it; a failure is
    /// logged (the journal works on with its old file) and raises the bar
    /// for the next attempt.
    fn maybe_rewrite(&mut self) {
        let dead = self.dead_len();
        if dead < self.options.compact_after.max(self.compact_floor) || dead <= self.live {
            return;
        }
        match self.rewrite() {
            Ok(()) => self.compact_floor = 0,
            Err(e) => {
                tracing::warn!(journal = %self.path.display(), error = %e, "journal: compaction failed; will retry when twice as much is dead");
                self.compact_floor = dead.saturating_mul(2);
            }
        }
    }

    /// Copies the pending records to a temporary file, syncs it and renames
    /// it over the journal (module docs, "Compaction").
    fn rewrite(&mut self) -> Result<(), JournalError> {
        let tmp_path = temp_path(&self.path);
        let copied = self.write_compacted(&tmp_path);
        // Reading moved the old file's position; appends continue there
        // when the rewrite failed.
        let restored = self.file.seek(SeekFrom::Start(self.len));
        let Compacted { file, slots, len } = match copied {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_file(&tmp_path);
                if restored.is_err() {
                    self.poisoned = true;
                }
                return Err(e);
            }
        };
        if let Err(e) = fs::rename(&tmp_path, &self.path) {
            let _ = fs::remove_file(&tmp_path);
            if restored.is_err() {
                self.poisoned = true;
            }
            return Err(io_error(&self.path, "renaming the compacted file over", e));
        }
        // From here the path names the new file: it must be the one used,
        // whatever fails.
        sync_dir(&self.path);
        self.file = file;
        self.pending = slots;
        self.len = len;
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Writes the header and the pending records to a new, locked, synced
    /// file at `tmp_path`.
    fn write_compacted(&self, tmp_path: &Path) -> Result<Compacted, JournalError> {
        let tmp_err = |op| move |e| io_error(tmp_path, op, e);
        if let Err(e) = fs::remove_file(tmp_path) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(tmp_err("removing a stale compaction file")(e));
            }
        }
        let tmp = create_private(tmp_path).map_err(tmp_err("creating the compaction file"))?;
        // Locked before the rename, so that the moment the path names it,
        // no other publisher can take it.
        match tmp.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked {
                    path: tmp_path.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(tmp_err("locking")(e)),
        }
        let mut slots = BTreeMap::new();
        let mut pos = FILE_HEADER_LEN;
        {
            let mut out = BufWriter::with_capacity(KEEP_BUFFER, &tmp);
            out.write_all(&FILE_HEADER)
                .map_err(tmp_err("writing the compaction file"))?;
            for (&id, slot) in &self.pending {
                let mut old = &self.file;
                old.seek(SeekFrom::Start(slot.offset))
                    .map_err(|e| io_error(&self.path, "seeking", e))?;
                let n = io::copy(&mut old.take(slot.len), &mut out)
                    .map_err(tmp_err("copying records to the compaction file"))?;
                if n != slot.len {
                    return Err(io_error(
                        &self.path,
                        "reading a pending record for compaction",
                        io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
                slots.insert(
                    id,
                    Slot {
                        offset: pos,
                        len: slot.len,
                    },
                );
                pos += slot.len;
            }
            out.flush()
                .map_err(tmp_err("writing the compaction file"))?;
        }
        // Whatever the policy: the rename must not publish a file whose
        // records are not on disk, while the old file's were.
        tmp.sync_all()
            .map_err(tmp_err("syncing the compaction file"))?;
        Ok(Compacted {
            file: tmp,
            slots,
            len: pos,
        })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Interval leaves the last writes unsynced; closing is the last
        // chance. Errors cannot be reported here: call sync() to see them.
        if self.dirty && !self.poisoned {
            if let FsyncPolicy::Interval(_) = self.options.fsync {
                let _ = self.file.sync_data();
            }
        }
    }
}

fn io_error(path: &Path, op: &'static str, source: io::Error) -> JournalError {
    JournalError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Opens (creating, mode 0600) and locks the journal; returns it with its
/// canonical path.
fn open_locked(path: &Path) -> Result<(File, PathBuf), JournalError> {
    // A rewrite in another process renames a new file over the path; a
    // file opened just before that and locked just after would be one no
    // longer at the path. Such a race is retried: the next attempt finds
    // the new file, locked by its owner.
    for _ in 0..16 {
        match fs::metadata(path) {
            Ok(m) if !m.is_file() => {
                return Err(JournalError::NotAFile {
                    path: path.to_path_buf(),
                })
            }
            _ => {}
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .map_err(|e| io_error(path, "opening", e))?;
        let meta = file
            .metadata()
            .map_err(|e| io_error(path, "reading the metadata of", e))?;
        if !meta.is_file() {
            return Err(JournalError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        check_private(path, &meta)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked {
                    path: path.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error(path, "locking", e)),
        }
        let canonical = fs::canonicalize(path).map_err(|e| io_error(path, "resolving", e))?;
        if still_at(&meta, &canonical) {
            return Ok((file, canonical));
        }
    }
    Err(JournalError::Locked {
        path: path.to_path_buf(),
    })
}

/// True when `path` still names the file `meta` describes.
#[cfg(unix)]
fn still_at(meta: &fs::Metadata, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
}

/// Without inode numbers, trust the open.
#[cfg(not(unix))]
fn still_at(_meta: &fs::Metadata, _path: &Path) -> bool {
    true
}

/// Refuses a file its group or others may access.
#[cfg(unix)]
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), JournalError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(JournalError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Permission bits mean nothing comparable off Unix.
#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &fs::Metadata) -> Result<(), JournalError> {
    Ok(())
}

/// Creates `path`, which must not exist, with mode exactly 0600.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // The umask may have taken bits away (leaving the owner unable to
    // reopen it for writing).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// `.<name>.compact` next to the journal.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".compact");
    path.with_file_name(name)
}

/// Makes a creation or rename in the journal's directory durable. Best
/// effort: failing loses nothing already written.
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let synced = File::open(dir).and_then(|d| d.sync_all());
        if let Err(e) = synced {
            tracing::warn!(dir = %dir.display(), error = %e, "journal: cannot sync the directory");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Starts a record at the end of `out`: room for its header.
fn begin_record(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    start
}

/// Fills in the header of the record started at `start`, whose payload is
/// the rest of `out`. The payload must be at most [`MAX_PAYLOAD_LEN`].
fn finish_record(out: &mut [u8], start: usize, kind: u8) {
    let (head, payload) = out[start..].split_at_mut(HEADER_LEN);
    // Callers check the payload against MAX_PAYLOAD_LEN (< u32::MAX) first.
    let len = payload.len() as u32;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload);
    head[0..4].copy_from_slice(&len.to_be_bytes());
    head[4..8].copy_from_slice(&crc.to_be_bytes());
    head[8] = kind;
    let head_crc = crc32c::crc32c(&head[..9]);
    head[9..13].copy_from_slice(&head_crc.to_be_bytes());
}

/// Frames `payload` as a record of type `kind` at the end of `out`: for
/// tests and fuzzing, which build files the writer never would.
#[doc(hidden)]
pub fn frame_record(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let start = begin_record(out);
    out.extend_from_slice(payload);
    finish_record(out, start, kind);
}

/// A file header, for tests and fuzzing.
#[doc(hidden)]
pub fn file_header() -> [u8; FILE_HEADER_LEN as usize] {
    FILE_HEADER
}

/// Appends a message record. Its payload must have been checked against
/// the cap (every length then fits a u32 below [`NULL_LEN`]).
fn encode_message(out: &mut Vec<u8>, id: u64, m: &JournalMessage) {
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    }
    fn opt(out: &mut Vec<u8>, b: Option<&Bytes>) {
        match b {
            Some(b) => bytes(out, b),
            None => out.extend_from_slice(&NULL_LEN.to_be_bytes()),
        }
    }
    let start = begin_record(out);
    out.extend_from_slice(&id.to_be_bytes());
    match m.timestamp {
        Some(t) => {
            out.push(FLAG_TIMESTAMP);
            out.extend_from_slice(&t.to_be_bytes());
        }
        None => out.push(0),
    }
    bytes(out, m.topic.as_bytes());
    opt(out, m.key.as_ref());
    opt(out, m.value.as_ref());
    out.extend_from_slice(&(m.headers.len() as u32).to_be_bytes());
    for (k, v) in &m.headers {
        bytes(out, k.as_bytes());
        opt(out, v.as_ref());
    }
    finish_record(out, start, TYPE_MESSAGE);
}

/// Appends a sent mark.
fn encode_sent(out: &mut Vec<u8>, id: u64) {
    frame_record(out, TYPE_SENT, &id.to_be_bytes());
}

/// One step of recovery: an intact record, or damage at this offset.
enum Step<'a> {
    Record {
        kind: u8,
        payload: &'a [u8],
        /// Offset just past the record.
        end: usize,
    },
    Damage {
        problem: Problem,
        /// Where an intact record could start after this damage.
        resume: usize,
    },
}

/// Reads the record at `pos` (< `data.len()`), checking its framing and
/// CRCs only.
fn next_record(data: &[u8], pos: usize) -> Step<'_> {
    let available = data.len() - pos;
    let Some(head) = data[pos..].get(..HEADER_LEN) else {
        return Step::Damage {
            problem: Problem::Truncated {
                needed: RECORD_HEADER_LEN,
                available: available as u64,
            },
            resume: data.len(),
        };
    };
    let stored = be_u32(&head[9..13]);
    let computed = crc32c::crc32c(&head[..9]);
    if stored != computed {
        // The length is garbage as far as we know: anything after this
        // header could be the next record.
        return Step::Damage {
            problem: Problem::HeaderCrc { stored, computed },
            resume: pos + 1,
        };
    }
    let len = u64::from(be_u32(&head[0..4]));
    if len > MAX_PAYLOAD_LEN {
        return Step::Damage {
            problem: Problem::BadLength { len },
            resume: pos + 1,
        };
    }
    // len <= 2^30 and available < isize::MAX: no overflow.
    let end = pos + HEADER_LEN + len as usize;
    let Some(payload) = data.get(pos + HEADER_LEN..end) else {
        // An intact header whose payload is cut short: nothing can follow.
        return Step::Damage {
            problem: Problem::Truncated {
                needed: RECORD_HEADER_LEN + len,
                available: available as u64,
            },
            resume: data.len(),
        };
    };
    let kind = head[8];
    let stored = be_u32(&head[4..8]);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload);
    if stored != computed {
        return Step::Damage {
            problem: Problem::PayloadCrc { stored, computed },
            resume: end,
        };
    }
    Step::Record { kind, payload, end }
}

/// True when an intact record (both CRCs right, wholly inside `data`)
/// starts at some offset from `from` on.
fn intact_record_from(data: &[u8], from: usize) -> bool {
    let Some(last) = data.len().checked_sub(HEADER_LEN) else {
        return false;
    };
    (from..=last).any(|at| matches!(next_record(data, at), Step::Record { .. }))
}

/// Reads a record payload field by field.
struct Fields<'a> {
    rest: &'a [u8],
    record: &'static str,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Problem> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or(Problem::Malformed {
            field,
            why: "runs past the end of the record",
        })?;
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Problem> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, Problem> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, Problem> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// `n u32 ‖ n bytes`, the length checked against what is left before
    /// anything is copied.
    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], Problem> {
        let n = self.u32(field)?;
        self.take(n as usize, field)
    }

    fn opt_bytes(&mut self, field: &'static str) -> Result<Option<Bytes>, Problem> {
        let n = self.u32(field)?;
        if n == NULL_LEN {
            return Ok(None);
        }
        Ok(Some(Bytes::copy_from_slice(self.take(n as usize, field)?)))
    }

    fn string(&mut self, field: &'static str) -> Result<String, Problem> {
        let b = self.bytes(field)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| Problem::Malformed {
                field,
                why: "is not UTF-8",
            })
    }

    fn finish(self) -> Result<(), Problem> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Problem::Malformed {
                field: self.record,
                why: "has bytes left after its last field",
            })
        }
    }
}

fn decode_message(payload: &[u8]) -> Result<(u64, JournalMessage), Problem> {
    let mut f = Fields {
        rest: payload,
        record: "message record",
    };
    let id = f.u64("message id")?;
    let [flags] = f.array::<1>("message flags")?;
    if flags & !FLAG_TIMESTAMP != 0 {
        return Err(Problem::Malformed {
            field: "message flags",
            why: "has unknown bits set",
        });
    }
    let timestamp = if flags & FLAG_TIMESTAMP != 0 {
        Some(i64::from_be_bytes(f.array("message timestamp")?))
    } else {
        None
    };
    let topic = f.string("message topic")?;
    let key = f.opt_bytes("message key")?;
    let value = f.opt_bytes("message value")?;
    let count = f.u32("message header count")?;
    // Each header takes at least 8 bytes: a crafted count cannot make this
    // allocate more than the record holds.
    let mut headers = Vec::with_capacity((count as usize).min(f.rest.len() / 8));
    for _ in 0..count {
        let k = f.string("message header key")?;
        let v = f.opt_bytes("message header value")?;
        headers.push((k, v));
    }
    f.finish()?;
    Ok((
        id,
        JournalMessage {
            topic,
            key,
            value,
            headers,
            timestamp,
        },
    ))
}

fn decode_sent(payload: &[u8]) -> Result<u64, Problem> {
    let mut f = Fields {
        rest: payload,
        record: "sent record",
    };
    let id = f.u64("sent record id")?;
    f.finish()?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// No fsync: the tests check content, not durability.
    fn fast() -> JournalOptions {
        JournalOptions {
            fsync: FsyncPolicy::Never,
            ..JournalOptions::default()
        }
    }

    fn msg(i: u32) -> JournalMessage {
        JournalMessage {
            topic: format!("topic-{}", i % 3),
            key: i.is_multiple_of(2).then(|| Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("{{\"n\":{i}}}"))),
            headers: vec![
                ("_id".into(), Some(Bytes::from(vec![i as u8; 16]))),
                ("_format".into(), Some(Bytes::from_static(b"json"))),
                ("nothing".into(), None),
            ],
            timestamp: (!i.is_multiple_of(3)).then_some(1_700_000_000_000 + i64::from(i)),
        }
    }

    /// Writes `bytes` to a new 0600 file at `path`.
    fn write_private(path: &Path, bytes: &[u8]) {
        let _ = fs::remove_file(path);
        let mut f = create_private(path).unwrap();
        f.write_all(bytes).unwrap();
    }

    fn ids(pending: &[Pending]) -> Vec<u64> {
        pending.iter().map(|p| p.id.get()).collect()
    }

    #[derive(Debug, Clone)]
    enum BuildOp {
        Append(JournalMessage),
        /// Marks the pending message at this index (mod the count) sent.
        Mark(usize),
    }

    /// A journal written through the API, one record per op: its bytes
    /// and, at each record boundary, the messages pending there.
    struct Built {
        bytes: Vec<u8>,
        states: Vec<(u64, Vec<Pending>)>,
    }

    impl Built {
        /// The last record boundary at or before `cut`, and what is
        /// pending there (nothing before the file header is whole).
        fn at(&self, cut: usize) -> (u64, Vec<Pending>) {
            if (cut as u64) < FILE_HEADER_LEN {
                return (0, Vec::new());
            }
            self.states
                .iter()
                .rev()
                .find(|(b, _)| *b <= cut as u64)
                .cloned()
                .unwrap()
        }

        /// (start, end) of every record.
        fn records(&self) -> Vec<(usize, usize)> {
            let mut out = Vec::new();
            let mut pos = FILE_HEADER_LEN as usize;
            while pos < self.bytes.len() {
                match next_record(&self.bytes, pos) {
                    Step::Record { end, .. } => {
                        out.push((pos, end));
                        pos = end;
                    }
                    Step::Damage { problem, .. } => panic!("damage at {pos}: {problem}"),
                }
            }
            out
        }
    }

    fn build(ops: &[BuildOp]) -> Built {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let options = JournalOptions {
            compact_after: u64::MAX,
            ..fast()
        };
        let (mut j, _) = Journal::open_with(&path, options).unwrap();
        let mut model: Vec<Pending> = Vec::new();
        let mut states = vec![(j.file_len(), Vec::new())];
        for op in ops {
            match op {
                BuildOp::Append(m) => {
                    let id = j.append(m).unwrap();
                    model.push(Pending {
                        id,
                        message: m.clone(),
                    });
                }
                // Marking the last one would truncate rather than add a
                // record.
                BuildOp::Mark(i) if model.len() >= 2 => {
                    let p = model.remove(i % model.len());
                    j.mark_sent(p.id).unwrap();
                }
                BuildOp::Mark(_) => continue,
            }
            states.push((j.file_len(), model.clone()));
        }
        drop(j);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, states.last().unwrap().0);
        Built { bytes, states }
    }

    fn sample() -> Built {
        use BuildOp::*;
        build(&[
            Append(msg(0)),
            Append(msg(1)),
            Append(msg(2)),
            Mark(1),
            Append(msg(3)),
            Mark(0),
            Append(msg(4)),
        ])
    }

    #[test]
    fn append_mark_reopen_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("publisher.journal");
        let (mut j, pending) = Journal::open(&path).unwrap();
        assert!(pending.is_empty());
        let a = j.append(&msg(1)).unwrap();
        let b = j.append(&msg(2)).unwrap();
        let c = j.append(&msg(3)).unwrap();
        assert_eq!((a.get(), b.get(), c.get()), (0, 1, 2));
        j.mark_sent(b).unwrap();
        assert_eq!(j.pending_count(), 2);
        assert!(j.is_pending(a) && !j.is_pending(b) && j.is_pending(c));
        drop(j);
        let (mut j, pending) = Journal::open(&path).unwrap();
        assert_eq!(
            pending,
            vec![
                Pending {
                    id: a,
                    message: msg(1)
                },
                Pending {
                    id: c,
                    message: msg(3)
                },
            ]
        );
        // Ids continue above the file's highest.
        assert_eq!(j.append(&msg(4)).unwrap().get(), 3);
    }

    #[test]
    fn mark_sent_refuses_ids_that_are_not_pending() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open_with(dir.path().join("j"), fast()).unwrap();
        let a = j.append(&msg(1)).unwrap();
        j.append(&msg(2)).unwrap();
        j.mark_sent(a).unwrap();
        let err = j.mark_sent(a).unwrap_err();
        assert!(
            matches!(err, JournalError::UnknownId { id } if id == a),
            "{err}"
        );
        let err = j.mark_sent(EntryId(42)).unwrap_err();
        assert_eq!(err.to_string(), "no pending message has journal id 42");
    }

    #[test]
    fn torn_tails_of_every_length_are_cut_off() {
        let built = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        for cut in 0..=built.bytes.len() {
            let (boundary, expected) = built.at(cut);
            let r = Journal::recover_from_bytes(&built.bytes[..cut])
                .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!(r.pending, expected, "cut at {cut}");
            assert_eq!(r.valid_len, boundary, "cut at {cut}");
            assert_eq!(
                r.torn_tail.is_some(),
                cut as u64 != boundary,
                "cut at {cut}"
            );
            if let Some(t) = &r.torn_tail {
                assert_eq!((t.offset, t.offset + t.len), (boundary, cut as u64));
            }

            // Through the file: open cuts the tail off (and compacts).
            write_private(&path, &built.bytes[..cut]);
            let (j, pending) = Journal::open_with(&path, fast()).unwrap();
            assert_eq!(pending, expected, "open, cut at {cut}");
            assert_eq!(j.file_len(), fs::metadata(&path).unwrap().len());
            drop(j);
            let again = Journal::recover_from_bytes(&fs::read(&path).unwrap()).unwrap();
            assert_eq!(again.torn_tail, None, "cut at {cut}");
            assert_eq!(again.pending, expected, "reread, cut at {cut}");
        }
    }

    /// The rule of the module docs for a byte flipped at `at`.
    fn check_flip(built: &Built, at: usize, xor: u8) {
        let mut bytes = built.bytes.clone();
        bytes[at] ^= xor;
        let r = Journal::recover_from_bytes(&bytes);
        if at < 8 {
            assert_eq!(
                r.unwrap_err(),
                Corrupt {
                    offset: 0,
                    problem: Problem::BadMagic
                }
            );
            return;
        }
        if at < FILE_HEADER_LEN as usize {
            let e = r.unwrap_err();
            assert_eq!(e.offset, 8);
            assert!(matches!(e.problem, Problem::UnsupportedVersion(_)), "{e}");
            return;
        }
        let records = built.records();
        let &(start, end) = records
            .iter()
            .find(|(s, e)| (*s..*e).contains(&at))
            .unwrap();
        let in_header = at - start < HEADER_LEN;
        if end == bytes.len() {
            // The last record: a torn tail.
            let r = r.unwrap_or_else(|e| panic!("flip at {at} in the last record: {e}"));
            let torn = r.torn_tail.expect("torn");
            assert_eq!(torn.offset, start as u64);
            assert_eq!(torn.len, (end - start) as u64);
            assert_eq!(
                matches!(torn.cause, Problem::HeaderCrc { .. }),
                in_header,
                "{}",
                torn.cause
            );
            assert_eq!(r.pending, built.at(start).1);
        } else {
            let e = r.expect_err("a flip before the last record is corruption");
            assert_eq!(e.offset, start as u64, "flip at {at}: {e}");
            if in_header {
                assert!(matches!(e.problem, Problem::HeaderCrc { .. }), "{e}");
            } else {
                assert!(matches!(e.problem, Problem::PayloadCrc { .. }), "{e}");
            }
            assert!(
                e.to_string().contains(&format!("byte offset {start}")),
                "{e}"
            );
        }
    }

    #[test]
    fn a_flipped_byte_anywhere_is_corruption_or_a_torn_last_record() {
        let built = sample();
        for at in 0..built.bytes.len() {
            for xor in [0x01, 0x80, 0xff] {
                check_flip(&built, at, xor);
            }
        }
    }

    #[test]
    fn corruption_is_reported_with_path_and_offset_and_the_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut bytes = file_header().to_vec();
        encode_message(&mut bytes, 0, &msg(0));
        let garbage_at = bytes.len();
        bytes.extend_from_slice(b"\xee\xee\xee\xee\xee");
        encode_message(&mut bytes, 1, &msg(1));
        write_private(&path, &bytes);
        let err = Journal::open_with(&path, fast()).unwrap_err();
        match &err {
            JournalError::Corrupt {
                offset, problem, ..
            } => {
                assert_eq!(*offset, garbage_at as u64);
                assert!(matches!(problem, Problem::HeaderCrc { .. }), "{problem}");
            }
            other => panic!("{other}"),
        }
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("byte offset {garbage_at}")),
            "{text}"
        );
        assert!(text.contains("CRC mismatch"), "{text}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn intact_records_that_make_no_sense_are_errors_even_at_the_end() {
        let header = file_header().to_vec();
        let at = FILE_HEADER_LEN;
        let check = |bytes: &[u8], offset: u64, want: &dyn Fn(&Problem) -> bool| {
            let e = Journal::recover_from_bytes(bytes).unwrap_err();
            assert_eq!(e.offset, offset, "{e}");
            assert!(want(&e.problem), "{e}");
        };

        let mut b = header.clone();
        frame_record(&mut b, 9, b"x");
        check(&b, at, &|p| *p == Problem::UnknownType(9));

        let mut b = header.clone();
        encode_sent(&mut b, 5);
        check(&b, at, &|p| *p == Problem::UnknownSent(5));

        let mut b = header.clone();
        encode_message(&mut b, 3, &msg(0));
        let second = b.len() as u64;
        encode_message(&mut b, 3, &msg(1));
        check(&b, second, &|p| {
            *p == Problem::IdNotIncreasing { id: 3, previous: 3 }
        });

        let mut b = header.clone();
        frame_record(&mut b, TYPE_MESSAGE, b"short");
        check(&b, at, &|p| matches!(p, Problem::Malformed { .. }));

        let mut b = header.clone();
        frame_record(&mut b, TYPE_SENT, &[0; 9]);
        check(&b, at, &|p| {
            matches!(
                p,
                Problem::Malformed {
                    field: "sent record",
                    ..
                }
            )
        });

        // A topic length pointing past the end of the record.
        let mut payload = Vec::new();
        payload.extend_from_slice(&0u64.to_be_bytes());
        payload.push(0);
        payload.extend_from_slice(&1000u32.to_be_bytes());
        let mut b = header.clone();
        frame_record(&mut b, TYPE_MESSAGE, &payload);
        check(&b, at, &|p| {
            matches!(
                p,
                Problem::Malformed {
                    field: "message topic",
                    ..
                }
            )
        });

        // A header count far above what the record holds.
        let mut payload = Vec::new();
        payload.extend_from_slice(&0u64.to_be_bytes());
        payload.push(0);
        payload.extend_from_slice(&0u32.to_be_bytes());
        payload.extend_from_slice(&NULL_LEN.to_be_bytes());
        payload.extend_from_slice(&NULL_LEN.to_be_bytes());
        payload.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut b = header.clone();
        frame_record(&mut b, TYPE_MESSAGE, &payload);
        check(&b, at, &|p| matches!(p, Problem::Malformed { .. }));

        // Unknown flag bits.
        let mut b = header.clone();
        encode_message(&mut b, 0, &msg(1));
        let flags = at as usize + HEADER_LEN + 8;
        b[flags] |= 0x80;
        let payload = b[at as usize + HEADER_LEN..].to_vec();
        b.truncate(at as usize);
        frame_record(&mut b, TYPE_MESSAGE, &payload);
        check(&b, at, &|p| {
            matches!(
                p,
                Problem::Malformed {
                    field: "message flags",
                    ..
                }
            )
        });
    }

    /// A header with a right CRC claiming a payload above the cap.
    fn oversized_header() -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&((MAX_PAYLOAD_LEN + 1) as u32).to_be_bytes());
        h[8] = TYPE_MESSAGE;
        let crc = crc32c::crc32c(&h[..9]);
        h[9..13].copy_from_slice(&crc.to_be_bytes());
        h
    }

    #[test]
    fn a_length_above_the_cap_is_never_allocated() {
        let mut b = file_header().to_vec();
        encode_message(&mut b, 0, &msg(0));
        let bad = b.len() as u64;
        b.extend_from_slice(&oversized_header());
        b.extend_from_slice(&[1; 100]);
        // Nothing intact after it: a torn tail.
        let r = Journal::recover_from_bytes(&b).unwrap();
        assert_eq!(ids(&r.pending), [0]);
        let torn = r.torn_tail.unwrap();
        assert_eq!(torn.offset, bad);
        assert_eq!(
            torn.cause,
            Problem::BadLength {
                len: MAX_PAYLOAD_LEN + 1
            }
        );
        // An intact record after it: corruption.
        encode_message(&mut b, 1, &msg(1));
        let e = Journal::recover_from_bytes(&b).unwrap_err();
        assert_eq!(e.offset, bad);
        assert_eq!(
            e.problem,
            Problem::BadLength {
                len: MAX_PAYLOAD_LEN + 1
            }
        );
    }

    #[test]
    fn file_headers_torn_zeroed_foreign_and_future() {
        let header = file_header();
        for n in 1..header.len() {
            let r = Journal::recover_from_bytes(&header[..n]).unwrap();
            assert_eq!(r.valid_len, 0);
            assert_eq!(r.torn_tail.unwrap().offset, 0);
        }
        let r = Journal::recover_from_bytes(&[0; 40]).unwrap();
        assert_eq!((r.valid_len, r.torn_tail.unwrap().len), (0, 40));
        assert!(Journal::recover_from_bytes(&[])
            .unwrap()
            .torn_tail
            .is_none());

        for foreign in [&b"SKOX"[..], b"hello, this is not a journal"] {
            assert_eq!(
                Journal::recover_from_bytes(foreign).unwrap_err(),
                Corrupt {
                    offset: 0,
                    problem: Problem::BadMagic
                }
            );
        }
        let mut future = header;
        future[11] = 2;
        assert_eq!(
            Journal::recover_from_bytes(&future).unwrap_err(),
            Corrupt {
                offset: 8,
                problem: Problem::UnsupportedVersion(2)
            }
        );

        // Open starts a torn or zeroed file over with a fresh header.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        for bytes in [&header[..5], &[0; 40][..]] {
            write_private(&path, bytes);
            let (j, pending) = Journal::open_with(&path, fast()).unwrap();
            assert!(pending.is_empty());
            drop(j);
            assert_eq!(fs::read(&path).unwrap(), header);
        }
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let built = sample();
        let mut bytes = built.bytes.clone();
        bytes.extend_from_slice(&[0; 100]);
        let r = Journal::recover_from_bytes(&bytes).unwrap();
        assert_eq!(r.pending, built.states.last().unwrap().1);
        let torn = r.torn_tail.unwrap();
        assert_eq!((torn.offset, torn.len), (built.bytes.len() as u64, 100));
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_private_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (j, _) = Journal::open_with(&path, fast()).unwrap();
        drop(j);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Journal::open_with(&path, fast()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Permissions { mode: 0o644, path: p } if *p == path),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("0644"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        // Refused without being touched.
        assert_eq!(fs::read(&path).unwrap(), file_header());

        fs::set_permissions(&path, fs::Permissions::from_mode(0o620)).unwrap();
        assert!(matches!(
            Journal::open_with(&path, fast()),
            Err(JournalError::Permissions { mode: 0o620, .. })
        ));
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, _) = Journal::open_with(&path, fast()).unwrap();
        let err = Journal::open_with(&path, fast()).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("another publisher"), "{err}");

        // Still locked after a rewrite replaced the file.
        let a = j.append(&msg(0)).unwrap();
        j.append(&msg(1)).unwrap();
        j.mark_sent(a).unwrap();
        j.compact().unwrap();
        let err = Journal::open_with(&path, fast()).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err}");

        drop(j);
        let (_, pending) = Journal::open_with(&path, fast()).unwrap();
        assert_eq!(ids(&pending), [1]);
    }

    #[test]
    fn a_directory_is_not_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let err = Journal::open_with(dir.path(), fast()).unwrap_err();
        assert!(matches!(err, JournalError::NotAFile { .. }), "{err}");
    }

    #[test]
    fn marking_everything_sent_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, _) = Journal::open(&path).unwrap();
        let appended: Vec<_> = (0..5).map(|i| j.append(&msg(i)).unwrap()).collect();
        let full = j.file_len();
        for i in [3, 0, 4, 1] {
            j.mark_sent(appended[i]).unwrap();
        }
        assert!(j.file_len() > full);
        j.mark_sent(appended[2]).unwrap();
        assert_eq!(j.file_len(), FILE_HEADER_LEN);
        assert_eq!(fs::metadata(&path).unwrap().len(), FILE_HEADER_LEN);
        // Ids are not reused while open.
        assert_eq!(j.append(&msg(9)).unwrap().get(), 5);
        j.mark_sent(EntryId(5)).unwrap();
        drop(j);
        let (j, pending) = Journal::open(&path).unwrap();
        assert!(pending.is_empty());
        assert_eq!(j.file_len(), FILE_HEADER_LEN);
    }

    #[test]
    fn open_rewrites_a_journal_with_dead_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let options = JournalOptions {
            compact_after: u64::MAX,
            ..fast()
        };
        let (mut j, _) = Journal::open_with(&path, options.clone()).unwrap();
        let appended: Vec<_> = (0..5).map(|i| j.append(&msg(i)).unwrap()).collect();
        for &id in &appended[..3] {
            j.mark_sent(id).unwrap();
        }
        drop(j);
        let before = fs::metadata(&path).unwrap().len();
        let (j, pending) = Journal::open_with(&path, options.clone()).unwrap();
        assert_eq!(ids(&pending), [3, 4]);
        let live: u64 = [3, 4]
            .iter()
            .map(|&i| RECORD_HEADER_LEN + Journal::payload_len(&msg(i)))
            .sum();
        assert_eq!(j.file_len(), FILE_HEADER_LEN + live);
        assert!(j.file_len() < before);
        assert_eq!(fs::metadata(&path).unwrap().len(), j.file_len());
        drop(j);
        let (_, again) = Journal::open_with(&path, options).unwrap();
        assert_eq!(again, pending);
    }

    #[test]
    fn dead_records_are_compacted_while_messages_are_pending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let options = JournalOptions {
            compact_after: 0,
            ..fast()
        };
        let (mut j, _) = Journal::open_with(&path, options.clone()).unwrap();
        let appended: Vec<_> = (0..10).map(|i| j.append(&msg(i)).unwrap()).collect();
        let full = j.file_len();
        for &id in &appended[..8] {
            j.mark_sent(id).unwrap();
            // Never more dead than live bytes (plus the mark just written).
            assert!(j.dead_len() <= j.live + 21, "{j:?}");
        }
        assert!(j.file_len() < full, "{} < {full}", j.file_len());
        assert_eq!(fs::metadata(&path).unwrap().len(), j.file_len());
        let more: Vec<_> = (10..12).map(|i| j.append(&msg(i)).unwrap()).collect();
        j.mark_sent(appended[8]).unwrap();
        drop(j);
        let (_, pending) = Journal::open_with(&path, options).unwrap();
        assert_eq!(ids(&pending), [9, more[0].get(), more[1].get()]);
        assert_eq!(pending[0].message, msg(9));
        assert_eq!(pending[2].message, msg(11));
    }

    #[test]
    fn a_stale_compaction_file_is_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let stale = dir.path().join(".j.compact");
        write_private(&stale, b"half a rewrite");
        let (_j, _) = Journal::open_with(&path, fast()).unwrap();
        assert!(!stale.exists());
    }

    #[cfg(unix)]
    #[test]
    fn compaction_keeps_a_symlinked_journal_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (mut j, _) = Journal::open_with(&link, fast()).unwrap();
        assert_eq!(j.path(), fs::canonicalize(&real).unwrap());
        let a = j.append(&msg(0)).unwrap();
        j.append(&msg(1)).unwrap();
        j.mark_sent(a).unwrap();
        j.compact().unwrap();
        drop(j);
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let (_, pending) = Journal::open_with(&link, fast()).unwrap();
        assert_eq!(ids(&pending), [1]);
    }

    #[test]
    fn a_message_at_the_cap_fits_and_one_byte_more_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let cap: u64 = 1 << 20;
        let options = JournalOptions {
            max_payload_len: cap,
            ..fast()
        };
        let mut big = JournalMessage {
            topic: "big".into(),
            value: Some(Bytes::new()),
            headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
            ..JournalMessage::default()
        };
        let fixed = Journal::payload_len(&big);
        big.value = Some(Bytes::from(vec![7u8; (cap - fixed) as usize]));
        assert_eq!(Journal::payload_len(&big), cap);

        let (mut j, _) = Journal::open_with(&path, options.clone()).unwrap();
        let keep = j.append(&msg(0)).unwrap();
        let id = j.append(&big).unwrap();
        let len = j.file_len();
        assert_eq!(
            len,
            FILE_HEADER_LEN + 2 * RECORD_HEADER_LEN + Journal::payload_len(&msg(0)) + cap
        );
        let mut over = big.clone();
        over.value = Some(Bytes::from(vec![7u8; (cap - fixed + 1) as usize]));
        let err = j.append(&over).unwrap_err();
        assert!(
            matches!(err, JournalError::TooLarge { len, max } if len == cap + 1 && max == cap),
            "{err}"
        );
        assert_eq!(j.file_len(), len);
        assert_eq!(fs::metadata(&path).unwrap().len(), len);
        drop(j);

        let (_, pending) = Journal::open_with(&path, options).unwrap();
        assert_eq!(ids(&pending), [keep.get(), id.get()]);
        assert_eq!(pending[1].message, big);
        // A lower limit does not make the journal unreadable.
        let (mut j, pending) = Journal::open_with(
            &path,
            JournalOptions {
                max_payload_len: 10,
                ..fast()
            },
        )
        .unwrap();
        assert_eq!(pending[1].message, big);
        assert!(matches!(
            j.append(&msg(1)),
            Err(JournalError::TooLarge { max: 10, .. })
        ));
    }

    #[test]
    fn fsync_policies_all_work() {
        for fsync in [
            FsyncPolicy::EveryAppend,
            FsyncPolicy::Interval(Duration::from_millis(1)),
            FsyncPolicy::Interval(Duration::from_secs(3600)),
            FsyncPolicy::Never,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("j");
            let options = JournalOptions {
                fsync,
                ..JournalOptions::default()
            };
            let (mut j, _) = Journal::open_with(&path, options.clone()).unwrap();
            let a = j.append(&msg(0)).unwrap();
            j.append(&msg(1)).unwrap();
            j.mark_sent(a).unwrap();
            j.sync().unwrap();
            assert!(!j.dirty);
            j.append(&msg(2)).unwrap();
            drop(j);
            let (_, pending) = Journal::open_with(&path, options).unwrap();
            assert_eq!(ids(&pending), [1, 2], "{fsync:?}");
        }
    }

    #[test]
    fn default_options_are_as_documented() {
        let o = JournalOptions::default();
        assert_eq!(o.fsync, FsyncPolicy::EveryAppend);
        assert_eq!(o.max_payload_len, MAX_PAYLOAD_LEN);
        assert_eq!(o.compact_after, 64 << 20);
        assert_eq!(&file_header()[..8], b"SKOTCHJR");
        assert_eq!(&file_header()[8..], &[0, 0, 0, 1]);
    }

    fn bytes_strategy() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
    }

    fn message_strategy() -> impl Strategy<Value = JournalMessage> {
        (
            "[a-z._-]{0,12}",
            proptest::option::of(bytes_strategy()),
            proptest::option::of(bytes_strategy()),
            proptest::collection::vec((".{0,6}", proptest::option::of(bytes_strategy())), 0..4),
            proptest::option::of(any::<i64>()),
        )
            .prop_map(|(topic, key, value, headers, timestamp)| JournalMessage {
                topic,
                key,
                value,
                headers,
                timestamp,
            })
    }

    fn build_ops() -> impl Strategy<Value = Vec<BuildOp>> {
        proptest::collection::vec(
            prop_oneof![
                3 => message_strategy().prop_map(BuildOp::Append),
                2 => any::<usize>().prop_map(BuildOp::Mark),
            ],
            1..16,
        )
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(JournalMessage),
        Mark(usize),
        Reopen,
        Compact,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn recovery_gives_exactly_the_unsent_messages_in_order(
            ops in proptest::collection::vec(
                prop_oneof![
                    4 => message_strategy().prop_map(Op::Append),
                    3 => any::<usize>().prop_map(Op::Mark),
                    1 => Just(Op::Reopen),
                    1 => Just(Op::Compact),
                ],
                0..40,
            ),
            compact_after in prop_oneof![Just(0u64), Just(200), Just(u64::MAX)],
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("j");
            let options = JournalOptions { compact_after, ..fast() };
            let (mut j, pending) = Journal::open_with(&path, options.clone()).unwrap();
            prop_assert!(pending.is_empty());
            let mut model: Vec<Pending> = Vec::new();
            for op in ops {
                match op {
                    Op::Append(m) => {
                        let id = j.append(&m).unwrap();
                        if let Some(last) = model.last() {
                            prop_assert!(id > last.id);
                        }
                        model.push(Pending { id, message: m });
                    }
                    Op::Mark(i) if !model.is_empty() => {
                        let p = model.remove(i % model.len());
                        j.mark_sent(p.id).unwrap();
                    }
                    Op::Mark(_) => {}
                    Op::Reopen => {
                        drop(j);
                        let (again, pending) = Journal::open_with(&path, options.clone()).unwrap();
                        prop_assert_eq!(&pending, &model);
                        j = again;
                    }
                    Op::Compact => j.compact().unwrap(),
                }
                prop_assert_eq!(j.pending_count(), model.len());
                prop_assert_eq!(j.file_len(), fs::metadata(&path).unwrap().len());
            }
            drop(j);
            let (_, pending) = Journal::open_with(&path, options).unwrap();
            prop_assert_eq!(pending, model);
        }

        #[test]
        fn every_cut_of_a_random_journal_recovers_its_prefix(ops in build_ops()) {
            let built = build(&ops);
            for cut in 0..=built.bytes.len() {
                let (boundary, expected) = built.at(cut);
                let r = Journal::recover_from_bytes(&built.bytes[..cut]).unwrap();
                prop_assert_eq!(r.valid_len, boundary);
                prop_assert_eq!(r.pending, expected);
            }
        }

        #[test]
        fn a_random_flip_is_corruption_or_a_torn_last_record(
            ops in build_ops(),
            at in any::<prop::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let built = build(&ops);
            check_flip(&built, at.index(built.bytes.len()), xor);
        }

        #[test]
        fn payload_len_is_the_encoded_length(m in message_strategy(), id in any::<u64>()) {
            let mut out = Vec::new();
            encode_message(&mut out, id, &m);
            prop_assert_eq!(out.len() as u64, RECORD_HEADER_LEN + Journal::payload_len(&m));
            let mut file = file_header().to_vec();
            file.extend_from_slice(&out);
            let r = Journal::recover_from_bytes(&file).unwrap();
            prop_assert_eq!(r.pending, vec![Pending { id: EntryId(id), message: m }]);
            prop_assert_eq!(r.next_id, EntryId(id.saturating_add(1)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut with_header = file_header().to_vec();
            with_header.extend_from_slice(&data);
            for bytes in [&data[..], &with_header[..]] {
                if let Ok(r) = Journal::recover_from_bytes(bytes) {
                    prop_assert!(r.valid_len <= bytes.len() as u64);
                }
            }
        }
    }
}
