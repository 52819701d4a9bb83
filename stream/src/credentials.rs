//! The credentials file, hop-client's way: SASL credentials stored in a
//! private TOML file and chosen by the `username@` of a `kafka://` URL.
//!
//! # Location
//!
//! [`default_path`] picks, in order (XDG Base Directory specification):
//!
//! 1. `$SKOTCH_AUTH_FILE`, when set and not empty (tests, scripts);
//! 2. `$XDG_CONFIG_HOME/skotch/auth.toml`, when that variable holds an
//!    absolute path (the spec says to ignore a relative one);
//! 3. `$HOME/.config/skotch/auth.toml`.
//!
//! hop-client keeps the same file at `~/.config/hop/auth.toml`.
//!
//! # Format
//!
//! One `[[auth]]` table per credential, with hop-client's key names, so a
//! hop `auth.toml` works as is (and hop reads the files skotch writes):
//!
//! ```toml
//! [[auth]]
//! username = "alice"
//! password = "not-a-real-password"
//! mechanism = "SCRAM-SHA-512"                 # default; also PLAIN, SCRAM-SHA-256 (hop's SCRAM_SHA_512 too)
//! protocol = "SASL_SSL"                       # default; or SASL_PLAINTEXT
//! ssl_ca_location = "/etc/kafka/ca.pem"       # optional: PEM file of the CA to trust
//! hostname = "kafka.example.org:9092"         # optional: the broker this credential is for
//! ```
//!
//! hop's older single `[auth]` table is read as one credential. hop's
//! OAUTHBEARER credentials (`token_endpoint`) are refused with a clear
//! error; other unknown keys are ignored.
//!
//! # Permissions
//!
//! The file holds passwords. On Unix it is written with mode 0600 (its
//! directory, when created, 0700), through a temporary file in the same
//! directory renamed over the old one, so a crash never leaves half a file.
//! A file that its group or others may access (`mode & 0o077 != 0`) is
//! refused when read, with a hint to `chmod 600` it (as hop-client does).
//!
//! # Choosing a credential
//!
//! [`CredentialStore::select`] follows hop-client's `select_matching_auth`:
//! a credential with a `hostname` is a candidate only for that broker (the
//! port defaults to 9092 on both sides); if some candidates name the URL's
//! host, those win over the ones that name no host. A `username@` in the
//! URL keeps only that user's credentials and must find exactly one. With
//! no username, exactly one candidate is used, none means connecting
//! without authentication, several are an error asking for `username@`.
//!
//! Passwords never appear in `Debug` or `Display` output, nor in errors:
//! TOML syntax errors are reported by line and column, without the
//! offending line.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use skotch_client::{Password, SaslConfig, SaslMechanism, SecurityProtocol};

use crate::url::{BrokerAddr, KafkaUrl};

/// Environment variable naming the credentials file; overrides the XDG
/// location (see [`default_path`]).
pub const AUTH_FILE_ENV: &str = "SKOTCH_AUTH_FILE";

/// The largest credentials file read, in bytes (1 MiB): far more than any
/// real file, small enough that pointing the variable at something huge
/// fails quickly.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// One stored credential: SASL username and password plus how to reach
/// the broker (hop-client's `auth.Auth`).
///
/// Defaults follow hop-client: mechanism SCRAM-SHA-512, protocol
/// SASL_SSL, the platform's trust when no CA file is given, any host.
/// The password is reachable only through [`Credential::password`]; it
/// never shows in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// SASL username (the Kafka principal `User:<username>`); also the
    /// `_sender` header of written messages.
    pub username: String,
    password: Password,
    /// `sasl.mechanism`. Default SCRAM-SHA-512.
    pub mechanism: SaslMechanism,
    /// `security.protocol`: SASL_SSL (default) or SASL_PLAINTEXT.
    pub protocol: SecurityProtocol,
    /// PEM file of the CA that signed the brokers' certificates
    /// (`ssl.ca.location`, Java `ssl.truststore.location`); file key
    /// `ssl_ca_location`. `None`: the default trust roots.
    pub ssl_ca_location: Option<PathBuf>,
    /// The broker `host[:port]` this credential is for (port default
    /// 9092); `None`: any broker.
    pub hostname: Option<String>,
}

