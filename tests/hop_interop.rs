//! skotch against the real hop-client (0.13.0 from PyPI, in the venv
//! scripts/python-env makes), both ways, for every message model both
//! implement (VOEvent, GCN circular, GCN text notice, JSON, Blob, Avro), on
//! the single test broker:
//!
//! - hop writes every model (tests/python/hop_peer.py, hop's
//!   `Stream(auth=False).open(url, "w").write(...)`) → skotch's
//!   StreamReader reads the same models (equal to skotch's own loading of
//!   the same fixture file or content), the record values are the bytes
//!   skotch writes for them, and the headers are hop's standard ones as
//!   hop wrote them (byte for byte what hop's own reader sees);
//! - skotch's StreamWriter writes every model → hop's reader holds the same
//!   content (hop's `asdict` of its model equals skotch's fields), the
//!   record values are what hop writes, and the headers have the shape
//!   hop gives them;
//! - Avro: the containers differ only in their random sync marker, so
//!   records and schema are compared instead of bytes; several records in
//!   one message (`AvroBlob(single_record=False)`) are not readable as a
//!   model by hop's reader (it raises) nor skotch's (a Blob of the bytes),
//!   and both read the records when asked for a list;
//! - test messages: each reader skips the other's `_test` messages by
//!   default (skotch's `ignore_test`, hop's `ignoretest`) and sees them
//!   when asked;
//! - `_sender`: over SASL_PLAINTEXT, each side writes the authenticated
//!   user's name and the other reads it;
//! - the CLIs: `skotch publish -f voevent|circular|gcntextnotice|blob`,
//!   then `hop subscribe` and `skotch subscribe` print the same bytes, with
//!   and without `-t`.
//!
//! The models are a table ([`cases`]); a new model is a [`Model`] variant
//! with its arms in [`Case::spec`], [`Case::message`], [`Case::hop_class`]
//! and [`assert_hop_view`] (and in tests/python/hop_peer.py's `load` and
//! `content`). Each Python peer runs once per direction with every case
//! batched; the whole file takes about 6 s.
//!
//! Needs the broker from `scripts/kafka start` (SASL_PLAINTEXT on 9094 for
//! `_sender`) and PyPI access for the venv.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Instant;

use bytes::Bytes;
use serde_json::{json, Value};
use skotch::client::SecurityProtocol;
use skotch::stream::{
    Auth, Avro, AvroValue, Circular, CredentialSource, External, GcnTextNotice, Headers, Message,
    Metadata, StartPosition, Stream, VoEvent, WriteOptions,
};

/// The SASL_PLAINTEXT listener of the test broker (scripts/kafka).
const SASL_PLAINTEXT_PORT: u16 = 9094;

fn fixture(name: &str) -> PathBuf {
    common::root().join("stream/tests/fixtures").join(name)
}

