//! The `skotch` command line: publish, subscribe and list topics over
//! `kafka://` URLs, and manage stored credentials, like hop-client's `hop`
//! command, and run an in-memory cluster for tests (`mock-cluster`).
//!
//! Errors are one line on stderr and exit code 1; usage errors exit 2.
#![forbid(unsafe_code)]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use skotch::client::Compression;
use skotch::stream::{
    CredentialSource, FsyncPolicy, GroupOptions, GroupProtocol, Headers, JournalOptions, Message,
    Metadata, RobustWriter, StartPosition, Stream, StreamError, WriteOptions,
};

mod auth_cmd;
mod cli_support;
mod groups_cmd;
#[cfg(feature = "mock")]
mod mock_cluster_cmd;
mod signals;
mod topics_cmd;

#[derive(Parser)]
#[command(
    name = "skotch",
    version,
    about = "Publish and subscribe to Apache Kafka over kafka:// URLs"
)]
struct Cli {
    /// How long to try reaching the brokers before giving up, in ms.
    #[arg(long, global = true, default_value_t = 10_000, value_name = "MS")]
    timeout: u64,
    /// The credentials file [default: $SKOTCH_AUTH_FILE, else
    /// $XDG_CONFIG_HOME/skotch/auth.toml, else ~/.config/skotch/auth.toml].
    #[arg(long, global = true, value_name = "PATH")]
    auth_file: Option<PathBuf>,
    /// Connect without credentials, even if the credentials file has some
    /// for the broker (hop's --no-auth).
    #[arg(long, global = true, conflicts_with = "auth_file")]
    no_auth: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish messages: one per line from stdin, or one per FILE.
    Publish {
        /// kafka://[user@]broker[:port][,...]/topic
        url: String,
        /// Files to publish, one message each; stdin (one message per line) when none.
        files: Vec<PathBuf>,
        /// Message model.
        #[arg(long, short, value_enum, default_value_t = Format::Blob, ignore_case = true)]
        format: Format,
        /// Header to add, KEY=VALUE; repeat for more (keys may repeat).
        #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
        headers: Vec<String>,
        /// Mark the messages as tests (`_test` header); readers skip them
        /// unless asked for them (`subscribe --test`).
        #[arg(long, short)]
        test: bool,
        /// Seconds a message may take to be acknowledged before publishing
        /// fails (hop's `publish --timeout`; skotch's global `--timeout` is
        /// the connect timeout). 0, the default, is no limit.
        #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
        produce_timeout: f64,
        /// Topic to publish to when the URL names several (or none).
        #[arg(long)]
        topic: Option<String>,
        /// Compress record batches (Java `compression.type`).
        #[arg(long, value_enum, default_value_t = Codec::None)]
        compression: Codec,
        /// Compression level (Java `compression.<codec>.level`): gzip 1-9,
        /// lz4 1-17, zstd -131072-22; the codec's default when absent.
        #[arg(long, allow_hyphen_values = true)]
        compression_level: Option<i32>,
        /// Journal every message in this file before sending it, and first
        /// re-send, in order, what an earlier run left unacknowledged in it
        /// (hop's RobustProducer): at least once, across crashes. Stdin is
        /// then published line by line as it comes (a bad line stops there).
        #[arg(long, value_name = "PATH")]
        journal: Option<PathBuf>,
        /// With --journal: when the journal is fsynced. every: each batch
        /// of messages before it is sent (survives a power loss); interval:
        /// at most every 200 ms (survives a crash of skotch, not of the
        /// machine); never.
        #[arg(long, value_enum, default_value_t = Fsync::Every, requires = "journal")]
        fsync: Fsync,
    },
    /// Print messages from the URL's topics.
    Subscribe {
        /// kafka://[user@]broker[:port][,...]/topic[,topic2...]
        url: String,
        /// Where to start in each partition (EARLIEST or LATEST, any case).
        #[arg(long, short, value_enum, default_value_t = Start::Latest, ignore_case = true)]
        start_at: Start,
        /// Stop once every partition reached its end.
        #[arg(long, short = 'e')]
        until_eos: bool,
        /// Print one JSON object per record (topic, partition, offset,
        /// timestamp, key, headers, content).
        #[arg(long, short)]
        json: bool,
        /// Print test messages too (hop's `--test`); they are skipped by
        /// default.
        #[arg(long, short)]
        test: bool,
        /// What follows each printed message unless it ends with it
        /// already (hop's `--delimiter`); backslash escapes such as `\n`,
        /// `\t`, `\0` and `\x1e` are understood. Not used with --json.
        #[arg(long, short = 'D', default_value = "\\n")]
        delimiter: String,
        /// Read as a member of this consumer group: the group shares the
        /// partitions among its members and remembers how far they got, so
        /// a later run continues there (`--start-at` applies only where the
        /// group has committed nothing).
        #[arg(long, short, value_name = "ID", visible_alias = "group-id")]
        group: Option<String>,
        /// With --group: commit a record only after it was printed (hop's
        /// manual commits with mark_done), instead of once it was read.
        #[arg(long, requires = "group")]
        manual_commit: bool,
        /// With --group: the group protocol, classic or consumer (KIP-848).
        #[arg(long, value_enum, default_value_t = Protocol::Classic, requires = "group")]
        group_protocol: Protocol,
        /// With --group: the assignor (classic: range, roundrobin,
        /// cooperative-sticky; consumer: the broker's uniform or range).
        #[arg(long, requires = "group")]
        assignor: Option<String>,
        /// With --group: a static member id (group.instance.id, KIP-345).
        #[arg(long, requires = "group", value_name = "ID")]
        group_instance_id: Option<String>,
    },
    /// Consumer groups: list them, describe one (members, assignment,
    /// committed offsets, lag).
    Groups {
        #[command(subcommand)]
        cmd: groups_cmd::GroupsCommand,
    },
    /// Topics: list, create, delete, describe (partitions, leaders,
    /// replicas, ISR, configs).
    Topics {
        #[command(subcommand)]
        cmd: topics_cmd::TopicsCommand,
    },
    /// Print skotch's version (hop's `hop version`).
    Version,
    /// Stored credentials (hop's `hop auth`): add, list, remove, locate.
    Auth {
        #[command(subcommand)]
        cmd: auth_cmd::AuthCommand,
    },
    /// Run an in-memory Kafka cluster for tests (skotch-mock) until
    /// Ctrl-C or SIGTERM; prints its bootstrap address (one line) first.
    #[cfg(feature = "mock")]
    MockCluster(mock_cluster_cmd::MockClusterArgs),
    /// List the topics of the cluster (the same as `topics list`).
    ListTopics {
        /// kafka://[user@]broker[:port][,...]/
        url: String,
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Blob,
    /// VOEvent XML files (hop's VOEVENT), sent byte for byte.
    Voevent,
    /// RFC 822-style GCN circular files (hop's CIRCULAR), sent as JSON.
    Circular,
    /// GCN text notice files (hop's GCNTEXTNOTICE), sent byte for byte.
    Gcntextnotice,
    /// Avro container files holding one record (hop's AVRO), re-encoded
    /// as hop does (null codec).
    Avro,
    /// JSON files `{"url": ...}` pointing at content stored elsewhere
    /// (hop's EXTERNAL), sent as `{"url": ...}`.
    External,
}

#[derive(Clone, Copy, ValueEnum)]
enum Protocol {
    Classic,
    Consumer,
}

#[derive(Clone, Copy, ValueEnum)]
enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<Codec> for Compression {
    fn from(c: Codec) -> Self {
        match c {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Fsync {
    Every,
    Interval,
    Never,
}

impl From<Fsync> for FsyncPolicy {
    fn from(f: Fsync) -> Self {
        match f {
            Fsync::Every => FsyncPolicy::EveryAppend,
            Fsync::Interval => FsyncPolicy::Interval(Duration::from_millis(200)),
            Fsync::Never => FsyncPolicy::Never,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Start {
    Earliest,
    Latest,
}

type CliResult = Result<(), String>;

/// The hop-client release whose wire formats and CLI skotch follows.
const HOP_COMPAT: &str = "0.13";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SKOTCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skotch: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skotch: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    let mut stream = Stream::new();
    stream.options.connect_timeout = Duration::from_millis(cli.timeout);
    stream.options.credentials = match (&cli.auth_file, cli.no_auth) {
        (_, true) => CredentialSource::None,
        (Some(path), false) => CredentialSource::File(path.clone()),
        (None, false) => CredentialSource::DefaultFile,
    };
    match cli.command {
        Command::Publish {
            url,
            files,
            format,
            headers,
            test,
            produce_timeout,
            topic,
            compression,
            compression_level,
            journal,
            fsync,
        } => {
            stream.options.compression = compression.into();
            stream.options.compression_level = compression_level;
            stream.options.produce_timeout =
                Duration::try_from_secs_f64(produce_timeout).map_err(|_| {
                    format!("--produce-timeout {produce_timeout}: expected seconds, 0 or more")
                })?;
            match journal {
                Some(journal) => {
                    let options = WriteOptions {
                        topic,
                        headers: parse_headers(&headers)?,
                        test,
                        key: None,
                    };
                    let fsync = fsync.into();
                    publish_journaled(&stream, &url, &journal, fsync, &files, format, options).await
                }
                None => publish(&stream, &url, &files, format, &headers, test, topic).await,
            }
        }
        Command::Subscribe {
            url,
            start_at,
            until_eos,
            json,
            test,
            delimiter,
            group,
            manual_commit,
            group_protocol,
            assignor,
            group_instance_id,
        } => {
            stream.options.ignore_test = !test;
            let mut stream = stream
                .start_at(match start_at {
                    Start::Earliest => StartPosition::Earliest,
                    Start::Latest => StartPosition::Latest,
                })
                .until_eos(until_eos);
            if let Some(id) = group {
                let mut g = GroupOptions::new(id);
                g.auto_commit = !manual_commit;
                g.protocol = match group_protocol {
                    Protocol::Classic => GroupProtocol::Classic,
                    Protocol::Consumer => GroupProtocol::Consumer,
                };
                g.assignor = assignor;
                g.instance_id = group_instance_id;
                stream = stream.group(g);
            }
            let delimiter = unescape(&delimiter)?;
            subscribe(&stream, &url, json, &delimiter).await
        }
        Command::ListTopics { url, all } => {
            topics_cmd::list(&url, all, false, &stream, cli.timeout).await
        }
        Command::Groups { cmd } => groups_cmd::run(cmd, &stream, cli.timeout).await,
        Command::Topics { cmd } => topics_cmd::run(cmd, &stream, cli.timeout).await,
        Command::Version => cli_support::emit(&format!(
            "skotch {} (Kafka protocol client, hop-client {} compatible)\n",
            env!("CARGO_PKG_VERSION"),
            HOP_COMPAT
        )),
        Command::Auth { cmd } => auth_cmd::run(cmd, cli.auth_file.as_deref()),
        #[cfg(feature = "mock")]
        Command::MockCluster(args) => mock_cluster_cmd::run(args).await,
    }
}

fn err(e: StreamError) -> String {
    e.to_string()
}

fn parse_headers(raw: &[String]) -> Result<Headers, String> {
    let mut h = Headers::new();
    for kv in raw {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("header {kv:?} is not KEY=VALUE"))?;
        h.push(k, Bytes::copy_from_slice(v.as_bytes()));
    }
    h.validate().map_err(|e| e.to_string())?;
    Ok(h)
}

fn to_message(data: Vec<u8>, format: Format, what: &str) -> Result<Message, String> {
    use skotch::stream::{Circular, GcnTextNotice, VoEvent};
    // The alert formats load a file as hop's `Model.load_file` does.
    let failed = |e: skotch::stream::DecodeError| format!("{what}: {e}");
    match format {
        Format::Blob => Ok(Message::Blob(data.into())),
        Format::Json => {
            let text = String::from_utf8(data).map_err(|_| format!("{what}: not UTF-8 text"))?;
            Message::json_from_str(&text).map_err(|e| format!("{what}: {e}"))
        }
        Format::Voevent => VoEvent::from_xml(data)
            .map(Message::VoEvent)
            .map_err(failed),
        Format::Circular => Circular::from_file_bytes(&data)
            .map(Message::Circular)
            .map_err(failed),
        Format::Gcntextnotice => GcnTextNotice::from_text(data)
            .map(Message::GcnTextNotice)
            .map_err(failed),
        // `AvroBlob.load_file`: single_record=True, so one record.
        Format::Avro => skotch::stream::Avro::deserialize(data.into())
            .map(Message::Avro)
            .map_err(failed),
        Format::External => skotch::stream::External::load(&data)
            .map(Message::External)
            .map_err(failed),
    }
}

async fn publish(
    stream: &Stream,
    url: &str,
    files: &[PathBuf],
    format: Format,
    headers: &[String],
    test: bool,
    topic: Option<String>,
) -> CliResult {
    let headers = parse_headers(headers)?;
    // Read and check all input before connecting: a bad line publishes
    // nothing rather than half the input.
    let mut messages = Vec::new();
    if files.is_empty() {
        for (n, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line.map_err(|e| format!("reading stdin: {e}"))?;
            // As `hop publish`: one message per line suits only these.
            if !matches!(format, Format::Json | Format::Blob) {
                return Err(
                    "reading stdin is only allowed for the blob and json formats; give files"
                        .into(),
                );
            }
            messages.push(to_message(
                line.into_bytes(),
                format,
                &format!("stdin line {}", n + 1),
            )?);
        }
    } else {
        for f in files {
            let data = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
            messages.push(to_message(data, format, &f.display().to_string())?);
        }
    }
    let mut shutdown = signals::Shutdown::install();
    let mut writer = stream.open_writer(url).await.map_err(err)?;
    let total = messages.len();
    let mut queued = 0;
    for m in messages {
        // Ctrl-C / SIGTERM: queue nothing more, deliver what was queued
        // (close below); a second signal aborts.
        if shutdown.is_requested() {
            break;
        }
        let options = WriteOptions {
            topic: topic.clone(),
            headers: headers.clone(),
            test,
            key: None,
        };
        tokio::select! {
            r = writer.write_with(m, options) => r.map_err(err)?,
            () = shutdown.requested() => break,
        }
        queued += 1;
    }
    writer.close().await.map_err(err)?;
    if queued < total {
        eprintln!("skotch: interrupted: published {queued} of {total} messages");
    }
    tracing::info!(count = queued, "published");
    Ok(())
}

/// `publish --journal`: through a [`RobustWriter`], which journals each
/// message before sending it and first re-sends what an earlier run left
/// unacknowledged. Input is read as it comes (stdin line by line, or file
/// by file): a line is the journal's once written to it, so a crash loses
/// at most the lines read but not yet journaled. Ctrl-C / SIGTERM: read no
/// more, deliver what was queued; a second signal aborts (what is not
/// acknowledged stays in the journal for the next run).
async fn publish_journaled(
    stream: &Stream,
    url: &str,
    journal: &Path,
    fsync: FsyncPolicy,
    files: &[PathBuf],
    format: Format,
    options: WriteOptions,
) -> CliResult {
    if files.is_empty() && !matches!(format, Format::Json | Format::Blob) {
        return Err(
            "reading stdin is only allowed for the blob and json formats; give files".into(),
        );
    }
    let mut shutdown = signals::Shutdown::install();
    let journal_options = JournalOptions {
        fsync,
        ..Default::default()
    };
    let mut writer = RobustWriter::open(stream, url, journal, journal_options)
        .await
        .map_err(|e| e.to_string())?;
    if writer.resent() > 0 {
        eprintln!(
            "skotch: re-sending {} message(s) left unacknowledged in journal {}",
            writer.resent(),
            journal.display()
        );
    }
    let mut input = read_input(files.to_vec())?;
    let mut interrupted = false;
    let mut failure = None;
    loop {
        let item = tokio::select! {
            item = input.recv() => item,
            () = shutdown.requested() => { interrupted = true; break; }
        };
        let Some(item) = item else { break };
        let message = match item.and_then(|(data, what)| to_message(data, format, &what)) {
            Ok(m) => m,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        tokio::select! {
            r = writer.write_with(message, options.clone()) => {
                if let Err(e) = r {
                    failure = Some(e.to_string());
                    break;
                }
            }
            () = shutdown.requested() => { interrupted = true; break; }
        }
    }
    drop(input);
    let stats = writer.close().await.map_err(|e| {
        format!(
            "{e}{}",
            failure
                .as_deref()
                .map(|f| format!(" (and the input stopped: {f})"))
                .unwrap_or_default()
        )
    })?;
    let resent = if stats.resent > 0 {
        format!(", {} of them re-sent from the journal", stats.resent)
    } else {
        String::new()
    };
    if let Some(f) = failure {
        return Err(format!(
            "{f} (published the {} message(s) before it{resent})",
            stats.delivered
        ));
    }
    if interrupted {
        eprintln!(
            "skotch: interrupted: published {} message(s){resent}",
            stats.delivered
        );
    }
    tracing::info!(count = stats.delivered, resent = stats.resent, "published");
    Ok(())
}

/// One message's bytes and its name for errors, or why reading failed.
type InputItem = Result<(Vec<u8>, String), String>;

/// Reads stdin line by line (or each file) on a thread of its own, as the
/// input comes; a blocked read never holds up the runtime or its exit.
fn read_input(files: Vec<PathBuf>) -> Result<tokio::sync::mpsc::Receiver<InputItem>, String> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let read = move || {
        if files.is_empty() {
            for (n, line) in std::io::stdin().lock().lines().enumerate() {
                let item = line
                    .map(|l| (l.into_bytes(), format!("stdin line {}", n + 1)))
                    .map_err(|e| format!("reading stdin: {e}"));
                let last = item.is_err();
                if tx.blocking_send(item).is_err() || last {
                    return;
                }
            }
        } else {
            for f in files {
                let item = std::fs::read(&f)
                    .map(|data| (data, f.display().to_string()))
                    .map_err(|e| format!("{}: {e}", f.display()));
                let last = item.is_err();
                if tx.blocking_send(item).is_err() || last {
                    return;
                }
            }
        }
    };
    std::thread::Builder::new()
        .name("skotch-input".into())
        .spawn(read)
        .map_err(|e| format!("cannot start the input thread: {e}"))?;
    Ok(rx)
}

/// Bytes as JSON: a string when they are UTF-8, else `{"base64": ...}`.
fn bytes_json(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

fn record_json(m: &Message, md: &Metadata) -> Value {
    json!({
        "topic": &*md.topic,
        "partition": md.partition,
        "offset": md.offset,
        "timestamp": md.timestamp,
        "key": md.key.as_deref().map(bytes_json),
        "headers": md.headers.iter().map(|(k, v)| json!([&**k, v.as_deref().map(bytes_json)])).collect::<Vec<_>>(),
        "format": m.format_name(),
        "content": match m {
            Message::Json(v) => v.clone(),
            Message::Blob(b) => bytes_json(b),
            // The alert models as hop's `asdict` (VOEvent without its raw XML).
            Message::VoEvent(v) => v.to_json(),
            Message::Circular(c) => c.to_json(),
            Message::GcnTextNotice(n) => n.to_json(),
            // The record (or records) as JSON, bytes as elsewhere here.
            Message::Avro(a) => a.content().to_json_with(&bytes_json),
            Message::External(e) => json!({"url": e.url}),
            _ => Value::Null,
        },
    })
}

/// hop's `--delimiter`: the text with Python's backslash escapes (`\n`,
/// `\t`, `\r`, `\0`, `\\`, `\xHH`) turned into bytes, as hop's
/// `unicode_escape` does for these.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let b = u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .ok_or_else(|| format!("--delimiter {text:?}: \\x needs two hex digits"))?;
                out.push(b);
            }
            other => {
                return Err(format!(
                    "--delimiter {text:?}: unknown escape \\{}",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(out)
}

/// A message as `hop subscribe` prints it: `bytes(message)` (JSON as
/// skotch writes it, the XML of a VOEvent, hop's text of a circular, a
/// notice's text, a blob's bytes, an Avro message's re-encoded container
/// file: hop 0.13's `subscribe` writes `bytes(message)`, not `str`).
fn printed(m: &Message) -> Bytes {
    match m {
        Message::Circular(c) => Bytes::from(c.to_rfc822()),
        other => other.serialize(),
    }
}

async fn subscribe(stream: &Stream, url: &str, as_json: bool, delimiter: &[u8]) -> CliResult {
    let mut shutdown = signals::Shutdown::install();
    let mut reader = stream.open_reader(url).await.map_err(err)?;
    let stdout = std::io::stdout();
    loop {
        // Ctrl-C / SIGTERM: stop reading; what was printed is committed
        // below, and the group is left.
        let item = tokio::select! {
            item = reader.read_with_metadata() => item,
            () = shutdown.requested() => break,
        };
        let Some(item) = item else { break };
        let (m, md) = item.map_err(err)?;
        let mut out = stdout.lock();
        let written = if as_json {
            writeln!(out, "{}", record_json(&m, &md))
        } else {
            // As `hop subscribe`: the message, then the delimiter unless
            // the message ends with it already.
            let text = printed(&m);
            out.write_all(&text).and_then(|()| {
                if text.ends_with(delimiter) {
                    Ok(())
                } else {
                    out.write_all(delimiter)
                }
            })
        };
        match written.and_then(|()| out.flush()) {
            // Printed: done (counts only with --manual-commit).
            Ok(()) => reader.mark_done(&md),
            // The reader went away (e.g. `| head`): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(format!("writing to stdout: {e}")),
        }
    }
    // Commit what was done and leave the group.
    reader.close().await.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn delimiters_unescape_like_hop() {
        assert_eq!(unescape("\\n").unwrap(), b"\n");
        assert_eq!(unescape("--\\t\\x1e\\0\\\\").unwrap(), b"--\t\x1e\0\\");
        assert_eq!(unescape("é").unwrap(), "é".as_bytes());
        assert!(unescape("\\x1").unwrap_err().contains("two hex digits"));
        assert!(unescape("\\q").unwrap_err().contains("unknown escape"));
    }
}