impl Credential {
    /// A credential with hop-client's defaults: SCRAM-SHA-512 over
    /// SASL_SSL, default trust roots, any host.
    pub fn new(username: impl Into<String>, password: impl Into<Password>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            mechanism: SaslMechanism::default(),
            protocol: SecurityProtocol::SaslSsl,
            ssl_ca_location: None,
            hostname: None,
        }
    }

    /// The same credential with another mechanism.
    pub fn with_mechanism(mut self, mechanism: SaslMechanism) -> Self {
        self.mechanism = mechanism;
        self
    }

    /// The same credential over another security protocol.
    pub fn with_protocol(mut self, protocol: SecurityProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The same credential trusting the CA in this PEM file.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_ca_location = Some(path.into());
        self
    }

    /// The same credential, for the broker `host[:port]` only.
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// The password, for the SASL exchange (and the credentials file).
    pub fn password(&self) -> &Password {
        &self.password
    }

    /// The security protocol (same as the `protocol` field).
    pub fn protocol(&self) -> SecurityProtocol {
        self.protocol
    }

    /// The CA file to trust, if any (same as the `ssl_ca_location` field).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ssl_ca_location.as_deref()
    }

    /// The client's SASL settings: mechanism, username, password.
    pub fn sasl_config(&self) -> SaslConfig {
        SaslConfig::new(self.mechanism, self.username.clone(), self.password.clone())
    }

    /// Checks what [`CredentialStore::add`] requires: a non-empty username
    /// and password, no control characters in the username, a SASL
    /// protocol and a well-formed hostname.
    pub fn validate(&self) -> Result<(), String> {
        if self.username.is_empty() {
            return Err("the username is empty".into());
        }
        if self.username.chars().any(char::is_control) {
            return Err(format!(
                "the username {:?} contains control characters",
                self.username
            ));
        }
        if self.password.expose().is_empty() {
            return Err(format!("the password of {} is empty", self.username));
        }
        if !self.protocol.uses_sasl() {
            return Err(format!(
                "protocol {} does not use SASL, so a credential is useless with it (expected SASL_SSL or SASL_PLAINTEXT)",
                self.protocol
            ));
        }
        if let Some(h) = &self.hostname {
            if !is_valid_hostname(h) {
                return Err(format!(
                    "hostname {h:?} is not host or host:port (a broker address, not a URL)"
                ));
            }
        }
        Ok(())
    }

    /// True when `hostname` names the same broker as this credential's
    /// (case-insensitive host, port defaulting to 9092); false for a
    /// credential with no hostname.
    fn is_for_host(&self, target: Option<&BrokerAddr>) -> bool {
        match (&self.hostname, target) {
            (Some(h), Some(target)) => same_host(h, target),
            _ => false,
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("mechanism", &self.mechanism)
            .field("protocol", &self.protocol)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("hostname", &self.hostname)
            .finish()
    }
}

/// `alice (SCRAM-SHA-512 over SASL_SSL, for kafka.example.org:9092, CA
/// /etc/ca.pem)`; never the password.
impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} over {}",
            self.username, self.mechanism, self.protocol
        )?;
        if let Some(h) = &self.hostname {
            write!(f, ", for {h}")?;
        }
        if let Some(ca) = &self.ssl_ca_location {
            write!(f, ", CA {}", ca.display())?;
        }
        f.write_str(")")
    }
}

impl From<&Credential> for SaslConfig {
    fn from(c: &Credential) -> Self {
        c.sasl_config()
    }
}

impl From<Credential> for SaslConfig {
    fn from(c: Credential) -> Self {
        SaslConfig::new(c.mechanism, c.username, c.password)
    }
}

/// What went wrong with the credentials file or choosing a credential.
/// No variant ever holds or prints a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// None of `SKOTCH_AUTH_FILE`, `XDG_CONFIG_HOME`, `HOME` is set.
    #[error("cannot locate the credentials file: set SKOTCH_AUTH_FILE (the file), XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    /// Reading or writing the file failed.
    #[error("credentials file {}: {action}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file's group or others may access it (Unix).
    #[error("credentials file {} has mode {mode:04o}, which lets other users read its passwords; refusing to use it. Run `chmod 600 {}`", .path.display(), .path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not valid TOML. The message is the parser's, without
    /// the offending line (it may hold a password).
    #[error("credentials file {}: invalid TOML at line {line}, column {column}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// An `[[auth]]` entry is missing a key or has a bad value.
    #[error("credentials file {}: [[auth]] entry {entry}: {message}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based position of the entry in the file.
        entry: usize,
        /// What is wrong (names keys, never a password).
        message: String,
    },
    /// A credential given to [`CredentialStore::add`] is not usable.
    #[error("invalid credential: {0}")]
    InvalidCredential(String),
    /// The URL names a user with no credential for this broker.
    #[error("{}", no_match_message(.username, .host, .path, .other_hosts, *.file_exists))]
    NoMatch {
        /// The URL's username.
        username: String,
        /// The broker (`host:port`).
        host: String,
        /// The credentials file.
        path: PathBuf,
        /// Hosts the user does have credentials for.
        other_hosts: Vec<String>,
        /// Whether the file exists at all.
        file_exists: bool,
    },
    /// Several credentials fit the URL.
    #[error("{}", ambiguous_message(.username.as_deref(), .host, .path, .candidates))]
    Ambiguous {
        /// The URL's username, if it has one.
        username: Option<String>,
        /// The broker (`host:port`).
        host: String,
        /// The credentials file.
        path: PathBuf,
        /// The matching credentials, as `user` or `user for host`.
        candidates: Vec<String>,
    },
    /// [`CredentialStore::remove`] found nothing to remove.
    #[error("no credential for {username}{} in {}", .hostname.as_deref().map(|h| format!(" for {h}")).unwrap_or_default(), .path.display())]
    NotFound {
        /// The username asked for.
        username: String,
        /// The hostname asked for.
        hostname: Option<String>,
        /// The credentials file.
        path: PathBuf,
    },
    /// [`CredentialStore::remove`] without a hostname matched several.
    #[error("several credentials for {username} in {}: {}; choose one with --hostname", .path.display(), .candidates.join(", "))]
    AmbiguousRemove {
        /// The username asked for.
        username: String,
        /// The credentials file.
        path: PathBuf,
        /// The matching credentials, as `user for host` or `user (any host)`.
        candidates: Vec<String>,
    },
}

fn no_match_message(
    username: &str,
    host: &str,
    path: &Path,
    other_hosts: &[String],
    file_exists: bool,
) -> String {
    let mut m = format!(
        "no credential for user {username} (broker {host}) in {}",
        path.display()
    );
    if !file_exists {
        m.push_str(" (the file does not exist)");
    }
    if !other_hosts.is_empty() {
        m.push_str(&format!(
            "; {username} has credentials only for {}",
            other_hosts.join(", ")
        ));
    }
    m.push_str(&format!(
        "; add one with `skotch auth add --username {username}`"
    ));
    m
}

