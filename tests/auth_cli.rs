//! `skotch auth` (no broker needed): add with --password-stdin, list,
//! remove, locate; the file is created 0600 and a looser mode is refused;
//! passwords never reach stdout or stderr; bad input exits 2 (usage) or 1
//! with a one-line message.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::TempDir;
use skotch::stream::{CredentialStore, SaslMechanism, SecurityProtocol};

const SECRET: &str = "Sup3r-s3cret-pw";

fn skotch(auth_file: &Path, args: &[&str], stdin: &str) -> Output {
    common::skotch_with_auth_file(auth_file, args, stdin)
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Success, and the password nowhere in the output.
fn assert_ok(o: &Output) {
    assert!(o.status.success(), "stderr: {}", err(o));
    assert_no_secret(o);
}

fn assert_no_secret(o: &Output) {
    let all = format!("{}{}", out(o), err(o));
    assert!(!all.contains(SECRET), "password leaked: {all}");
}

/// Exit `code`, one `skotch: error:` line (code 1) or clap's usage error
/// (code 2) on stderr containing `contains`.
fn assert_fails(o: &Output, code: i32, contains: &str) {
    let e = err(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {e}");
    assert!(e.contains(contains), "wanted {contains:?} in {e}");
    assert!(!e.contains("panicked"), "{e}");
    if code == 1 {
        assert!(e.starts_with("skotch: error: "), "{e}");
        assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    }
    assert_no_secret(o);
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn fake_ca(dir: &Path) -> PathBuf {
    let ca = dir.join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    ca
}

#[test]
fn add_list_remove() {
    let dir = TempDir::new("skotch-auth-cli");
    let file = dir.0.join("conf").join("auth.toml");
    let ca = fake_ca(&dir.0);

    let o = skotch(
        &file,
        &["auth", "add", "--username", "alice", "--password-stdin"],
        &format!("{SECRET}\n"),
    );
    assert_ok(&o);
    assert!(out(&o).contains("alice"), "{}", out(&o));
    assert!(out(&o).contains(&file.display().to_string()), "{}", out(&o));
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);

    let o = skotch(
        &file,
        &[
            "auth",
            "add",
            "--username",
            "bob",
            "--password-stdin",
            "--mechanism",
            "SCRAM-SHA-256",
            "--protocol",
            "SASL_PLAINTEXT",
            "--ca-file",
            ca.to_str().unwrap(),
            "--hostname",
            "localhost:9094",
        ],
        // Only the line ending is removed: spaces belong to the password.
        &format!("  {SECRET} \r\nnext line ignored\n"),
    );
    assert_ok(&o);

    let stored = CredentialStore::load(&file).unwrap();
    let c = stored.credentials();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].password().expose(), SECRET);
    assert_eq!(c[1].password().expose(), format!("  {SECRET} "));
    assert_eq!(c[1].mechanism, SaslMechanism::ScramSha256);
    assert_eq!(c[1].protocol, SecurityProtocol::SaslPlaintext);
    assert_eq!(c[1].ca_file(), Some(ca.as_path()));
    assert_eq!(c[1].hostname.as_deref(), Some("localhost:9094"));

    let o = skotch(&file, &["auth", "list"], "");
    assert_ok(&o);
    let lines: Vec<String> = out(&o).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for want in ["alice", "SCRAM-SHA-512", "SASL_SSL"] {
        assert!(lines[0].contains(want), "{want} in {}", lines[0]);
    }
    for want in [
        "bob",
        "SCRAM-SHA-256",
        "SASL_PLAINTEXT",
        "localhost:9094",
        ca.to_str().unwrap(),
    ] {
        assert!(lines[1].contains(want), "{want} in {}", lines[1]);
    }

    // Adding alice again replaces her credential.
    let o = skotch(
        &file,
        &["auth", "add", "--username", "alice", "--password-stdin"],
        "other\n",
    );
    assert_ok(&o);
    assert!(out(&o).contains("replaced"), "{}", out(&o));
    assert_eq!(CredentialStore::load(&file).unwrap().credentials().len(), 2);

    let o = skotch(&file, &["auth", "remove", "alice"], "");
    assert_ok(&o);
    assert!(out(&o).contains("removed credential alice"), "{}", out(&o));
    let o = skotch(&file, &["auth", "remove", "alice"], "");
    assert_fails(&o, 1, "no credential for alice");
    let o = skotch(
        &file,
        &["auth", "remove", "bob", "--hostname", "localhost:9094"],
        "",
    );
    assert_ok(&o);
    let o = skotch(&file, &["auth", "list"], "");
    assert_ok(&o);
    assert_eq!(out(&o), "");
    assert!(err(&o).contains("no credentials"), "{}", err(&o));
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
}

