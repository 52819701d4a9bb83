//! `skotch auth add|list|remove|locate`: manage the credentials file the
//! way hop-client's `hop auth` does (see `skotch::stream::credentials` for
//! its location, format and permissions).
//!
//! Passwords are read from stdin (`--password-stdin`) or the terminal
//! without echo, written only to the file, and never printed.

use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};

use clap::builder::NonEmptyStringValueParser;
use clap::Subcommand;
use skotch::client::{SaslMechanism, SecurityProtocol};
use skotch::stream::{credentials, Credential, CredentialStore};

use crate::cli_support::emit;

/// The longest password line read from stdin, in bytes.
const MAX_PASSWORD_LEN: u64 = 64 * 1024;

/// The largest CA file `--ca-file` accepts, in bytes.
const MAX_CA_FILE_LEN: u64 = 16 * 1024 * 1024;

/// `skotch auth ...`.
#[derive(Subcommand)]
pub enum AuthCommand {
    /// Store a credential, replacing the one with the same username and
    /// hostname. The password comes from stdin with --password-stdin, else
    /// from a prompt on the terminal (not echoed).
    Add {
        /// SASL username; select it in URLs as kafka://USERNAME@broker/topic.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        username: String,
        /// Read the password as the first line of stdin (without its line
        /// ending).
        #[arg(long)]
        password_stdin: bool,
        /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512", value_parser = parse_mechanism)]
        mechanism: SaslMechanism,
        /// Security protocol: SASL_SSL or SASL_PLAINTEXT.
        #[arg(long, default_value = "SASL_SSL", value_parser = parse_protocol)]
        protocol: SecurityProtocol,
        /// PEM file of the CA that signed the brokers' certificates (stored
        /// as an absolute path); default: the standard trust roots.
        #[arg(long, value_name = "FILE", value_parser = parse_ca_file)]
        ca_file: Option<PathBuf>,
        /// Use this credential only for this broker, HOST or HOST:PORT
        /// (port default 9092); default: any broker.
        #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_hostname)]
        hostname: Option<String>,
    },
    /// List the stored credentials, one per line: username, mechanism,
    /// protocol, hostname, CA file ("-" when none). Never the passwords.
    List,
    /// Remove a stored credential.
    Remove {
        /// Its username.
        username: String,
        /// Its hostname, when the user has credentials for several brokers.
        #[arg(long, value_name = "HOST[:PORT]")]
        hostname: Option<String>,
    },
    /// Print the path of the credentials file.
    Locate,
}

fn parse_mechanism(s: &str) -> Result<SaslMechanism, String> {
    s.parse::<SaslMechanism>().map_err(|e| e.to_string())
}

fn parse_protocol(s: &str) -> Result<SecurityProtocol, String> {
    match s.parse::<SecurityProtocol>() {
        Ok(p) if p.uses_sasl() => Ok(p),
        _ => Err(format!(
            "{s:?} is not a SASL protocol (expected SASL_SSL or SASL_PLAINTEXT)"
        )),
    }
}

fn parse_hostname(s: &str) -> Result<String, String> {
    if credentials::is_valid_hostname(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not HOST or HOST:PORT (a broker address, not a URL)"
        ))
    }
}

/// An existing file with a PEM certificate in it, as an absolute path (the
/// credential is used from other directories later).
fn parse_ca_file(s: &str) -> Result<PathBuf, String> {
    let path = std::path::absolute(s).map_err(|e| format!("{s}: {e}"))?;
    let mut text = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_CA_FILE_LEN).read_to_end(&mut text))
        .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
    let pem = b"-----BEGIN CERTIFICATE-----";
    if !text.windows(pem.len()).any(|w| w == pem) {
        return Err(format!(
            "CA file {} holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" line)",
            path.display()
        ));
    }
    Ok(path)
}

/// Run an `auth` subcommand on the credentials file `auth_file`, or the
/// default one (`$SKOTCH_AUTH_FILE`, then the XDG location).
pub fn run(cmd: AuthCommand, auth_file: Option<&Path>) -> Result<(), String> {
    let path = match auth_file {
        Some(p) => p.to_path_buf(),
        None => credentials::default_path().map_err(|e| e.to_string())?,
    };
    match cmd {
        AuthCommand::Locate => emit(&format!("{}\n", path.display())),
        AuthCommand::List => list(&path),
        AuthCommand::Add {
            username,
            password_stdin,
            mechanism,
            protocol,
            ca_file,
            hostname,
        } => {
            // Load first: a broken or unsafe file fails before the prompt.
            let mut store = CredentialStore::load(&path).map_err(|e| e.to_string())?;
            let password = read_password(password_stdin)?;
            let mut credential = Credential::new(username, password)
                .with_mechanism(mechanism)
                .with_protocol(protocol);
            credential.ssl_ca_location = ca_file;
            credential.hostname = hostname;
            let shown = credential.to_string();
            let replaced = store.add(credential).map_err(|e| e.to_string())?;
            store.save().map_err(|e| e.to_string())?;
            let verb = if replaced.is_some() {
                "replaced"
            } else {
                "added"
            };
            emit(&format!(
                "{verb} credential {shown} in {}\n",
                path.display()
            ))
        }
        AuthCommand::Remove { username, hostname } => {
            let mut store = CredentialStore::load(&path).map_err(|e| e.to_string())?;
            let removed = store
                .remove(&username, hostname.as_deref())
                .map_err(|e| e.to_string())?;
            store.save().map_err(|e| e.to_string())?;
            emit(&format!(
                "removed credential {removed} from {}\n",
                path.display()
            ))
        }
    }
}

/// The password: the first line of stdin with `from_stdin`, else typed at
/// the terminal without echo.
fn read_password(from_stdin: bool) -> Result<String, String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_PASSWORD_LEN)
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from stdin: {e}"))?;
        // The line ending only: spaces may be part of a password.
        if let Some(l) = line.strip_suffix('\n') {
            line.truncate(l.strip_suffix('\r').unwrap_or(l).len());
        }
        line
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")
            .map_err(|e| format!("reading the password from the terminal: {e}"))?
    } else {
        return Err(
            "no password: stdin is not a terminal; pass --password-stdin to read it from stdin"
                .into(),
        );
    };
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(password)
}

/// One aligned line per credential; never the password.
fn list(path: &Path) -> Result<(), String> {
    let store = CredentialStore::load(path).map_err(|e| e.to_string())?;
    if store.is_empty() {
        eprintln!("skotch: no credentials in {}", path.display());
        return Ok(());
    }
    let rows: Vec<[String; 5]> = store
        .credentials()
        .iter()
        .map(|c| {
            [
                c.username.clone(),
                c.mechanism.to_string(),
                c.protocol.to_string(),
                c.hostname.clone().unwrap_or_else(|| "-".into()),
                c.ca_file()
                    .map_or_else(|| "-".into(), |p| p.display().to_string()),
            ]
        })
        .collect();
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    emit(&out)
}