fn ambiguous_message(
    username: Option<&str>,
    host: &str,
    path: &Path,
    candidates: &[String],
) -> String {
    match username {
        None => format!(
            "several credentials in {} fit broker {host}: {}; put the username in the URL (kafka://USERNAME@{host}/...) to choose one",
            path.display(),
            candidates.join(", ")
        ),
        Some(u) => format!(
            "several credentials for user {u} in {} fit broker {host}: {}; give each its own --hostname, or remove the extra ones with `skotch auth remove`",
            path.display(),
            candidates.join(", ")
        ),
    }
}

/// The credentials file's path: `$SKOTCH_AUTH_FILE`, else
/// `$XDG_CONFIG_HOME/skotch/auth.toml`, else
/// `$HOME/.config/skotch/auth.toml` (see the [module docs](self)).
///
/// Errors: [`CredentialError::NoConfigDir`] when none of them is set.
pub fn default_path() -> Result<PathBuf, CredentialError> {
    default_path_from(|name| std::env::var_os(name))
}

/// [`default_path`] over any environment (tests pass a map, not the
/// process environment, which tests running in parallel share).
fn default_path_from(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, CredentialError> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(file) = set(AUTH_FILE_ENV) {
        return Ok(PathBuf::from(file));
    }
    if let Some(dir) = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Ok(dir.join("skotch").join("auth.toml"));
    }
    if let Some(home) = set("HOME") {
        return Ok(PathBuf::from(home)
            .join(".config")
            .join("skotch")
            .join("auth.toml"));
    }
    Err(CredentialError::NoConfigDir)
}

/// The credentials file in memory: its path and its credentials, in file
/// order. Changes reach the disk only with [`CredentialStore::save`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialStore {
    path: PathBuf,
    credentials: Vec<Credential>,
    file_exists: bool,
}

