//! The committed generated code must be what the generator produces from
//! the recorded Kafka release's definitions. Runs only when that release's
//! kafka-clients jar is in the local Maven repository (or
//! `SKOTCH_CODEGEN_JSON_DIR` names a directory of definitions) and rustfmt
//! is installed; `scripts/codegen --check` is the same check from the shell.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::generate;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let p = std::env::temp_dir().join(format!(
        "skotch-codegen-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The Kafka version recorded in the committed `mod.rs`.
fn committed_version() -> String {
    let text = std::fs::read_to_string(root().join("protocol/src/messages/mod.rs")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("pub const KAFKA_VERSION: &str = "))
        .expect("KAFKA_VERSION in mod.rs");
    line.split('"').nth(1).unwrap().to_string()
}

/// The definitions directory, extracting them from the jar if needed.
fn json_dir(version: &str, scratch: &Path) -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("SKOTCH_CODEGEN_JSON_DIR") {
        return Some(PathBuf::from(d));
    }
    let repo = match std::env::var_os("MAVEN_REPO") {
        Some(r) => PathBuf::from(r),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".m2/repository"),
    };
    let jar = repo.join(format!(
        "org/apache/kafka/kafka-clients/{version}/kafka-clients-{version}.jar"
    ));
    if !jar.is_file() {
        return None;
    }
    let ok = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(&jar)
        .arg("common/message/*.json")
        .arg("-d")
        .arg(scratch)
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| scratch.join("common/message"))
}

#[test]
fn committed_code_matches_the_generator() {
    let version = committed_version();
    let scratch = temp_dir("json");
    let Some(json) = json_dir(&version, &scratch) else {
        eprintln!("skipped: kafka-clients-{version}.jar not in the local Maven repository");
        return;
    };
    if Command::new("rustfmt").arg("--version").output().is_err() {
        eprintln!("skipped: no rustfmt");
        return;
    }
    let out = generate(&json, &version).unwrap();
    let dir = temp_dir("out");
    let mut paths = Vec::new();
    for (name, text) in &out.files {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        paths.push(p);
    }
    let samples = dir.join("samples.rs.txt");
    std::fs::write(&samples, &out.samples).unwrap();
    let status = Command::new("rustfmt")
        .args(["--edition", "2021"])
        .args(&paths)
        .arg(&samples)
        .status()
        .unwrap();
    assert!(status.success());

    let committed = root().join("protocol/src/messages");
    let mut committed_names: Vec<String> = std::fs::read_dir(&committed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs"))
        .collect();
    committed_names.sort();
    let mut names: Vec<String> = out.files.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(
        names, committed_names,
        "module list differs: run scripts/codegen"
    );
    for name in &names {
        let want = std::fs::read_to_string(dir.join(name)).unwrap();
        let have = std::fs::read_to_string(committed.join(name)).unwrap();
        assert!(
            want == have,
            "{name} differs from the generator's output: run scripts/codegen"
        );
    }
    let want = std::fs::read_to_string(&samples).unwrap();
    let have = std::fs::read_to_string(root().join("protocol/tests/messages/samples.rs")).unwrap();
    assert!(want == have, "samples.rs differs: run scripts/codegen");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&scratch);
}