#[cfg(unix)]
#[test]
fn loose_mode_is_refused() {
    let dir = TempDir::new("skotch-auth-cli");
    let file = dir.0.join("auth.toml");
    let o = skotch(
        &file,
        &["auth", "add", "--username", "alice", "--password-stdin"],
        SECRET,
    );
    assert_ok(&o);
    chmod(&file, 0o644);
    let hint = format!("chmod 600 {}", file.display());
    let o = skotch(&file, &["auth", "list"], "");
    assert_fails(&o, 1, &hint);
    let o = skotch(
        &file,
        &["auth", "add", "--username", "bob", "--password-stdin"],
        "pw\n",
    );
    assert_fails(&o, 1, &hint);
    assert_eq!(mode(&file), 0o644, "a refused file is left alone");
    chmod(&file, 0o600);
    let o = skotch(&file, &["auth", "list"], "");
    assert_ok(&o);
    assert!(out(&o).contains("alice"));
}

#[test]
fn bad_input() {
    let dir = TempDir::new("skotch-auth-cli");
    let file = dir.0.join("auth.toml");
    let add = |extra: &[&str], stdin: &str| {
        let mut args = vec!["auth", "add", "--username", "alice"];
        args.extend_from_slice(extra);
        skotch(&file, &args, stdin)
    };
    let line = format!("{SECRET}\n");
    let o = add(&["--password-stdin", "--mechanism", "GSSAPI"], &line);
    assert_fails(&o, 2, "GSSAPI");
    assert!(err(&o).contains("SCRAM-SHA-512"), "{}", err(&o));
    let o = add(&["--password-stdin", "--protocol", "SSL"], &line);
    assert_fails(&o, 2, "SASL_SSL or SASL_PLAINTEXT");
    let missing = dir.0.join("missing.pem");
    let o = add(
        &["--password-stdin", "--ca-file", missing.to_str().unwrap()],
        &line,
    );
    assert_fails(&o, 2, "missing.pem");
    let not_pem = dir.0.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let o = add(
        &["--password-stdin", "--ca-file", not_pem.to_str().unwrap()],
        &line,
    );
    assert_fails(&o, 2, "no PEM certificate");
    let o = add(&["--password-stdin", "--hostname", "kafka://h:9092"], &line);
    assert_fails(&o, 2, "HOST:PORT");
    let o = add(&["--password-stdin"], "\n");
    assert_fails(&o, 1, "password is empty");
    let o = add(&["--password-stdin"], "");
    assert_fails(&o, 1, "password is empty");
    // No --password-stdin and stdin is not a terminal.
    let o = add(&[], &line);
    assert_fails(&o, 1, "--password-stdin");
    let o = skotch(
        &file,
        &["auth", "add", "--username", "", "--password-stdin"],
        &line,
    );
    assert_fails(&o, 2, "--username");
    assert!(!file.exists(), "nothing was written");
}

#[test]
fn locate_and_auth_file_option() {
    let dir = TempDir::new("skotch-auth-cli");
    let env_file = dir.0.join("env.toml");
    let flag_file = dir.0.join("flag.toml");
    let o = skotch(&env_file, &["auth", "locate"], "");
    assert_ok(&o);
    assert_eq!(out(&o).trim_end(), env_file.display().to_string());
    let o = skotch(
        &env_file,
        &["--auth-file", flag_file.to_str().unwrap(), "auth", "locate"],
        "",
    );
    assert_eq!(out(&o).trim_end(), flag_file.display().to_string());
    // The option works after the subcommand too, for every auth command.
    let o = skotch(
        &env_file,
        &[
            "auth",
            "add",
            "--username",
            "alice",
            "--password-stdin",
            "--auth-file",
            flag_file.to_str().unwrap(),
        ],
        SECRET,
    );
    assert_ok(&o);
    assert!(flag_file.exists() && !env_file.exists());
    let o = skotch(
        &env_file,
        &["auth", "list", "--auth-file", flag_file.to_str().unwrap()],
        "",
    );
    assert_ok(&o);
    assert!(out(&o).contains("alice"));
}

#[cfg(unix)]
#[test]
fn hop_file_lists() {
    let dir = TempDir::new("skotch-auth-cli");
    let file = dir.0.join("auth.toml");
    std::fs::write(
        &file,
        format!(
            "[[auth]]\nusername = \"hop-user\"\npassword = \"{SECRET}\"\nprotocol = \"SASL_SSL\"\n\
             mechanism = \"SCRAM_SHA_512\"\nhostname = \"kafka.scimma.org\"\n"
        ),
    )
    .unwrap();
    chmod(&file, 0o600);
    let o = skotch(&file, &["auth", "list"], "");
    assert_ok(&o);
    assert!(out(&o).contains("hop-user"), "{}", out(&o));
    assert!(out(&o).contains("kafka.scimma.org"), "{}", out(&o));
    // A syntax error on the password's line does not show the line.
    std::fs::write(
        &file,
        format!("[[auth]]\nusername = \"u\"\npassword = \"{SECRET}\n"),
    )
    .unwrap();
    chmod(&file, 0o600);
    let o = skotch(&file, &["auth", "list"], "");
    assert_fails(&o, 1, "line 3");
}