impl CredentialStore {
    /// An empty store that [`save`](Self::save) will write to `path`.
    pub fn empty(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            credentials: Vec::new(),
            file_exists: false,
        }
    }

    /// Reads the file at `path`. A missing file is an empty store (so
    /// URLs without `username@` keep working with no file at all).
    ///
    /// Errors: the file may be read by group or others (Unix;
    /// [`CredentialError::Permissions`]), is not a regular file, exceeds
    /// [`MAX_FILE_SIZE`], is not UTF-8 TOML, or an entry lacks `username` /
    /// `password` or has an unknown mechanism or protocol.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, CredentialError> {
        let path = path.into();
        let io_err = |action, source| CredentialError::Io {
            path: path.clone(),
            action,
            source,
        };
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::empty(path)),
            Err(e) => return Err(io_err("opening", e)),
        };
        // The metadata of the opened file, not of the path: what is checked
        // is what is read.
        let meta = file.metadata().map_err(|e| io_err("reading", e))?;
        if !meta.is_file() {
            return Err(io_err(
                "reading",
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        check_private(&path, &meta)?;
        if meta.len() > MAX_FILE_SIZE {
            return Err(io_err(
                "reading",
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("larger than {MAX_FILE_SIZE} bytes"),
                ),
            ));
        }
        let mut text = String::new();
        file.take(MAX_FILE_SIZE)
            .read_to_string(&mut text)
            .map_err(|e| io_err("reading", e))?;
        let credentials = parse(&path, &text)?;
        Ok(Self {
            path,
            credentials,
            file_exists: true,
        })
    }

    /// Reads the file at [`default_path`]; a missing file is an empty store.
    pub fn load_default() -> Result<Self, CredentialError> {
        Self::load(default_path()?)
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credentials, in file order.
    pub fn credentials(&self) -> &[Credential] {
        &self.credentials
    }

    /// True when the store holds no credential.
    pub fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }

    /// Adds `credential`, replacing the one with the same username and
    /// hostname (same broker, port defaulting to 9092), which is returned.
    ///
    /// Errors: [`CredentialError::InvalidCredential`] when
    /// [`Credential::validate`] fails.
    pub fn add(&mut self, credential: Credential) -> Result<Option<Credential>, CredentialError> {
        credential
            .validate()
            .map_err(CredentialError::InvalidCredential)?;
        let same = self.credentials.iter_mut().find(|c| {
            c.username == credential.username
                && match (&c.hostname, &credential.hostname) {
                    (None, None) => true,
                    (Some(a), Some(b)) => b.parse().is_ok_and(|t| same_host(a, &t)),
                    _ => false,
                }
        });
        match same {
            Some(old) => Ok(Some(std::mem::replace(old, credential))),
            None => {
                self.credentials.push(credential);
                Ok(None)
            }
        }
    }

    /// Removes `username`'s credential: the one for `hostname` when given,
    /// else the only one that user has.
    ///
    /// Errors: [`CredentialError::NotFound`];
    /// [`CredentialError::AmbiguousRemove`] when no hostname is given and
    /// the user has several credentials.
    pub fn remove(
        &mut self,
        username: &str,
        hostname: Option<&str>,
    ) -> Result<Credential, CredentialError> {
        let target = hostname.map(|h| h.parse::<BrokerAddr>().ok());
        let matching: Vec<usize> = self
            .credentials
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.username == username
                    && match &target {
                        None => true,
                        Some(t) => c.is_for_host(t.as_ref()),
                    }
            })
            .map(|(i, _)| i)
            .collect();
        match matching.as_slice() {
            [i] => Ok(self.credentials.remove(*i)),
            [] => Err(CredentialError::NotFound {
                username: username.to_string(),
                hostname: hostname.map(str::to_string),
                path: self.path.clone(),
            }),
            several => Err(CredentialError::AmbiguousRemove {
                username: username.to_string(),
                path: self.path.clone(),
                candidates: several
                    .iter()
                    .filter_map(|&i| self.credentials.get(i))
                    .map(|c| describe(c, "(any host)"))
                    .collect(),
            }),
        }
    }

    /// Chooses the credential for a URL with `username@` (or none) whose
    /// first broker is `host` (`host`, `host:port` or `[v6]:port`; port
    /// default 9092), by hop-client's rules (see the [module docs](self)).
    ///
    /// `Ok(None)`: no username and no credential for this broker, so
    /// connect without authentication.
    ///
    /// Errors: [`CredentialError::NoMatch`] when `username` has no
    /// credential for this broker; [`CredentialError::Ambiguous`] when
    /// several fit.
    pub fn select(
        &self,
        username: Option<&str>,
        host: &str,
    ) -> Result<Option<&Credential>, CredentialError> {
        let target = host.parse::<BrokerAddr>().ok();
        let mut for_host = Vec::new();
        let mut for_any = Vec::new();
        for c in &self.credentials {
            if username.is_some_and(|u| u != c.username) {
                continue;
            }
            if c.hostname.is_none() {
                for_any.push(c);
            } else if c.is_for_host(target.as_ref()) {
                for_host.push(c);
            }
        }
        // Credentials naming this broker win over those naming none.
        let matches = if for_host.is_empty() {
            for_any
        } else {
            for_host
        };
        match (matches.as_slice(), username) {
            ([one], _) => Ok(Some(*one)),
            ([], None) => Ok(None),
            ([], Some(u)) => Err(CredentialError::NoMatch {
                username: u.to_string(),
                host: host.to_string(),
                path: self.path.clone(),
                other_hosts: self
                    .credentials
                    .iter()
                    .filter(|c| c.username == u)
                    .filter_map(|c| c.hostname.clone())
                    .collect(),
                file_exists: self.file_exists,
            }),
            (several, _) => Err(CredentialError::Ambiguous {
                username: username.map(str::to_string),
                host: host.to_string(),
                path: self.path.clone(),
                candidates: several.iter().map(|c| describe(c, "(any host)")).collect(),
            }),
        }
    }

    /// [`select`](Self::select) for `url`'s username and first broker.
    pub fn select_for_url(&self, url: &KafkaUrl) -> Result<Option<&Credential>, CredentialError> {
        let host = url
            .brokers
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        self.select(url.username.as_deref(), &host)
    }

    /// Writes the store to its file, mode 0600 on Unix, atomically: a
    /// temporary file in the same directory is written, synced and renamed
    /// over the old file. A missing directory is created (0700 on Unix).
    ///
    /// Errors: I/O; [`CredentialError::InvalidCredential`] for a CA path
    /// that is not UTF-8 (TOML holds only text).
    pub fn save(&self) -> Result<(), CredentialError> {
        let text = self.to_toml()?;
        let io_err = |action, source| CredentialError::Io {
            path: self.path.clone(),
            action,
            source,
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .ok_or_else(|| {
                io_err(
                    "writing",
                    io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
                )
            })?
            .to_string_lossy()
            .into_owned();
        create_private_dir(&dir).map_err(|e| io_err("creating its directory", e))?;
        let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let written =
            write_private(&tmp, text.as_bytes()).and_then(|()| fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("writing", e));
        }
        // Make the rename itself durable; failing here loses nothing
        // already written, so it is not an error.
        #[cfg(unix)]
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The file's text.
    fn to_toml(&self) -> Result<String, CredentialError> {
        #[derive(Serialize)]
        struct File<'a> {
            auth: Vec<Entry<'a>>,
        }
        #[derive(Serialize)]
        struct Entry<'a> {
            username: &'a str,
            password: &'a str,
            mechanism: &'static str,
            protocol: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            ssl_ca_location: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            hostname: Option<&'a str>,
        }
        let mut auth = Vec::with_capacity(self.credentials.len());
        for c in &self.credentials {
            let ssl_ca_location = match &c.ssl_ca_location {
                None => None,
                Some(p) => Some(p.to_str().ok_or_else(|| {
                    CredentialError::InvalidCredential(format!(
                        "the CA file path of {} is not UTF-8: {}",
                        c.username,
                        p.display()
                    ))
                })?),
            };
            auth.push(Entry {
                username: &c.username,
                password: c.password.expose(),
                mechanism: c.mechanism.as_str(),
                protocol: c.protocol.as_str(),
                ssl_ca_location,
                hostname: c.hostname.as_deref(),
            });
        }
        let body = toml::to_string(&File { auth }).map_err(|e| {
            // Serializing strings cannot fail; should it, say so without
            // the data.
            CredentialError::InvalidCredential(format!(
                "cannot write TOML: {}",
                e.to_string().lines().next().unwrap_or("")
            ))
        })?;
        Ok(format!(
            "# skotch credentials (hop-client's auth.toml format); manage with `skotch auth`.\n\
             # It holds passwords: keep it readable by you only (chmod 600).\n\n{body}"
        ))
    }
}

/// `user for host` or `user <none>`: a credential in a list, without secrets.
fn describe(c: &Credential, none: &str) -> String {
    match &c.hostname {
        Some(h) => format!("{} for {h}", c.username),
        None => format!("{} {none}", c.username),
    }
}

/// Refuses a file its group or others may access.
#[cfg(unix)]
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), CredentialError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(CredentialError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Permission bits mean nothing comparable off Unix.
#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &fs::Metadata) -> Result<(), CredentialError> {
    Ok(())
}