/// A message model and its content.
#[derive(Clone)]
enum Model {
    /// A VOEvent XML fixture file (hop's `VOEvent.load_file`).
    VoEvent(&'static str),
    /// An RFC 822 circular fixture file (hop's `GCNCircular.load_file`).
    Circular(&'static str),
    /// A GCN text notice fixture file (hop's `GCNTextNotice.load_file`).
    GcnTextNotice(&'static str),
    /// A JSON document (hop's `JSONBlob`).
    Json(Value),
    /// Raw bytes (hop's `Blob`).
    Blob(&'static [u8]),
    /// A pointer to content at a URL (hop's `ExternalMessage`).
    External(&'static str),
    /// Avro records (hop's `AvroBlob`): `content` is one record, or with
    /// `single_record: false` a list of them; `schema` `None` lets both
    /// sides infer it (hop's `SchemaGenerator`).
    Avro {
        content: Value,
        schema: Option<Value>,
        single_record: bool,
    },
}

/// One message of the batch each side writes.
#[derive(Clone)]
struct Case {
    name: &'static str,
    model: Model,
    /// Written as a test message (`_test` header).
    test: bool,
    /// User headers, before hop's standard ones.
    headers: &'static [(&'static str, &'static str)],
}

/// Every model, one test message, user headers (repeated keys) on one.
fn cases() -> Vec<Case> {
    let case = |name, model| Case {
        name,
        model,
        test: false,
        headers: &[],
    };
    vec![
        case("voevent", Model::VoEvent("lvc_preliminary.xml")),
        case("circular", Model::Circular("gcn_circular.txt")),
        case("gcntextnotice", Model::GcnTextNotice("gcn_notice.txt")),
        Case {
            headers: &[("origin", "interop"), ("k", "1"), ("k", "2")],
            ..case(
                "json",
                // Floats in Python's repr forms, non-ASCII escaped, key order.
                Model::Json(json!({
                    "superevent_id": "MS261130k",
                    "far": 9.11e-14,
                    "n": [1, 2.5, 1e16, -0.0, 100.0, 1e-5],
                    "ok": true,
                    "none": null,
                    "text": "caf\u{e9} \u{2603} \u{1d11e}",
                    "a": {"z": 1, "b": [{}]},
                })),
            )
        },
        case("blob", Model::Blob(b"\x00\x01binary\xfe\xff\r\n")),
        case(
            "external",
            Model::External("https://archive.example/v1/msg/caf\u{e9}?id=7"),
        ),
        Case {
            test: true,
            ..case("blob-test", Model::Blob(b"a test message"))
        },
        Case {
            test: true,
            ..case("voevent-test", Model::VoEvent("lvc_preliminary.xml"))
        },
        // One record, schema inferred: fields of four types make it an Avro
        // record (a union of more types than half the keys), no union in
        // the result (hop orders union members at random).
        case(
            "avro",
            Model::Avro {
                content: json!({
                    "superevent_id": "MS261130k",
                    "far": 9.11e-14,
                    "pipelines": ["gstlal", "pycbc"],
                    "significant": true,
                    "n": 3,
                }),
                schema: None,
                single_record: true,
            },
        ),
        // Shapes the Avro specification refuses and fastavro writes, all
        // from hop's inference: a union of two arrays, a union of two maps,
        // field names that are not Avro names. (No long/double mixes:
        // fastavro writes a value as the first union member it fits, and
        // hop's member order is random.)
        case(
            "avro-shapes",
            Model::Avro {
                content: json!({
                    "x": [["a"], [1]],
                    "my key": "v",
                    "na\u{ef}ve": 2.5,
                    "m": [{"a": 1}, {"b": "x"}],
                }),
                schema: None,
                single_record: true,
            },
        ),
        // Several records (`AvroBlob(single_record=False)`), with a schema:
        // inferred, each record would be its own `auto_record<N>` type and
        // the top-level type a union of them, in hop's random order.
        Case {
            headers: &[("k", "avro")],
            ..case(
                "avro-records",
                Model::Avro {
                    content: json!([
                        {"id": 1, "name": "first", "ra": 201.4431},
                        {"id": 2, "name": "second", "ra": -0.5},
                        {"id": 3, "name": "caf\u{e9}", "ra": 1e16},
                    ]),
                    schema: Some(json!({
                        "type": "record",
                        "name": "Alert",
                        "fields": [
                            {"name": "id", "type": "long"},
                            {"name": "name", "type": "string"},
                            {"name": "ra", "type": "double"},
                        ],
                    })),
                    single_record: false,
                },
            )
        },
        Case {
            test: true,
            ..case(
                "avro-test",
                Model::Avro {
                    content: json!({"a": 1, "b": 2}),
                    schema: None,
                    single_record: true,
                },
            )
        },
    ]
}

impl Case {
    /// The case for tests/python/hop_peer.py's `write`.
    fn spec(&self) -> Value {
        use base64::Engine;
        let mut v = match &self.model {
            Model::VoEvent(f) => json!({"model": "voevent", "file": fixture(f)}),
            Model::Circular(f) => json!({"model": "circular", "file": fixture(f)}),
            Model::GcnTextNotice(f) => json!({"model": "gcntextnotice", "file": fixture(f)}),
            Model::Json(c) => json!({"model": "json", "content": c}),
            Model::External(url) => json!({"model": "external", "url": url}),
            Model::Blob(b) => json!({
                "model": "blob",
                "base64": base64::engine::general_purpose::STANDARD.encode(b),
            }),
            Model::Avro {
                content,
                schema,
                single_record,
            } => json!({
                "model": "avro",
                "content": content,
                "schema": schema,
                "single_record": single_record,
            }),
        };
        v["test"] = json!(self.test);
        v["headers"] = json!(self.headers);
        v
    }

    /// The message as skotch loads it (the CLI's `-f` does the same).
    fn message(&self) -> Message {
        match &self.model {
            Model::VoEvent(f) => Message::VoEvent(VoEvent::load_file(fixture(f)).unwrap()),
            Model::Circular(f) => Message::Circular(Circular::load_file(fixture(f)).unwrap()),
            Model::GcnTextNotice(f) => {
                Message::GcnTextNotice(GcnTextNotice::load_file(fixture(f)).unwrap())
            }
            Model::Json(v) => Message::Json(v.clone()),
            Model::Blob(b) => Message::blob(Bytes::from_static(b)),
            Model::External(url) => Message::External(External::new(*url)),
            Model::Avro {
                content,
                schema,
                single_record,
            } => {
                let content = AvroValue::from_json(content);
                Message::Avro(
                    match (schema, single_record, content) {
                        (Some(s), single, c) => Avro::with_schema(c, s.clone(), *single),
                        (None, true, c) => Avro::new(c),
                        (None, false, AvroValue::Array(records)) => Avro::many(records),
                        (None, false, c) => panic!("{}: records must be a list: {c:?}", self.name),
                    }
                    .unwrap(),
                )
            }
        }
    }

    /// Several Avro records in one message: hop's reader (and so skotch's)
    /// cannot read it as a model; `AvroBlob.deserialize(single_record=False)`
    /// can.
    fn avro_records(&self) -> bool {
        matches!(
            self.model,
            Model::Avro {
                single_record: false,
                ..
            }
        )
    }

    /// hop's class for the model.
    fn hop_class(&self) -> &'static str {
        match &self.model {
            Model::VoEvent(_) => "VOEvent",
            Model::Circular(_) => "GCNCircular",
            Model::GcnTextNotice(_) => "GCNTextNotice",
            Model::Json(_) => "JSONBlob",
            Model::Blob(_) => "Blob",
            Model::External(_) => "ExternalMessage",
            Model::Avro { .. } => "AvroBlob",
        }
    }

    fn user_headers(&self) -> Headers {
        self.headers.to_vec().into()
    }
}

/// The venv's python (scripts/python-env creates it on first use).
fn venv_python() -> PathBuf {
    let out = Command::new(common::root().join("scripts/python-env"))
        .output()
        .expect("run scripts/python-env");
    assert!(
        out.status.success(),
        "scripts/python-env failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A hop config directory with nothing in it, so that no auth.toml or
/// config.toml of the machine's user changes what hop does.
fn hop_env(cmd: &mut Command, config_home: &common::TempDir) {
    cmd.env("XDG_CONFIG_HOME", &config_home.0)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HOP_") {
            cmd.env_remove(k);
        }
    }
}

fn check(what: &str, out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs tests/python/hop_peer.py with hop's real API; its JSON lines.
fn hop_peer(args: &[&str]) -> Vec<Value> {
    let config_home = common::TempDir::new("skotch-hop-config");
    let mut cmd = Command::new(common::root().join("tests/python/run.sh"));
    cmd.arg("hop_peer.py").args(args);
    hop_env(&mut cmd, &config_home);
    let started = Instant::now();
    let out = check(&format!("hop_peer.py {}", args[0]), cmd.output().unwrap());
    eprintln!(
        "hop_peer.py {}: {:.1} s",
        args[0],
        started.elapsed().as_secs_f64()
    );
    let lines: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    common::json_lines(&lines)
}

/// [`hop_peer`] off the async runtime.
async fn hop_peer_async(args: Vec<String>) -> Vec<Value> {
    tokio::task::spawn_blocking(move || {
        hop_peer(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

/// A stream opener without credentials (hop's `auth=False`), or with
/// `auth`.
fn stream(auth: Option<Auth>) -> Stream {
    let mut s = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true);
    s.options.credentials = CredentialSource::None;
    s.options.auth = auth;
    s
}

/// Everything skotch's StreamReader hands out for `url`, from the start to
/// the end of every partition.
async fn skotch_read(url: &str, ignore_test: bool, auth: Option<Auth>) -> Vec<(Message, Metadata)> {
    let mut s = stream(auth);
    s.options.ignore_test = ignore_test;
    let mut r = s.open_reader(url).await.expect("open reader");
    let mut out = Vec::new();
    while let Some(item) = r.read_with_metadata().await {
        out.push(item.expect("read"));
    }
    r.close().await.unwrap();
    out
}

/// Write every case's message to `url` with skotch's StreamWriter, with
/// the case's user headers and test flag.
async fn skotch_write(url: &str, auth: Option<Auth>, cases: &[Case]) {
    let mut w = stream(auth).open_writer(url).await.unwrap();
    for case in cases {
        w.write_with(
            case.message(),
            WriteOptions {
                headers: case.user_headers(),
                test: case.test,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    w.close().await.unwrap();
}

fn alice() -> Auth {
    Auth::new("alice", "alice-secret").with_protocol(SecurityProtocol::SaslPlaintext)
}

/// A header list in one form for both sides: (key, value bytes).
type HeaderList = Vec<(String, Option<Vec<u8>>)>;

fn skotch_headers(md: &Metadata) -> HeaderList {
    md.headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_ref().map(|v| v.to_vec())))
        .collect()
}

fn hop_headers(line: &Value) -> HeaderList {
    line["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| (h[0].as_str().unwrap().to_string(), common::b64(&h[1])))
        .collect()
}

/// hop's standard headers, as hop's `Producer.pack` writes them: the user's
/// headers, `_id` (16 raw bytes of a UUID v4), `_sender` when
/// authenticated, `_test` = `true` for test messages, `_format`.
fn assert_standard_headers(headers: &HeaderList, case: &Case, sender: Option<&str>) {
    let what = format!("{}: headers {headers:?}", case.name);
    let mut keys: Vec<&str> = case.headers.iter().map(|(k, _)| *k).collect();
    keys.push("_id");
    if sender.is_some() {
        keys.push("_sender");
    }
    if case.test {
        keys.push("_test");
    }
    keys.push("_format");
    assert_eq!(
        headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        keys,
        "{what}"
    );
    for ((_, v), (_, want)) in headers.iter().zip(case.headers) {
        assert_eq!(v.as_deref(), Some(want.as_bytes()), "{what}");
    }
    let value = |key: &str| {
        headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{what}: no {key} value"))
    };
    let id = value("_id");
    assert_eq!(id.len(), 16, "{what}: _id is uuid4().bytes");
    let uuid = uuid::Uuid::from_slice(&id).unwrap();
    assert_eq!(uuid.get_version_num(), 4, "{what}");
    assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{what}");
    if let Some(sender) = sender {
        assert_eq!(value("_sender"), sender.as_bytes(), "{what}");
    }
    if case.test {
        assert_eq!(value("_test"), b"true", "{what}");
    }
    assert_eq!(
        value("_format"),
        case.message().format_name().as_bytes(),
        "{what}"
    );
}

/// Equal JSON, and in the same key order (serde_json keeps it).
fn same_json(hop: &Value, skotch: &Value, what: &str) {
    assert_eq!(hop, skotch, "{what}");
    assert_eq!(hop.to_string(), skotch.to_string(), "{what}: key order");
}

/// The same Avro message: the same records and, union members in any
/// order (hop collects them in a Python set, so its order changes from run
/// to run), the same schema.
fn same_avro(got: &Avro, want: &Avro, what: &str) {
    assert_eq!(got.content(), want.content(), "{what}: Avro records");
    assert_eq!(got.single_record(), want.single_record(), "{what}");
    assert_eq!(
        sorted_lists(got.schema()),
        sorted_lists(want.schema()),
        "{what}: Avro schema"
    );
}

/// `v` with every list sorted (by its members' JSON text), so unions
/// compare as sets. Field lists get sorted too; their order is checked by
/// the records comparing equal.
fn sorted_lists(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(sorted_lists).collect();
            items.sort_by_key(|i| i.to_string());
            Value::Array(items)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), sorted_lists(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A record value is what writing the case gives: the same bytes from hop
/// and skotch, except for Avro, whose container has a random sync marker
/// on both sides: the same records and schema then.
fn assert_value(case: &Case, value: &[u8], what: &str) {
    let want = case.message();
    match &want {
        Message::Avro(a) => {
            let got = Avro::from_container(Bytes::copy_from_slice(value), a.single_record())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            same_avro(&got, a, what);
        }
        _ => assert_eq!(value, &want.serialize()[..], "{what}: record value"),
    }
}

/// What skotch's reader made of the case's record (`value`): the case's
/// message, or for several Avro records, which hop's reader refuses, the
/// Blob of the bytes, as for any value of a format it cannot read.
fn assert_skotch_read(case: &Case, m: &Message, value: &[u8]) {
    match (m, case.message()) {
        _ if case.avro_records() => {
            assert_eq!(*m, Message::blob(value.to_vec()), "{}", case.name)
        }
        (Message::Avro(got), Message::Avro(want)) => same_avro(got, &want, case.name),
        (_, want) => assert_eq!(*m, want, "{}", case.name),
    }
    assert_value(case, value, case.name);
}

/// Avro content as hop_peer.py prints it (bytes as {"base64": ...}).
fn avro_json(v: &AvroValue) -> Value {
    use base64::Engine;
    v.to_json_with(&|b| json!({"base64": base64::engine::general_purpose::STANDARD.encode(b)}))
}

/// What hop's reader made of a record (a hop_peer.py `read` line) is the
/// case's model as skotch has it: the same class, the same fields as hop
/// holds them (hop's `asdict`), the same `bytes(message)` (what `hop
/// subscribe` prints), and the record value is what writing the case
/// gives.
fn assert_hop_view(line: &Value, case: &Case) {
    let what = format!("{} at offset {}", case.name, line["offset"]);
    let m = case.message();
    assert_value(
        case,
        &common::b64(&line["value"]).expect("value"),
        &format!("{what}: record value hop read"),
    );
    if case.avro_records() {
        // hop's reader raises (AvroBlob.deserialize with single_record=True).
        assert_eq!(line["model"], Value::Null, "{what}: {line}");
        let error = line["error"].as_str().unwrap_or_default();
        assert!(error.contains("single_record"), "{what}: {error}");
        let Message::Avro(a) = &m else { unreachable!() };
        assert_eq!(line["avro_records"], avro_json(a.content()), "{what}");
        return;
    }
    assert_eq!(line["model"], case.hop_class(), "{what}: {line}");
    let content = &line["content"];
    let printed = common::b64(&line["bytes"]).expect("bytes");
    let printed_want: Vec<u8> = match &m {
        Message::VoEvent(v) => {
            same_json(content, &v.to_json(), &what);
            v.raw().to_vec()
        }
        Message::Circular(c) => {
            same_json(content, &c.to_json(), &what);
            c.to_rfc822().into_bytes()
        }
        Message::GcnTextNotice(n) => {
            same_json(content, &n.to_json(), &what);
            n.raw().to_vec()
        }
        Message::Json(v) => {
            same_json(&content["content"], v, &what);
            m.serialize().to_vec()
        }
        Message::Blob(b) => {
            assert_eq!(
                common::b64(&content["content"]["base64"]).as_deref(),
                Some(&b[..]),
                "{what}"
            );
            b.to_vec()
        }
        Message::External(e) => {
            same_json(content, &json!({"url": e.url}), &what);
            m.serialize().to_vec()
        }
        Message::Avro(a) => {
            same_json(&content["content"], &avro_json(a.content()), &what);
            assert_eq!(
                sorted_lists(&content["schema"]),
                sorted_lists(a.schema()),
                "{what}: schema"
            );
            assert_eq!(content["single_record"], true, "{what}");
            // hop re-encodes (another random sync marker): compare records.
            let again = Avro::from_container(Bytes::from(printed), true).unwrap();
            same_avro(&again, a, &format!("{what}: bytes(message)"));
            return;
        }
        other => panic!("{what}: no comparison for {other:?}"),
    };
    assert_eq!(printed, printed_want, "{what}: bytes(message)");
}

/// hop_peer.py `read` lines for one `ignoretest` value.
fn hop_lines(lines: &[Value], ignoretest: bool) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["ignoretest"] == ignoretest)
        .collect()
}

fn offsets<'a>(lines: impl IntoIterator<Item = &'a Value>) -> Vec<i64> {
    lines
        .into_iter()
        .map(|l| l["offset"].as_i64().unwrap())
        .collect()
}

/// The offsets of the cases that are not tests, given each case's offset.
fn non_test(cases: &[Case], at: &[i64]) -> Vec<i64> {
    cases
        .iter()
        .zip(at)
        .filter(|(c, _)| !c.test)
        .map(|(_, o)| *o)
        .collect()
}

/// hop writes every model; skotch reads them (and hop's reader agrees).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_writes_skotch_reads() {
    let started = Instant::now();
    let client = common::client().await;
    let topic = common::create_topic(&client, "hop-to-skotch", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let cases = cases();
    let spec = Value::Array(cases.iter().map(Case::spec).collect()).to_string();

    let written = hop_peer_async(vec!["write".into(), url.clone(), spec]).await;
    assert_eq!(written.len(), cases.len());
    let at: Vec<i64> = written
        .iter()
        .map(|w| w["offset"].as_i64().unwrap())
        .collect();
    // hop's record values are the bytes skotch writes for the same model.
    let values: Vec<Vec<u8>> = written
        .iter()
        .map(|w| common::b64(&w["value"]).unwrap())
        .collect();
    for (case, value) in cases.iter().zip(&values) {
        assert_value(case, value, &format!("{}: hop's record value", case.name));
    }

    // hop's own reading (both ignoretest values) while skotch reads.
    let hop = tokio::spawn(hop_peer_async(vec!["read".into(), url.clone()]));
    let all = skotch_read(&url, false, None).await;
    let default = skotch_read(&url, true, None).await;
    let hop = hop.await.unwrap();

    // skotch: ignore_test=false sees every message, the default skips
    // hop's test messages.
    let skotch_offsets =
        |v: &[(Message, Metadata)]| v.iter().map(|(_, md)| md.offset).collect::<Vec<_>>();
    assert_eq!(skotch_offsets(&all), at);
    assert_eq!(skotch_offsets(&default), non_test(&cases, &at));
    // hop: the same.
    assert_eq!(offsets(hop_lines(&hop, false)), at);
    assert_eq!(offsets(hop_lines(&hop, true)), non_test(&cases, &at));

    let hop_all = hop_lines(&hop, false);
    for (((case, (m, md)), line), value) in cases.iter().zip(&all).zip(&hop_all).zip(&values) {
        // The same model as skotch's own reading of the fixture.
        assert_skotch_read(case, m, value);
        assert_eq!(md.is_test(), case.test, "{}", case.name);
        assert_eq!(md.sender(), None, "{}", case.name);
        assert_eq!(
            md.format(),
            Some(case.message().format_name().as_bytes()),
            "{}",
            case.name
        );
        // hop's headers, byte for byte as hop's own reader sees them.
        let headers = skotch_headers(md);
        assert_eq!(headers, hop_headers(line), "{}", case.name);
        assert_standard_headers(&headers, case, None);
        assert_eq!(
            md.message_id().map(|u| u.as_bytes().to_vec()),
            headers
                .iter()
                .find(|(k, _)| k == "_id")
                .and_then(|(_, v)| v.clone()),
            "{}",
            case.name
        );
        // And hop holds the same content.
        assert_hop_view(line, case);
    }
    for ((m, md), (m2, md2)) in all.iter().filter(|(_, md)| !md.is_test()).zip(&default) {
        assert_eq!((m, md), (m2, md2));
    }
    eprintln!(
        "hop_writes_skotch_reads: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// skotch writes every model; hop reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skotch_writes_hop_reads() {
    let started = Instant::now();
    let client = common::client().await;
    let topic = common::create_topic(&client, "skotch-to-hop", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let cases = cases();

    skotch_write(&url, None, &cases).await;

    let hop = tokio::spawn(hop_peer_async(vec!["read".into(), url.clone()]));
    // The headers as skotch wrote them, read back by skotch.
    let all = skotch_read(&url, false, None).await;
    let hop = hop.await.unwrap();
    let at: Vec<i64> = all.iter().map(|(_, md)| md.offset).collect();
    assert_eq!(at.len(), cases.len());

    // hop with ignoretest (its default) skips skotch's test messages; with
    // ignoretest=False it sees them.
    assert_eq!(offsets(hop_lines(&hop, false)), at);
    assert_eq!(offsets(hop_lines(&hop, true)), non_test(&cases, &at));

    for ((case, (m, md)), line) in cases.iter().zip(&all).zip(hop_lines(&hop, false)) {
        assert_skotch_read(case, m, &common::b64(&line["value"]).unwrap());
        // hop reads the same headers, in the shape hop itself writes.
        let headers = hop_headers(line);
        assert_eq!(headers, skotch_headers(md), "{}", case.name);
        assert_standard_headers(&headers, case, None);
        // hop's model holds what skotch's does, from the same bytes hop
        // would have written.
        assert_hop_view(line, case);
    }
    // The ignoretest=True pass reads the same messages as the other (but
    // for bytes(AvroBlob), which has a new random sync marker each time).
    let comparable = |l: &Value| {
        let mut l = l.clone();
        l["ignoretest"] = Value::Null;
        if l["model"] == "AvroBlob" {
            l["bytes"] = Value::Null;
        }
        l
    };
    for line in hop_lines(&hop, true) {
        let twin = hop_lines(&hop, false)
            .into_iter()
            .find(|l| l["offset"] == line["offset"])
            .unwrap();
        assert_eq!(comparable(line), comparable(twin));
    }
    eprintln!(
        "skotch_writes_hop_reads: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `_sender`: authenticated writers name their user, both ways (SCRAM-SHA-512
/// over SASL_PLAINTEXT, hop's default mechanism).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_header_both_ways() {
    let started = Instant::now();
    let client = common::client().await;
    let topic = common::create_topic(&client, "hop-sender", 1).await;
    let url = format!("kafka://127.0.0.1:{SASL_PLAINTEXT_PORT}/{topic}");
    let mut cases = cases();
    cases.retain(|c| c.name == "json" || c.name == "blob-test");

    // hop as alice writes; then skotch as alice writes the same.
    let spec = Value::Array(cases.iter().map(Case::spec).collect()).to_string();
    hop_peer_async(vec![
        "write".into(),
        url.clone(),
        spec,
        "--user".into(),
        "alice:alice-secret".into(),
    ])
    .await;
    skotch_write(&url, Some(alice()), &cases).await;

    let hop = tokio::spawn(hop_peer_async(vec![
        "read".into(),
        url.clone(),
        "--ignoretest".into(),
        "false".into(),
        "--user".into(),
        "bob:bob-secret".into(),
    ]));
    let bob = Auth::new("bob", "bob-secret").with_protocol(SecurityProtocol::SaslPlaintext);
    let all = skotch_read(&url, false, Some(bob)).await;
    let hop = hop.await.unwrap();
    assert_eq!(all.len(), 2 * cases.len());
    assert_eq!(hop.len(), all.len());
    // hop's messages first, then skotch's: the same shape, sender alice.
    let twice = cases.iter().chain(&cases);
    for ((case, (m, md)), line) in twice.zip(&all).zip(&hop) {
        assert_skotch_read(case, m, &common::b64(&line["value"]).unwrap());
        assert_eq!(md.sender(), Some("alice"), "{}", case.name);
        let headers = skotch_headers(md);
        assert_eq!(headers, hop_headers(line), "{}", case.name);
        assert_standard_headers(&headers, case, Some("alice"));
        assert_hop_view(line, case);
    }
    eprintln!(
        "sender_header_both_ways: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Runs a command to completion; its stdout (panics with stderr on
/// failure).
fn run(what: &str, cmd: &mut Command) -> Vec<u8> {
    let started = Instant::now();
    let out = check(what, cmd.output().unwrap());
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    out
}

/// `hop subscribe URL -s EARLIEST -e --no-auth [-t]`, hop's own CLI from
/// the venv.
fn hop_subscribe(url: &str, test: bool) -> Vec<u8> {
    let hop = venv_python().with_file_name("hop");
    assert!(hop.exists(), "hop's CLI {} is missing", hop.display());
    let config_home = common::TempDir::new("skotch-hop-config");
    let mut cmd = Command::new(&hop);
    cmd.args(["subscribe", url, "-s", "EARLIEST", "-e", "--no-auth", "-q"]);
    if test {
        cmd.arg("-t");
    }
    hop_env(&mut cmd, &config_home);
    run(&format!("hop subscribe (test={test})"), &mut cmd)
}

fn skotch_cli(args: &[&str]) -> Vec<u8> {
    run(
        &format!("skotch {}", args.join(" ")),
        Command::new(common::skotch_bin())
            .arg("--no-auth")
            .args(args)
            .env_remove("SKOTCH_AUTH_FILE"),
    )
}

/// `skotch publish -f FORMAT FILE` for each model with a file format, then
/// `hop subscribe` and `skotch subscribe` print the same bytes, test
/// messages skipped by both unless `-t`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_publish_then_hop_and_skotch_subscribe_alike() {
    let started = Instant::now();
    let client = common::client().await;
    let topic = common::create_topic(&client, "hop-cli", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let dir = common::TempDir::new("skotch-hop-cli");
    let blob = dir.0.join("blob.bin");
    std::fs::write(&blob, b"\x00\x01binary\xfe\xff no newline at the end").unwrap();
    let voevent = fixture("lvc_preliminary.xml");
    let circular = fixture("gcn_circular.txt");
    let notice = fixture("gcn_notice.txt");
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    let publishes: [(&str, &PathBuf, bool); 6] = [
        ("voevent", &voevent, false),
        ("circular", &circular, false),
        ("gcntextnotice", &notice, false),
        ("blob", &blob, false),
        ("gcntextnotice", &notice, true),
        ("circular", &circular, false),
    ];
    for (format, file, test) in publishes {
        let file = path(file);
        let mut args = vec!["publish", &url, "-f", format, &file];
        if test {
            args.push("-t");
        }
        skotch_cli(&args);
    }

    // The four readers in parallel.
    let hop_default = tokio::task::spawn_blocking({
        let url = url.clone();
        move || hop_subscribe(&url, false)
    });
    let hop_test = tokio::task::spawn_blocking({
        let url = url.clone();
        move || hop_subscribe(&url, true)
    });
    let skotch_default = skotch_cli(&["subscribe", &url, "-s", "EARLIEST", "-e"]);
    let skotch_test = skotch_cli(&["subscribe", &url, "-s", "EARLIEST", "-e", "-t"]);
    let hop_default = hop_default.await.unwrap();
    let hop_test = hop_test.await.unwrap();

    // What hop prints: bytes(message), then "\n" unless it ends with one.
    let printed = |m: Message| {
        let mut b = match m {
            Message::Circular(c) => c.to_rfc822().into_bytes(),
            other => other.serialize().to_vec(),
        };
        if !b.ends_with(b"\n") {
            b.push(b'\n');
        }
        b
    };
    let voevent_msg = Message::VoEvent(VoEvent::load_file(&voevent).unwrap());
    let circular_msg = Message::Circular(Circular::load_file(&circular).unwrap());
    let notice_msg = Message::GcnTextNotice(GcnTextNotice::load_file(&notice).unwrap());
    let blob_msg = Message::blob(std::fs::read(&blob).unwrap());
    let mut want_default = Vec::new();
    let mut want_test = Vec::new();
    for (m, test) in [
        (&voevent_msg, false),
        (&circular_msg, false),
        (&notice_msg, false),
        (&blob_msg, false),
        (&notice_msg, true),
        (&circular_msg, false),
    ] {
        let p = printed(m.clone());
        if !test {
            want_default.extend_from_slice(&p);
        }
        want_test.extend_from_slice(&p);
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(text(&hop_default), text(&want_default), "hop subscribe");
    assert_eq!(hop_default, want_default, "hop subscribe");
    assert_eq!(hop_test, want_test, "hop subscribe -t");
    assert_eq!(
        text(&skotch_default),
        text(&hop_default),
        "skotch subscribe vs hop subscribe"
    );
    assert_eq!(skotch_default, hop_default, "skotch subscribe");
    assert_eq!(skotch_test, hop_test, "skotch subscribe -t");
    eprintln!(
        "cli_publish_then_hop_and_skotch_subscribe_alike: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `hop subscribe` prints a JSON message as `json.dumps(content)` (what
/// hop wrote: `", "` and `": "` separators, non-ASCII as `\uXXXX`), and so
/// does `skotch subscribe` (it printed serde_json's compact form until
/// this test found it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_json_prints_like_hop() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "hop-cli-json", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let dir = common::TempDir::new("skotch-hop-cli-json");
    let file = dir.0.join("m.json");
    std::fs::write(
        &file,
        "{\"a\": [1, 2.5, \"\u{e9}\"], \"b\": {\"c\": null}}\n",
    )
    .unwrap();
    skotch_cli(&["publish", &url, "-f", "json", file.to_str().unwrap()]);
    let hop = tokio::task::spawn_blocking({
        let url = url.clone();
        move || hop_subscribe(&url, false)
    });
    let skotch = skotch_cli(&["subscribe", &url, "-s", "EARLIEST", "-e"]);
    let hop = hop.await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&hop),
        "{\"a\": [1, 2.5, \"\\u00e9\"], \"b\": {\"c\": null}}\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&skotch),
        String::from_utf8_lossy(&hop)
    );
}
