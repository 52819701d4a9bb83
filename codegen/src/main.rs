//! skotch-codegen: generates skotch-protocol's message modules from Apache
//! Kafka's JSON message definitions (`common/message/*.json` in the
//! kafka-clients jar).
//!
//! Usage: `skotch-codegen <json dir> <out dir> [--samples <file>]
//! [--kafka-version <version>]`. Every `.rs` file in `<out dir>` is
//! replaced; `--samples` also writes the test value builders. The output is
//! not formatted: `scripts/codegen` runs rustfmt on it.
#![forbid(unsafe_code)]

mod emit;
mod json;
mod modfile;
mod naming;
#[cfg(test)]
mod regenerate_tests;
mod samples;
mod spec;
mod types;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use spec::{Kind, MessageDef};

/// The Kafka release whose definitions are committed (see `scripts/codegen`).
const DEFAULT_KAFKA_VERSION: &str = "4.1.1";

/// The messages to generate: request/response pairs by API name, then
/// headers and data structures by message name. Extend as needed.
const APIS: &[&str] = &[
    "ApiVersions",
    "Metadata",
    "Produce",
    "Fetch",
    "ListOffsets",
    "CreateTopics",
    "DeleteTopics",
    "FindCoordinator",
    "JoinGroup",
    "SyncGroup",
    "Heartbeat",
    "LeaveGroup",
    "OffsetCommit",
    "OffsetFetch",
    "DescribeGroups",
    "ListGroups",
    "ConsumerGroupHeartbeat",
    "ConsumerGroupDescribe",
    "SaslHandshake",
    "SaslAuthenticate",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "CreatePartitions",
    "DescribeConfigs",
];
const OTHERS: &[&str] = &[
    "RequestHeader",
    "ResponseHeader",
    "ConsumerProtocolSubscription",
    "ConsumerProtocolAssignment",
];

struct Args {
    json_dir: PathBuf,
    out_dir: PathBuf,
    samples: Option<PathBuf>,
    kafka_version: String,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut samples = None;
    let mut kafka_version = DEFAULT_KAFKA_VERSION.to_string();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--samples" => {
                samples = Some(PathBuf::from(it.next().ok_or("--samples needs a file")?))
            }
            "--kafka-version" => {
                kafka_version = it.next().ok_or("--kafka-version needs a value")?
            }
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => positional.push(PathBuf::from(a)),
        }
    }
    let [json_dir, out_dir]: [PathBuf; 2] = positional.try_into().map_err(|_| {
        "usage: skotch-codegen <json dir> <out dir> [--samples <file>] [--kafka-version <v>]"
            .to_string()
    })?;
    Ok(Args {
        json_dir,
        out_dir,
        samples,
        kafka_version,
    })
}

/// Read and check every definition in `dir`.
pub fn load_all(dir: &Path) -> Result<Vec<(String, MessageDef)>, String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    if entries.is_empty() {
        return Err(format!("{}: no .json files", dir.display()));
    }
    let mut out = Vec::new();
    for p in entries {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let raw = json::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        let def = spec::build(&raw).map_err(|e| format!("{}: {e}", p.display()))?;
        let file = p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((file, def));
    }
    Ok(out)
}

/// Everything to write: (file name, contents) for the messages directory,
/// and the samples file's contents.
pub struct Output {
    pub files: Vec<(String, String)>,
    pub samples: String,
}

/// Generate all files from the definitions in `dir`.
pub fn generate(dir: &Path, kafka_version: &str) -> Result<Output, String> {
    let all = load_all(dir)?;
    let find = |name: &str| {
        all.iter()
            .find(|(_, m)| m.name == name)
            .ok_or_else(|| format!("no definition for {name}"))
    };
    let mut wanted: Vec<&(String, MessageDef)> = Vec::new();
    for api in APIS {
        let req = find(&format!("{api}Request"))?;
        let resp = find(&format!("{api}Response"))?;
        if req.1.kind != Kind::Request || resp.1.kind != Kind::Response {
            return Err(format!("{api}: not a request/response pair"));
        }
        wanted.push(req);
        wanted.push(resp);
    }
    for name in OTHERS {
        wanted.push(find(name)?);
    }
    let defs: Vec<MessageDef> = all.iter().map(|(_, m)| m.clone()).collect();
    let apis = modfile::apis(&defs)?;
    let mut files = Vec::new();
    for (file, m) in &wanted {
        let e = emit::Emitter::new(m, kafka_version, file);
        let mut text = e.module()?;
        if m.kind == Kind::Request {
            let api = apis
                .iter()
                .find(|a| Some(a.key) == m.api_key)
                .ok_or_else(|| format!("{}: api key missing", m.name))?;
            text.push_str(&e.request_impl(&api.name, &format!("{}Response", api.name)));
        }
        files.push((format!("{}.rs", m.module()), text));
    }
    let generated: Vec<MessageDef> = wanted.iter().map(|(_, m)| m.clone()).collect();
    files.push((
        "mod.rs".to_string(),
        modfile::mod_rs(&generated, &apis, kafka_version),
    ));
    let samples = samples::samples_rs(&generated, kafka_version)?;
    Ok(Output { files, samples })
}

fn write_output(out: &Output, dir: &Path, samples: Option<&Path>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The directory is entirely generated: remove modules that are gone.
    let keep: Vec<&str> = out.files.iter().map(|(n, _)| n.as_str()).collect();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = entry.map_err(|e| e.to_string())?.path();
        let name = p.file_name().map(|f| f.to_string_lossy().into_owned());
        if p.extension().is_some_and(|x| x == "rs")
            && name.as_deref().is_some_and(|n| !keep.contains(&n))
        {
            std::fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    for (name, text) in &out.files {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = samples {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(p, &out.samples).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let run = || -> Result<(), String> {
        let args = parse_args()?;
        let out = generate(&args.json_dir, &args.kafka_version)?;
        write_output(&out, &args.out_dir, args.samples.as_deref())?;
        eprintln!(
            "skotch-codegen: wrote {} files to {}",
            out.files.len(),
            args.out_dir.display()
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skotch-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