/// `dir` and its missing parents, created 0700 on Unix; an existing
/// directory is left as it is.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates `path` (which must not exist) with mode 0600 and writes `data`
/// to disk.
fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // The umask may have taken bits away (leaving the owner unable to
    // rewrite it later); set exactly 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(data)?;
    file.sync_all()
}

/// True when `s` is a broker address a credential's `hostname` may hold:
/// `host`, `host:port`, `[v6]` or `[v6]:port` (port 1..=65535; not a URL),
/// as the broker list of a `kafka://` URL spells it.
pub fn is_valid_hostname(s: &str) -> bool {
    s.parse::<BrokerAddr>().is_ok()
}

/// True when the stored hostname `stored` names the broker `target`
/// (case-insensitive host, port defaulting to 9092).
fn same_host(stored: &str, target: &BrokerAddr) -> bool {
    stored
        .parse::<BrokerAddr>()
        .is_ok_and(|s| s.host.eq_ignore_ascii_case(&target.host) && s.port == target.port)
}

/// The credentials of a file's text.
fn parse(path: &Path, text: &str) -> Result<Vec<Credential>, CredentialError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = e
            .span()
            .map(|s| line_column(text, s.start))
            .unwrap_or((0, 0));
        CredentialError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            // message() is the parser's sentence alone; Display would add
            // the offending line, which may hold a password.
            message: e.message().trim().to_string(),
        }
    })?;
    let entries: Vec<&toml::Table> = match table.get("auth") {
        None => Vec::new(),
        // hop-client's older single-credential form.
        Some(toml::Value::Table(t)) => vec![t],
        Some(toml::Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_table().ok_or_else(|| CredentialError::Invalid {
                    path: path.to_path_buf(),
                    entry: i + 1,
                    message: "not a table (expected [[auth]] tables)".into(),
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(CredentialError::Invalid {
                path: path.to_path_buf(),
                entry: 1,
                message: "`auth` must be [[auth]] tables".into(),
            })
        }
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            entry(t).map_err(|message| CredentialError::Invalid {
                path: path.to_path_buf(),
                entry: i + 1,
                message,
            })
        })
        .collect()
}

/// One `[[auth]]` table. Error messages name keys, never values that
/// could be a password.
fn entry(t: &toml::Table) -> Result<Credential, String> {
    let text = |key: &str| -> Result<Option<&str>, String> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let username = text("username")?.ok_or("`username` is missing")?;
    let password =
        text("password")?.ok_or_else(|| format!("`password` of {username} is missing"))?;
    let mechanism = match text("mechanism")? {
        Some(m) => m.parse::<SaslMechanism>().map_err(|e| e.to_string())?,
        None if t.contains_key("token_endpoint") => {
            return Err(format!(
                "{username} is an OAUTHBEARER credential (`token_endpoint`), which skotch does not support"
            ))
        }
        None => SaslMechanism::default(),
    };
    let protocol = match text("protocol")? {
        Some(p) => p.parse::<SecurityProtocol>().map_err(|_| {
            format!("unknown `protocol` {p:?} (expected SASL_SSL or SASL_PLAINTEXT)")
        })?,
        None => SecurityProtocol::SaslSsl,
    };
    let mut c = Credential::new(username, password)
        .with_mechanism(mechanism)
        .with_protocol(protocol);
    // hop writes "" for "none"; treat it so.
    if let Some(ca) = text("ssl_ca_location")?.filter(|s| !s.is_empty()) {
        c = c.with_ca_file(ca);
    }
    if let Some(h) = text("hostname")?.filter(|s| !s.is_empty()) {
        c = c.with_hostname(h);
    }
    for key in t.keys() {
        if !matches!(
            key.as_str(),
            "username"
                | "password"
                | "mechanism"
                | "protocol"
                | "ssl_ca_location"
                | "hostname"
                | "token_endpoint"
        ) {
            tracing::debug!(
                key = key.as_str(),
                "ignoring unknown key in the credentials file"
            );
        }
    }
    c.validate()?;
    Ok(c)
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "Sup3r-s3cret-pw";

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let p = std::env::temp_dir().join(format!(
                "skotch-creds-test-{}",
                uuid::Uuid::new_v4().simple()
            ));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn file(&self) -> PathBuf {
            self.0.join("auth.toml")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn store(creds: Vec<Credential>) -> CredentialStore {
        let mut s = CredentialStore::empty("/nonexistent/auth.toml");
        for c in creds {
            s.add(c).unwrap();
        }
        s
    }

    fn cred(user: &str, host: Option<&str>) -> Credential {
        let c = Credential::new(user, SECRET);
        match host {
            Some(h) => c.with_hostname(h),
            None => c,
        }
    }

    fn assert_no_secret(text: &str) {
        assert!(!text.contains(SECRET), "password leaked: {text}");
    }

    #[cfg(unix)]
    fn write_mode(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn round_trip() {
        let dir = TempDir::new();
        let path = dir.0.join("sub").join("dir").join("auth.toml");
        let mut s = CredentialStore::load(&path).unwrap();
        assert!(s.is_empty());
        s.add(Credential::new("alice", SECRET)).unwrap();
        s.add(
            Credential::new("bob", "pw \"with\" quotes\\ and = signs")
                .with_mechanism(SaslMechanism::Plain)
                .with_protocol(SecurityProtocol::SaslPlaintext)
                .with_ca_file("/etc/ca.pem")
                .with_hostname("kafka.example.org:9095"),
        )
        .unwrap();
        s.save().unwrap();
        let back = CredentialStore::load(&path).unwrap();
        assert_eq!(back.credentials(), s.credentials());
        assert_eq!(back.path(), path);
        // Saving again replaces the file and leaves no temporary behind.
        back.save().unwrap();
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("auth.toml")]);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("[[auth]]"), "{text}");
        assert!(text.contains("mechanism = \"SCRAM-SHA-512\""), "{text}");
    }

    #[test]
    fn add_replaces_same_user_and_host() {
        let mut s = store(vec![cred("alice", None), cred("alice", Some("k1:9092"))]);
        let old = s
            .add(Credential::new("alice", "new").with_hostname("K1"))
            .unwrap();
        assert!(old.is_some());
        assert_eq!(s.credentials().len(), 2);
        assert_eq!(s.credentials()[1].password().expose(), "new");
        assert!(s.add(cred("alice", Some("k2"))).unwrap().is_none());
        assert_eq!(s.credentials().len(), 3);
        for bad in [
            Credential::new("", "pw"),
            Credential::new("u", ""),
            Credential::new("u\n", "pw"),
            Credential::new("u", "pw").with_protocol(SecurityProtocol::Plaintext),
            Credential::new("u", "pw").with_hostname("kafka://h:1"),
            Credential::new("u", "pw").with_hostname("h:99999"),
        ] {
            let e = s.add(bad).unwrap_err();
            assert!(matches!(e, CredentialError::InvalidCredential(_)), "{e}");
        }
    }

    #[test]
    fn remove() {
        let mut s = store(vec![
            cred("alice", None),
            cred("alice", Some("k1")),
            cred("bob", None),
        ]);
        let e = s.remove("alice", None).unwrap_err();
        assert!(matches!(e, CredentialError::AmbiguousRemove { .. }), "{e}");
        assert!(e.to_string().contains("alice for k1"), "{e}");
        assert!(e.to_string().contains("--hostname"), "{e}");
        assert_no_secret(&format!("{e} {e:?}"));
        assert_eq!(
            s.remove("alice", Some("k1:9092"))
                .unwrap()
                .hostname
                .as_deref(),
            Some("k1")
        );
        assert!(s.remove("alice", None).unwrap().hostname.is_none());
        let e = s.remove("alice", None).unwrap_err();
        assert!(matches!(e, CredentialError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("alice"), "{e}");
        assert_no_secret(&format!("{e} {e:?}"));
        assert!(s.remove("bob", Some("k1")).is_err());
        assert_eq!(s.credentials().len(), 1);
    }

    #[test]
    fn hop_file_parses() {
        // As hop-client's `hop auth add` writes it, plus an older-style
        // mechanism spelling and keys skotch does not use.
        let text = r#"
[[auth]]
username = "hop-user-1"
password = "Sup3r-s3cret-pw"
protocol = "SASL_SSL"
mechanism = "SCRAM_SHA_512"
hostname = "kafka.scimma.org"
ssl_ca_location = "/home/u/ca.pem"

[[auth]]
username = "hop-user-2"
password = "another"
protocol = "SASL_PLAINTEXT"
mechanism = "SCRAM-SHA-256"
extra_key = 5
"#;
        let c = parse(Path::new("auth.toml"), text).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].username, "hop-user-1");
        assert_eq!(c[0].password().expose(), SECRET);
        assert_eq!(c[0].mechanism, SaslMechanism::ScramSha512);
        assert_eq!(c[0].protocol(), SecurityProtocol::SaslSsl);
        assert_eq!(c[0].hostname.as_deref(), Some("kafka.scimma.org"));
        assert_eq!(c[0].ca_file(), Some(Path::new("/home/u/ca.pem")));
        assert_eq!(c[1].mechanism, SaslMechanism::ScramSha256);
        assert_eq!(c[1].protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(c[1].hostname, None);

        // hop's old single table; defaults for what is missing.
        let c = parse(
            Path::new("auth.toml"),
            "[auth]\nusername = \"u\"\npassword = \"p\"\n",
        )
        .unwrap();
        assert_eq!(c, vec![Credential::new("u", "p")]);
        // Empty file, or no auth key: no credentials.
        assert!(parse(Path::new("a"), "").unwrap().is_empty());
        assert!(parse(Path::new("a"), "auth = []").unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_clear_and_secret_free() {
        for (text, want) in [
            ("[[auth]]\npassword = \"Sup3r-s3cret-pw\"\n", "`username` is missing"),
            ("[[auth]]\nusername = \"u\"\n", "`password` of u is missing"),
            ("[[auth]]\nusername = \"u\"\npassword = 12345\n", "`password` must be a string"),
            (
                "[[auth]]\nusername = \"u\"\npassword = \"Sup3r-s3cret-pw\"\nmechanism = \"GSSAPI\"\n",
                "GSSAPI",
            ),
            (
                "[[auth]]\nusername = \"u\"\npassword = \"Sup3r-s3cret-pw\"\nprotocol = \"TLS\"\n",
                "TLS",
            ),
            (
                "[[auth]]\nusername = \"u\"\npassword = \"Sup3r-s3cret-pw\"\nprotocol = \"SSL\"\n",
                "does not use SASL",
            ),
            (
                "[[auth]]\nusername = \"u\"\npassword = \"Sup3r-s3cret-pw\"\ntoken_endpoint = \"https://x\"\n",
                "OAUTHBEARER",
            ),
            ("auth = 5\n", "[[auth]] tables"),
            ("auth = [5]\n", "not a table"),
        ] {
            let e = parse(Path::new("/x/auth.toml"), text).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(shown.contains(want), "{want:?} not in {shown}");
            assert!(shown.contains("/x/auth.toml"), "{shown}");
            assert_no_secret(&shown);
        }
        let e = parse(
            Path::new("a"),
            "[[auth]]\nusername = \"u\"\npassword = 12345\n",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("12345"), "{e}");
    }

    #[test]
    fn toml_syntax_error_does_not_echo_the_line() {
        for text in [
            // Unterminated string holding the password.
            "[[auth]]\nusername = \"u\"\npassword = \"Sup3r-s3cret-pw\n",
            // Missing quotes.
            "[[auth]]\nusername = \"u\"\npassword = Sup3r-s3cret-pw\n",
            // Junk after the value.
            "[[auth]]\nusername = \"u\"\npassword = \"Sup3r-s3cret-pw\" x\n",
            // Duplicate key.
            "[[auth]]\nusername = \"u\"\npassword = \"Sup3r-s3cret-pw\"\npassword = \"Sup3r-s3cret-pw\"\n",
            // Bad escape.
            "[[auth]]\nusername = \"u\"\npassword = \"Sup3r-s3cret-pw\\q\"\n",
        ] {
            let e = parse(Path::new("/x/auth.toml"), text).unwrap_err();
            let shown = format!("{e} | {e:?}");
            assert!(matches!(e, CredentialError::Parse { .. }), "{shown}");
            assert!(shown.contains("line"), "{shown}");
            assert_no_secret(&shown);
        }
        let e = parse(
            Path::new("a"),
            "[[auth]]\nusername = \"u\"\npassword = oops\n",
        )
        .unwrap_err();
        match e {
            CredentialError::Parse { line, column, .. } => assert_eq!((line, column), (3, 12)),
            other => panic!("{other}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new();
        let path = dir.0.join("new").join("auth.toml");
        let mut s = CredentialStore::load(&path).unwrap();
        s.add(cred("alice", None)).unwrap();
        s.save().unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        // Rewriting a file that had become loose makes it 0600 again.
        write_mode(&path, &fs::read_to_string(&path).unwrap(), 0o644);
        s.save().unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn loose_mode_refused() {
        let dir = TempDir::new();
        let path = dir.file();
        let text = format!("[[auth]]\nusername = \"u\"\npassword = \"{SECRET}\"\n");
        for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
            write_mode(&path, &text, mode);
            let e = CredentialStore::load(&path).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(matches!(e, CredentialError::Permissions { .. }), "{shown}");
            assert!(
                shown.contains(&format!("chmod 600 {}", path.display())),
                "{shown}"
            );
            assert!(shown.contains(&format!("{mode:04o}")), "{shown}");
            assert_no_secret(&shown);
        }
        for mode in [0o600, 0o400] {
            write_mode(&path, &text, mode);
            assert_eq!(CredentialStore::load(&path).unwrap().credentials().len(), 1);
        }
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = TempDir::new();
        let s = CredentialStore::load(dir.file()).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.select(None, "127.0.0.1:9092").unwrap(), None);
        let e = s.select(Some("alice"), "127.0.0.1:9092").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        // A directory is not a credentials file.
        assert!(CredentialStore::load(&dir.0).is_err());
    }

    #[test]
    fn default_path_order() {
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, OsString> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), OsString::from(v)))
                .collect();
            default_path_from(move |k| m.get(k).cloned())
        };
        let all = [
            ("SKOTCH_AUTH_FILE", "/f/auth.toml"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(env(&all).unwrap(), PathBuf::from("/f/auth.toml"));
        assert_eq!(
            env(&all[1..]).unwrap(),
            PathBuf::from("/xdg/skotch/auth.toml")
        );
        assert_eq!(
            env(&all[2..]).unwrap(),
            PathBuf::from("/home/u/.config/skotch/auth.toml")
        );
        // Empty values count as unset; a relative XDG_CONFIG_HOME is ignored.
        assert_eq!(
            env(&[
                ("SKOTCH_AUTH_FILE", ""),
                ("XDG_CONFIG_HOME", "rel"),
                ("HOME", "/h")
            ])
            .unwrap(),
            PathBuf::from("/h/.config/skotch/auth.toml")
        );
        assert!(matches!(env(&[]), Err(CredentialError::NoConfigDir)));
    }

    #[test]
    fn host_port_forms() {
        for good in ["h", "h:9095", "[::1]:9095", "[::1]"] {
            assert!(is_valid_hostname(good), "{good}");
        }
        for bad in [
            "", ":1", "h:", "h:0", "h:x", "h:70000", "[::1", "[::1]x", "k://h", "u@h", "h h", "::1",
        ] {
            assert!(!is_valid_hostname(bad), "{bad}");
        }
        let target = BrokerAddr::new("kafka.example", 9092);
        assert!(same_host("KAFKA.example:9092", &target));
        assert!(same_host("kafka.example", &target));
        assert!(!same_host("kafka.example:9093", &target));
    }

    #[test]
    fn select_with_username() {
        let s = store(vec![
            cred("alice", Some("k1:9095")),
            cred("alice", Some("k2")),
            cred("bob", None),
            cred("carol", None),
            cred("carol", Some("k1:9095")),
        ]);
        // The one whose hostname matches, port defaulting to 9092.
        assert_eq!(
            s.select(Some("alice"), "k1:9095")
                .unwrap()
                .unwrap()
                .hostname
                .as_deref(),
            Some("k1:9095")
        );
        assert_eq!(
            s.select(Some("alice"), "K2:9092")
                .unwrap()
                .unwrap()
                .hostname
                .as_deref(),
            Some("k2")
        );
        // A user's only credential, for any host.
        assert_eq!(
            s.select(Some("bob"), "k9").unwrap().unwrap().username,
            "bob"
        );
        // The host-specific one beats the general one; elsewhere the general.
        assert!(s
            .select(Some("carol"), "k1:9095")
            .unwrap()
            .unwrap()
            .hostname
            .is_some());
        assert!(s
            .select(Some("carol"), "k2")
            .unwrap()
            .unwrap()
            .hostname
            .is_none());
        // alice has no credential for k3: an error naming her hosts.
        let e = s.select(Some("alice"), "k3:9092").unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(matches!(e, CredentialError::NoMatch { .. }), "{shown}");
        assert!(
            shown.contains("alice") && shown.contains("k3:9092"),
            "{shown}"
        );
        assert!(shown.contains("k1:9095, k2"), "{shown}");
        assert!(shown.contains("/nonexistent/auth.toml"), "{shown}");
        assert_no_secret(&shown);
        // An unknown user.
        let e = s.select(Some("dave"), "k1:9095").unwrap_err();
        assert!(e.to_string().contains("dave"), "{e}");
        assert!(e.to_string().contains("skotch auth add"), "{e}");

        // A hand-edited file with two entries for alice at the same broker
        // (`add` would have replaced one): ambiguous.
        let s = CredentialStore {
            path: "/nonexistent/auth.toml".into(),
            credentials: vec![
                cred("alice", None),
                Credential::new("alice", "x").with_hostname("k1"),
                Credential::new("alice", SECRET)
                    .with_hostname("k2:1")
                    .with_mechanism(SaslMechanism::Plain),
                Credential::new("alice", SECRET).with_hostname("k2:01"),
            ],
            file_exists: true,
        };
        let e = s.select(Some("alice"), "k2:1").unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(matches!(e, CredentialError::Ambiguous { .. }), "{shown}");
        assert!(
            shown.contains("alice for k2:1") && shown.contains("alice for k2:01"),
            "{shown}"
        );
        assert_no_secret(&shown);
    }

    #[test]
    fn select_without_username() {
        // No credentials: connect without authentication.
        let s = store(vec![]);
        assert_eq!(s.select(None, "k1").unwrap(), None);
        // Exactly one, for any host: used.
        let s = store(vec![cred("alice", None)]);
        assert_eq!(s.select(None, "k1").unwrap().unwrap().username, "alice");
        // One for another host only: none.
        let s = store(vec![cred("alice", Some("k2"))]);
        assert_eq!(s.select(None, "k1").unwrap(), None);
        // The one matching the host wins over the general ones.
        let s = store(vec![
            cred("alice", None),
            cred("bob", Some("k1:9092")),
            cred("carol", Some("k2")),
        ]);
        assert_eq!(s.select(None, "k1").unwrap().unwrap().username, "bob");
        assert_eq!(s.select(None, "k3").unwrap().unwrap().username, "alice");
        // Several: an error listing them and asking for username@.
        let s = store(vec![
            cred("alice", None),
            cred("bob", None),
            cred("carol", Some("k2")),
        ]);
        let e = s.select(None, "k1:9092").unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(matches!(e, CredentialError::Ambiguous { .. }), "{shown}");
        assert!(shown.contains("alice") && shown.contains("bob"), "{shown}");
        assert!(!shown.contains("carol"), "{shown}");
        assert!(shown.contains("kafka://USERNAME@k1:9092/"), "{shown}");
        assert_no_secret(&shown);
        let s = store(vec![
            cred("alice", Some("k1")),
            cred("bob", Some("k1:9092")),
        ]);
        assert!(s.select(None, "k1").is_err());
    }

    #[test]
    fn select_for_url() {
        let s = store(vec![
            cred("alice", Some("[::1]:9095")),
            cred("bob", Some("localhost:9095")),
        ]);
        let url: KafkaUrl = "kafka://alice@[::1]:9095,h2/t".parse().unwrap();
        assert_eq!(s.select_for_url(&url).unwrap().unwrap().username, "alice");
        let url: KafkaUrl = "kafka://localhost:9095/t".parse().unwrap();
        assert_eq!(s.select_for_url(&url).unwrap().unwrap().username, "bob");
        let url: KafkaUrl = "kafka://127.0.0.1:9092/t".parse().unwrap();
        assert_eq!(s.select_for_url(&url).unwrap(), None);
        let url: KafkaUrl = "kafka://carol@127.0.0.1/t".parse().unwrap();
        assert!(s.select_for_url(&url).is_err());
    }

    #[test]
    fn nothing_shows_the_password() {
        let c = Credential::new("alice", SECRET)
            .with_ca_file("/etc/ca.pem")
            .with_hostname("k1:9095");
        let s = store(vec![c.clone()]);
        let shown = format!("{c} {c:?} {c:#?} {s:?} {s:#?} {:?}", SaslConfig::from(&c));
        assert_no_secret(&shown);
        assert!(
            shown.contains("alice") && shown.contains("k1:9095"),
            "{shown}"
        );
        assert_eq!(
            c.to_string(),
            "alice (SCRAM-SHA-512 over SASL_SSL, for k1:9095, CA /etc/ca.pem)"
        );
        let sasl = c.sasl_config();
        assert_eq!(sasl.username, "alice");
        assert_eq!(sasl.password.expose(), SECRET);
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(SaslConfig::from(c), sasl);
        for e in [
            CredentialError::NoConfigDir,
            CredentialError::InvalidCredential("x".into()),
            CredentialError::Io {
                path: "/p".into(),
                action: "reading",
                source: io::Error::other("boom"),
            },
        ] {
            assert_no_secret(&format!("{e} {e:?}"));
        }
    }
}
