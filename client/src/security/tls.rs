//! TLS for broker connections (`security.protocol` SSL and SASL_SSL), on
//! [rustls](https://docs.rs/rustls).
//!
//! # Crypto provider
//! rustls needs a crypto provider. skotch picks one in this order:
//! 1. the one chosen with [`TlsConfig::provider`] (Java's `ssl.provider`);
//! 2. **graviola** (feature `graviola`, default): pure Rust, so the default
//!    build compiles no C. It runs on x86_64 with AES-NI, PCLMULQDQ, BMI1,
//!    ADX, AVX and AVX2 (most CPUs since 2013–2015) and on aarch64 with AES,
//!    PMULL and SHA2. Those are checked at run time: graviola would panic
//!    otherwise. On such a CPU skotch falls back to ring or aws-lc-rs when
//!    one is compiled in, else fails with [`Error::Tls`] /
//!    [`TlsFailure::UnsupportedCpu`];
//! 3. **ring** (feature `ring`), then **aws-lc-rs** (feature `aws-lc-rs`);
//!    both compile C;
//! 4. the process-wide rustls provider, if the application installed one
//!    (`CryptoProvider::install_default`);
//! 5. otherwise [`Error::Config`].
//!
//! A complete `rustls::ClientConfig` can also be given with
//! [`TlsConfig::from_rustls`]; it is used as is.
//!
//! # Trust
//! - [`TlsConfig::ca_file`]: trust only the CAs in a PEM file (Java
//!   `ssl.truststore.type=PEM` + `ssl.truststore.location`, librdkafka
//!   `ssl.ca.location`). What private clusters and the test broker need.
//! - `TlsConfig::platform_roots` (feature `platform-roots`): the operating
//!   system's store, as the JVM's default truststore does.
//! - `TlsConfig::webpki_roots` (feature `webpki-roots`, default): Mozilla's
//!   root program, compiled in.
//!
//! Without a choice: the platform's roots when compiled in, else Mozilla's.
//!
//! The broker's certificate is always checked against the host name we
//! connect to (the host in `bootstrap.servers` or in metadata), as Java does
//! with its default `ssl.endpoint.identification.algorithm=https`. That
//! name is sent as SNI, except for IP addresses (RFC 6066 forbids it), which
//! are matched against the certificate's IP SANs. [`TlsConfig::server_name`]
//! overrides the name.
//!
//! # Turning verification off
//! [`TlsConfig::dangerous_disable_verification`] is the only way to accept
//! any certificate. It makes the connection open to anyone in the middle,
//! so it logs a warning when the configuration is built and on every
//! connection. Handshake signatures are still checked, which keeps the
//! connection bound to the key of the certificate shown, but nothing says
//! that certificate belongs to the broker.
//!
//! # Errors
//! Handshake failures become [`Error::Tls`] with a [`TlsFailure`] callers can
//! match on, and a detail that says what to check. With TLS 1.3 a broker
//! that rejects the client certificate (mTLS, `ssl.client.auth=required`)
//! does so *after* the client considers the handshake done: the rejection
//! arrives on the first read, and [`TlsConnector::classify_io_error`] turns
//! that I/O error into the same [`Error::Tls`].

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::{Error, Result, TlsFailure};

/// The rustls version skotch uses, for [`TlsConfig::from_rustls`].
pub use rustls;

/// PEM files larger than this are refused: a CA bundle of every public root
/// is about 250 KB, and reading without a limit would let a wrong path
/// (a device, a huge log) exhaust memory.
const MAX_PEM_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Which rustls crypto provider to use (Java's `ssl.provider`). Each needs
/// its cargo feature; choosing one that is not compiled in is an
/// [`Error::Config`] when the configuration is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsProvider {
    /// graviola: pure Rust (feature `graviola`, default). x86_64 and aarch64
    /// only, with the CPU features listed in the module docs.
    Graviola,
    /// ring (feature `ring`; compiles C).
    Ring,
    /// aws-lc-rs (feature `aws-lc-rs`; compiles C and needs cmake).
    AwsLcRs,
}

impl TlsProvider {
    /// The cargo feature that compiles it in.
    pub fn feature(&self) -> &'static str {
        match self {
            TlsProvider::Graviola => "graviola",
            TlsProvider::Ring => "ring",
            TlsProvider::AwsLcRs => "aws-lc-rs",
        }
    }
}

/// TLS settings for broker connections. Build with [`TlsConfig::new`] and
/// the methods below, or wrap a complete rustls configuration with
/// [`TlsConfig::from_rustls`]. Files are read when the configuration is
/// built into a [`TlsConnector`] (once per client), not here.
///
/// `Debug` shows paths and choices, never key material.
#[derive(Clone, Default)]
pub struct TlsConfig {
    provider: Option<TlsProvider>,
    ca_files: Vec<PathBuf>,
    platform_roots: bool,
    webpki_roots: bool,
    client_cert: Option<ClientCertFiles>,
    server_name: Option<String>,
    dangerous_disable_verification: bool,
    rustls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Clone, Debug)]
struct ClientCertFiles {
    chain: PathBuf,
    key: PathBuf,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written by hand: a rustls ClientConfig's Debug reaches into its
        // client-certificate resolver, and nothing here may risk printing a
        // key. We only hold paths, which are fine to show.
        f.debug_struct("TlsConfig")
            .field("provider", &self.provider)
            .field("ca_files", &self.ca_files)
            .field("platform_roots", &self.platform_roots)
            .field("webpki_roots", &self.webpki_roots)
            .field("client_cert", &self.client_cert)
            .field("server_name", &self.server_name)
            .field(
                "dangerous_disable_verification",
                &self.dangerous_disable_verification,
            )
            .field(
                "rustls",
                &self.rustls.as_ref().map(|_| "<user-supplied ClientConfig>"),
            )
            .finish()
    }
}

impl TlsConfig {
    /// Defaults: the provider and trusted roots described in the module
    /// docs, no client certificate, host name verification on.
    pub fn new() -> Self {
        Self::default()
    }

    /// A complete rustls configuration, used as is: its provider, roots,
    /// verifier and client certificate are the caller's. Only
    /// [`TlsConfig::server_name`] may be combined with it; the other
    /// settings give [`Error::Config`] when built, rather than being
    /// silently ignored.
    pub fn from_rustls(config: Arc<rustls::ClientConfig>) -> Self {
        Self {
            rustls: Some(config),
            ..Self::default()
        }
    }

    /// The crypto provider (Java `ssl.provider`). Default: see the module
    /// docs.
    pub fn provider(mut self, provider: TlsProvider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Trust the CA certificates in this PEM file, and (unless
    /// `TlsConfig::platform_roots` or `TlsConfig::webpki_roots` is also
    /// called) only them. Mirrors Java's `ssl.truststore.location` with
    /// `ssl.truststore.type=PEM`, and librdkafka's `ssl.ca.location`. May be
    /// called more than once; all files are trusted.
    ///
    /// The file is read when the configuration is built: a missing file, or
    /// one without a usable certificate, is an [`Error::Config`] naming it.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Trust the operating system's root certificates, read when the
    /// configuration is built (the JVM's default truststore is the Java
    /// analogue; librdkafka's `ssl.ca.location=probe`).
    #[cfg(feature = "platform-roots")]
    pub fn platform_roots(mut self) -> Self {
        self.platform_roots = true;
        self
    }

    /// Trust Mozilla's root program, as compiled into the `webpki-roots`
    /// crate. No Java property matches; it is the same role as the JVM's
    /// bundled `cacerts`.
    #[cfg(feature = "webpki-roots")]
    pub fn webpki_roots(mut self) -> Self {
        self.webpki_roots = true;
        self
    }

    /// Present this client certificate when the broker asks for one (mTLS,
    /// broker `ssl.client.auth=required`). `cert_chain` is a PEM file with
    /// the certificate first, then any intermediates; `key` a PEM file with
    /// its unencrypted private key (PKCS#8, PKCS#1 or SEC1). Both may be the
    /// same file. Mirrors Java's `ssl.keystore.location` with
    /// `ssl.keystore.type=PEM`, and librdkafka's `ssl.certificate.location` +
    /// `ssl.key.location`.
    pub fn client_cert(mut self, cert_chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(ClientCertFiles {
            chain: cert_chain.into(),
            key: key.into(),
        });
        self
    }

    /// Verify the broker's certificate against this name, and send it as SNI,
    /// instead of the host we connect to. For brokers reached through an
    /// address their certificate does not name (a tunnel, a load balancer).
    /// A DNS name or an IP address.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **Dangerous**: accept any certificate, from any issuer, for any name,
    /// expired or not. Anyone able to intercept the connection can then
    /// read and change everything, SASL passwords included. For throwaway
    /// test setups only; use [`TlsConfig::ca_file`] with the test CA instead
    /// where possible. Logs a warning each time a configuration with it is
    /// built and on every connection. Librdkafka's
    /// `enable.ssl.certificate.verification=false`.
    pub fn dangerous_disable_verification(mut self) -> Self {
        self.dangerous_disable_verification = true;
        self
    }

    /// Read the files, pick the provider and build the rustls configuration,
    /// once per client; connections share it.
    ///
    /// Errors: [`Error::Config`] for an unreadable or empty file (naming the
    /// path; key contents are never shown), a provider that is not compiled
    /// in, no trusted roots available, an invalid server name, or settings
    /// combined with [`TlsConfig::from_rustls`]; [`Error::Tls`] with
    /// [`TlsFailure::UnsupportedCpu`] when graviola cannot run here and no
    /// other provider is compiled in.
    pub fn connector(&self) -> Result<TlsConnector> {
        let server_name = match &self.server_name {
            None => None,
            Some(name) => Some(parse_server_name(name).ok_or_else(|| {
                Error::Config(format!(
                    "TLS server name {name:?} is neither a DNS name nor an IP address"
                ))
            })?),
        };
        if let Some(config) = &self.rustls {
            self.check_nothing_else_set()?;
            return Ok(TlsConnector {
                config: config.clone(),
                server_name,
                trust: "the user-supplied rustls ClientConfig's roots".into(),
                client_cert: Some("of the user-supplied rustls ClientConfig".into()),
                dangerous: false,
            });
        }

        let provider = select_provider(self.provider)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                Error::Config(format!(
                    "the TLS crypto provider supports neither TLS 1.2 nor 1.3: {e}"
                ))
            })?;

        let (builder, trust) = if self.dangerous_disable_verification {
            tracing::warn!(
                "TLS certificate verification is DISABLED (TlsConfig::dangerous_disable_verification): \
                 any broker certificate is accepted, so anyone in the middle can read and change \
                 the traffic, credentials included"
            );
            let verifier = AcceptAnyCertificate {
                provider: provider.clone(),
            };
            (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier)),
                "nothing (verification disabled)".to_string(),
            )
        } else {
            let (roots, trust) = self.root_store()?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::Config(format!("cannot build the TLS verifier: {e}")))?;
            // `dangerous()` is only the door to a custom verifier; ours
            // delegates every check to webpki and only refines its errors.
            (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(DiagnosingVerifier {
                        inner: webpki,
                    })),
                trust,
            )
        };

        let (config, client_cert) = match &self.client_cert {
            None => (builder.with_no_client_auth(), None),
            Some(files) => {
                let chain = load_certs(&files.chain, "client certificate file")?;
                let key = load_key(&files.key)?;
                let config = builder.with_client_auth_cert(chain, key).map_err(|e| {
                    // rustls's message says what (unsupported key type, key
                    // not matching the certificate) without key bytes.
                    Error::Config(format!(
                        "client certificate {} with key {} cannot be used: {e}",
                        files.chain.display(),
                        files.key.display()
                    ))
                })?;
                (config, Some(files.chain.display().to_string()))
            }
        };

        Ok(TlsConnector {
            config: Arc::new(config),
            server_name,
            trust: trust.into(),
            client_cert: client_cert.map(Into::into),
            dangerous: self.dangerous_disable_verification,
        })
    }

    fn check_nothing_else_set(&self) -> Result<()> {
        let mut set = Vec::new();
        if self.provider.is_some() {
            set.push("provider");
        }
        if !self.ca_files.is_empty() {
            set.push("ca_file");
        }
        if self.platform_roots {
            set.push("platform_roots");
        }
        if self.webpki_roots {
            set.push("webpki_roots");
        }
        if self.client_cert.is_some() {
            set.push("client_cert");
        }
        if self.dangerous_disable_verification {
            set.push("dangerous_disable_verification");
        }
        if set.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "TlsConfig::from_rustls uses the given rustls ClientConfig as is; \
                 configure {} in that ClientConfig instead",
                set.join(", ")
            )))
        }
    }

    /// The trusted roots and a description of them for error details.
    fn root_store(&self) -> Result<(RootCertStore, String)> {
        let mut roots = RootCertStore::empty();
        let mut sources = Vec::new();
        for path in &self.ca_files {
            let certs = load_certs(path, "CA file")?;
            let count = certs.len();
            let (added, ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::Config(format!(
                    "CA file {}: none of its {count} certificates can be used as a trust anchor",
                    path.display()
                )));
            }
            if ignored > 0 {
                tracing::debug!(
                    path = %path.display(),
                    ignored,
                    "CA file: some certificates cannot be trust anchors"
                );
            }
            sources.push(format!("CA file {}", path.display()));
        }
        let nothing_chosen = sources.is_empty() && !self.platform_roots && !self.webpki_roots;
        let platform = self.platform_roots || (nothing_chosen && cfg!(feature = "platform-roots"));
        let webpki = self.webpki_roots
            || (nothing_chosen
                && !cfg!(feature = "platform-roots")
                && cfg!(feature = "webpki-roots"));
        if platform {
            add_platform_roots(&mut roots)?;
            sources.push("the system's root certificates".to_string());
        }
        if webpki {
            add_webpki_roots(&mut roots);
            sources.push("Mozilla's root certificates (webpki-roots)".to_string());
        }
        if sources.is_empty() {
            return Err(Error::Config(
                "TLS has no trusted roots: set a CA file (TlsConfig::ca_file, ssl.truststore.location) \
                 or build skotch with the `webpki-roots` or `platform-roots` feature"
                    .into(),
            ));
        }
        Ok((roots, sources.join(" and ")))
    }
}

#[cfg(feature = "platform-roots")]
fn add_platform_roots(roots: &mut RootCertStore) -> Result<()> {
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(Error::Config(format!(
            "no usable root certificates found in the system's store{why}; \
             set a CA file with TlsConfig::ca_file (ssl.truststore.location)"
        )));
    }
    Ok(())
}

#[cfg(not(feature = "platform-roots"))]
fn add_platform_roots(_: &mut RootCertStore) -> Result<()> {
    Err(Error::Config(
        "the system's root certificates need skotch's `platform-roots` feature".into(),
    ))
}

#[cfg(feature = "webpki-roots")]
fn add_webpki_roots(roots: &mut RootCertStore) {
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
}

#[cfg(not(feature = "webpki-roots"))]
fn add_webpki_roots(_: &mut RootCertStore) {}

/// The rustls configuration of a client plus what each connection needs:
/// the server name override and descriptions for error details. Built by
/// [`TlsConfig::connector`]; cheap to clone. `Debug` shows no key material.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
    /// What is trusted, for error details ("CA file /x/ca.pem").
    trust: Arc<str>,
    /// The client certificate file, for error details.
    client_cert: Option<Arc<str>>,
    dangerous: bool,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .field("trust", &self.trust)
            .field("client_cert", &self.client_cert)
            .field("dangerous_disable_verification", &self.dangerous)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// The rustls configuration connections use.
    pub fn rustls_config(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }

    /// Run the TLS handshake on `tcp`, a fresh connection to `addr`
    /// (`host:port`, for errors) where `host` is the broker's host as in
    /// `bootstrap.servers` or metadata. The certificate is verified for
    /// `host` unless [`TlsConfig::server_name`] overrides it.
    ///
    /// No timeout of its own: the caller bounds the whole connection set-up.
    ///
    /// Errors: [`Error::Tls`] classified as described on [`TlsFailure`];
    /// [`Error::Io`] for socket errors that say nothing about TLS;
    /// [`Error::Config`] when `host` is not a valid name for TLS.
    pub(crate) async fn connect(
        &self,
        host: &str,
        addr: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => parse_server_name(host).ok_or_else(|| {
                Error::Config(format!(
                    "broker host {host:?} ({addr}) is neither a DNS name nor an IP address, so its \
                     certificate cannot be checked; set TlsConfig::server_name"
                ))
            })?,
        };
        if self.dangerous {
            tracing::warn!(
                addr,
                "connecting with TLS certificate verification DISABLED \
                 (TlsConfig::dangerous_disable_verification)"
            );
        }
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| self.handshake_error(addr, &e))
    }

    /// For an I/O error on an established TLS connection: the [`Error::Tls`]
    /// it stands for when TLS caused it, else `None` (treat it as any I/O
    /// error). Needed because with TLS 1.3 the broker rejects a missing or
    /// untrusted client certificate after our side of the handshake is
    /// done: the alert is the first thing read.
    pub fn classify_io_error(&self, addr: &str, err: &io::Error) -> Option<Error> {
        let tls = rustls_error(err)?;
        let (kind, detail) = self.classify(tls);
        Some(Error::Tls {
            addr: addr.to_string(),
            kind,
            detail,
        })
    }

    fn handshake_error(&self, addr: &str, err: &io::Error) -> Error {
        let (kind, detail) = match rustls_error(err) {
            Some(tls) => self.classify(tls),
            // The peer hung up mid-handshake without a TLS alert. A TLS
            // listener would have sent an alert; Kafka's PLAINTEXT listener
            // reads our ClientHello as a request of some 369 MB, refuses it
            // and closes (a reset, since the rest of the hello is unread).
            None if matches!(
                err.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ) =>
            {
                (
                    TlsFailure::NotTls,
                    format!(
                        "the broker closed the connection during the TLS handshake without a TLS \
                         alert ({err}); this port is probably not a TLS listener (PLAINTEXT or \
                         SASL_PLAINTEXT?): check security.protocol and the port"
                    ),
                )
            }
            None => {
                return Error::io(
                    addr,
                    format!("during the TLS handshake: {err}"),
                    Some(io::Error::new(err.kind(), err.to_string())),
                )
            }
        };
        Error::Tls {
            addr: addr.to_string(),
            kind,
            detail,
        }
    }

    /// The failure kind and a detail that says what to do.
    fn classify(&self, err: &rustls::Error) -> (TlsFailure, String) {
        let trust = &self.trust;
        match err {
            rustls::Error::InvalidCertificate(cert) => classify_certificate(cert, trust),
            rustls::Error::AlertReceived(alert) if is_client_cert_alert(*alert) => {
                let advice = match &self.client_cert {
                    None => "the broker requires a client certificate (ssl.client.auth=required); \
                             configure one with TlsConfig::client_cert (ssl.keystore.location)"
                        .to_string(),
                    Some(path) => format!(
                        "check that the client certificate {path} is valid, has the clientAuth \
                         usage and is signed by a CA in the broker's ssl.truststore"
                    ),
                };
                (
                    TlsFailure::ClientCertificate,
                    format!("the broker sent the {alert:?} alert: {advice}"),
                )
            }
            rustls::Error::InvalidMessage(m) if is_not_tls(m) => (
                TlsFailure::NotTls,
                format!(
                    "the broker's answer is not TLS ({err}); this port is probably a PLAINTEXT or \
                     SASL_PLAINTEXT listener: check security.protocol and the port"
                ),
            ),
            rustls::Error::PeerSentOversizedRecord => (
                TlsFailure::NotTls,
                format!(
                    "the broker's answer is not TLS ({err}); check security.protocol and the port"
                ),
            ),
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure) => (
                TlsFailure::Other,
                format!(
                    "{err}: the broker and skotch share no TLS version, cipher suite or \
                     signature algorithm, or the broker requires a client certificate"
                ),
            ),
            other => (TlsFailure::Other, other.to_string()),
        }
    }
}

fn classify_certificate(err: &CertificateError, trust: &str) -> (TlsFailure, String) {
    match err {
        CertificateError::UnknownIssuer => (
            TlsFailure::UnknownIssuer,
            format!(
                "the certificate chain does not lead to a CA in {trust}; check that the CA file \
                 (ssl.truststore.location / ssl.ca.location) holds the CA that signed the \
                 broker's certificate"
            ),
        ),
        CertificateError::Other(other) if other.0.downcast_ref::<SelfSigned>().is_some() => (
            TlsFailure::SelfSigned,
            format!(
                "the broker's certificate is its own issuer and is not in {trust}; give its \
                 CA (or the certificate itself) with TlsConfig::ca_file (ssl.truststore.location)"
            ),
        ),
        CertificateError::Expired => (
            TlsFailure::Expired,
            "renew the broker's certificate, or check this machine's clock".into(),
        ),
        CertificateError::ExpiredContext { time, not_after } => (
            TlsFailure::Expired,
            format!(
                "it expired at {} and it is now {}; renew the broker's certificate, or check \
                 this machine's clock",
                utc(not_after),
                utc(time)
            ),
        ),
        CertificateError::NotValidYet => (
            TlsFailure::NotYetValid,
            "check this machine's clock (and the broker's certificate dates)".into(),
        ),
        CertificateError::NotValidYetContext { time, not_before } => (
            TlsFailure::NotYetValid,
            format!(
                "it is valid from {} and it is now {}; check this machine's clock (and the \
                 broker's certificate dates)",
                utc(not_before),
                utc(time)
            ),
        ),
        CertificateError::NotValidForName => (
            TlsFailure::HostnameMismatch,
            "connect with a name in the certificate's subjectAltName, or set \
             TlsConfig::server_name to the name the certificate is for"
                .into(),
        ),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => (
            TlsFailure::HostnameMismatch,
            format!(
                "we expected {} but the certificate is for {}; connect with a name the \
                 certificate lists (check advertised.listeners), or set TlsConfig::server_name",
                server_name_str(expected),
                if presented.is_empty() {
                    "no names".to_string()
                } else {
                    presented
                        .iter()
                        .map(|p| presented_name(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ),
        other => (
            TlsFailure::Other,
            format!("the broker's certificate was rejected: {other}"),
        ),
    }
}

/// rustls lists a certificate's names as `DnsName("x")` / `IpAddress(x)`;
/// users know them as `x`.
fn presented_name(p: &str) -> &str {
    p.strip_prefix("DnsName(\"")
        .and_then(|r| r.strip_suffix("\")"))
        .or_else(|| {
            p.strip_prefix("IpAddress(")
                .and_then(|r| r.strip_suffix(')'))
        })
        .unwrap_or(p)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a certificate time (Howard Hinnant's
/// days-to-civil algorithm; no date crate for one message).
fn utc(t: &UnixTime) -> String {
    let secs = t.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

fn server_name_str(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// Alerts a server sends about the client's certificate (RFC 8446 §6.2).
fn is_client_cert_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
    )
}

/// Record-layer garbage: what a non-TLS peer's first bytes look like to
/// rustls (an invalid content type or version, a length over 16 KB).
fn is_not_tls(m: &rustls::InvalidMessage) -> bool {
    use rustls::InvalidMessage as M;
    matches!(
        m,
        M::InvalidContentType
            | M::UnknownProtocolVersion
            | M::MessageTooLarge
            | M::MessageTooShort
            | M::InvalidEmptyPayload
    )
}

/// The rustls error inside an I/O error from tokio-rustls, if any.
fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Host names from metadata may be IPv6 literals in brackets.
fn parse_server_name(host: &str) -> Option<ServerName<'static>> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_string()).ok()
}

// ---- provider ----

/// Whether graviola is compiled in: the feature, on the two architectures it
/// supports (the dependency is only declared for those).
const GRAVIOLA: bool = cfg!(all(
    feature = "graviola",
    any(target_arch = "x86_64", target_arch = "aarch64")
));

fn select_provider(choice: Option<TlsProvider>) -> Result<Arc<CryptoProvider>> {
    if let Some(p) = choice {
        return provider(p).map(Arc::new);
    }
    if GRAVIOLA {
        match provider(TlsProvider::Graviola) {
            Ok(p) => return Ok(Arc::new(p)),
            Err(e) => {
                // Unsupported CPU: a C provider, if built in, still works.
                for fallback in [TlsProvider::Ring, TlsProvider::AwsLcRs] {
                    if let Ok(p) = provider(fallback) {
                        tracing::debug!(
                            provider = fallback.feature(),
                            "graviola cannot run on this CPU; using another TLS provider"
                        );
                        return Ok(Arc::new(p));
                    }
                }
                return Err(e);
            }
        }
    }
    for p in [TlsProvider::Ring, TlsProvider::AwsLcRs] {
        if let Ok(p) = provider(p) {
            return Ok(Arc::new(p));
        }
    }
    if let Some(p) = CryptoProvider::get_default() {
        return Ok(p.clone());
    }
    Err(Error::Config(
        "no TLS crypto provider: build skotch with the `graviola` (default, pure Rust), `ring` \
         or `aws-lc-rs` feature, install a process-wide rustls CryptoProvider, or pass a rustls \
         ClientConfig with TlsConfig::from_rustls"
            .into(),
    ))
}

fn provider(which: TlsProvider) -> Result<CryptoProvider> {
    let compiled = match which {
        TlsProvider::Graviola => graviola_provider()?,
        TlsProvider::Ring => ring_provider(),
        TlsProvider::AwsLcRs => aws_lc_rs_provider(),
    };
    compiled.ok_or_else(|| {
        Error::Config(format!(
            "TLS provider {which:?} is not compiled in: build skotch with the `{}` feature",
            which.feature()
        ))
    })
}

// Each provider function gives `None` when its feature is off.

#[cfg(all(
    feature = "graviola",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn graviola_provider() -> Result<Option<CryptoProvider>> {
    // graviola asserts its CPU features when first used and would panic;
    // ask first.
    if graviola::util::is_cpu_supported() {
        Ok(Some(rustls_graviola::default_provider()))
    } else {
        Err(Error::Tls {
            // Not about one broker: no connection can be made.
            addr: "(all brokers)".into(),
            kind: TlsFailure::UnsupportedCpu,
            detail: "graviola needs x86_64 with AES-NI, PCLMULQDQ, BMI1, ADX, AVX and AVX2 \
                     (or aarch64 with AES, PMULL and SHA2); build skotch with the `ring` or \
                     `aws-lc-rs` feature (both compile C), or pass a rustls ClientConfig with \
                     TlsConfig::from_rustls"
                .into(),
        })
    }
}

#[cfg(not(all(
    feature = "graviola",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn graviola_provider() -> Result<Option<CryptoProvider>> {
    Ok(None)
}

fn ring_provider() -> Option<CryptoProvider> {
    #[cfg(feature = "ring")]
    return Some(rustls::crypto::ring::default_provider());
    #[cfg(not(feature = "ring"))]
    None
}

fn aws_lc_rs_provider() -> Option<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    return Some(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(not(feature = "aws-lc-rs"))]
    None
}

// ---- files ----

/// Read a whole PEM file, bounded by [`MAX_PEM_FILE_BYTES`].
fn read_pem_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    let fail = |why: String| Error::Config(format!("{what} {}: {why}", path.display()));
    let file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(fail(format!(
            "larger than {MAX_PEM_FILE_BYTES} bytes; not a PEM file?"
        )));
    }
    Ok(bytes)
}

/// Every certificate in a PEM file; other sections (keys) are skipped.
fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_pem_file(path, what)?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&pem) {
        certs.push(item.map_err(|e| {
            Error::Config(format!(
                "{what} {}: malformed PEM ({})",
                path.display(),
                pem_error(&e)
            ))
        })?);
    }
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{what} {}: contains no certificate (no -----BEGIN CERTIFICATE----- section)",
            path.display()
        )));
    }
    Ok(certs)
}

/// The first private key in a PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    const WHAT: &str = "client key file";
    let pem = read_pem_file(path, WHAT)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let why = if contains(&pem, b"ENCRYPTED PRIVATE KEY") {
                "holds only an encrypted private key; skotch needs it unencrypted \
                 (e.g. `openssl pkcs8 -topk8 -nocrypt`)"
            } else {
                "contains no private key (no -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or \
                 EC PRIVATE KEY section)"
            };
            Err(Error::Config(format!("{WHAT} {}: {why}", path.display())))
        }
        Err(e) => Err(Error::Config(format!(
            "{WHAT} {}: malformed PEM ({})",
            path.display(),
            pem_error(&e)
        ))),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A description of a PEM error that never repeats the file's contents
/// (its `Display` can quote lines, and this may be a key file).
fn pem_error(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line",
        pem::Error::Base64Decode(_) => "invalid base64 in a section",
        pem::Error::NoItemsFound => "no sections",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "unreadable",
    }
}

// ---- verifiers ----

/// The marker error [`DiagnosingVerifier`] returns for a self-signed
/// certificate, found again by [`TlsConnector::classify`].
#[derive(Debug)]
struct SelfSigned;

impl fmt::Display for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("self-signed certificate that is not trusted")
    }
}

impl std::error::Error for SelfSigned {}

/// rustls's WebPKI verifier, with one refinement: webpki reports a
/// self-signed certificate as an unknown issuer, which sends users looking
/// for the wrong CA; when the end-entity certificate names itself as its
/// issuer we say so. Every check is webpki's.
#[derive(Debug)]
struct DiagnosingVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for DiagnosingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if is_self_issued(end_entity) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(SelfSigned)),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// Issuer and subject names byte-identical. webpki parses the certificate
/// (bounded, defensive DER); one it cannot parse is not called self-signed.
fn is_self_issued(cert: &CertificateDer<'_>) -> bool {
    webpki::EndEntityCert::try_from(cert)
        .map(|c| c.issuer() == c.subject())
        .unwrap_or(false)
}

/// [`TlsConfig::dangerous_disable_verification`]: any certificate chain is
/// accepted. The handshake signature is still verified, so the peer holds
/// the key of the certificate it showed; that key is simply not tied to
/// the broker.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Without any provider compiled in, a configuration is a clear error
/// (and there is nothing to run handshakes with).
#[cfg(all(
    test,
    not(any(
        all(
            feature = "graviola",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ),
        feature = "ring",
        feature = "aws-lc-rs"
    ))
))]
mod no_provider_tests {
    use super::*;

    #[test]
    fn no_provider_is_a_configuration_error() {
        match TlsConfig::new().connector() {
            Err(Error::Config(m)) => assert!(m.contains("`graviola`"), "{m}"),
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}

#[cfg(all(
    test,
    any(
        all(
            feature = "graviola",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ),
        feature = "ring",
        feature = "aws-lc-rs"
    )
))]
mod tests {
    use std::net::SocketAddr;
    use std::process::Command;
    use std::sync::Mutex;

    use rustls::server::WebPkiClientVerifier;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;

    /// The test PKI, made by `scripts/certs` in a fresh temporary directory.
    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn new() -> Pki {
            let dir = tempfile::tempdir().expect("temporary directory");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/certs");
            let out = Command::new(&script)
                .arg(dir.path())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "{} failed (it needs bash and openssl): {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            Pki { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn trusting_ca(&self) -> TlsConfig {
            TlsConfig::new().ca_file(self.path("ca.pem"))
        }
    }

    const TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

    /// How the test server is set up.
    struct Server<'a> {
        /// Key followed by the certificate chain, as the broker's keystore.
        keystore: &'a str,
        /// Require a client certificate signed by the test CA.
        client_auth: bool,
        versions: &'static [&'static rustls::SupportedProtocolVersion],
    }

    impl<'a> Server<'a> {
        fn new(keystore: &'a str) -> Self {
            Self {
                keystore,
                client_auth: false,
                versions: rustls::DEFAULT_VERSIONS,
            }
        }
    }

    /// A one-connection TLS server on 127.0.0.1: handshake, then echo one
    /// read. The task returns the SNI the client sent.
    async fn serve(pki: &Pki, server: Server<'_>) -> (SocketAddr, JoinHandle<Option<String>>) {
        let provider = select_provider(None).unwrap();
        let keystore = pki.path(server.keystore);
        let chain = load_certs(&keystore, "test keystore").unwrap();
        let key = load_key(&keystore).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(server.versions)
            .unwrap();
        let builder = if server.client_auth {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(load_certs(&pki.path("ca.pem"), "CA").unwrap());
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder.with_single_cert(chain, key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.ok()?;
            let mut tls = acceptor.accept(tcp).await.ok()?;
            let sni = tls.get_ref().1.server_name().map(str::to_string);
            let mut buf = [0u8; 64];
            if let Ok(n) = tls.read(&mut buf).await {
                let _ = tls.write_all(&buf[..n]).await;
                let _ = tls.shutdown().await;
            }
            sni
        });
        (addr, task)
    }

    /// Connect to `addr` as `host`, then one echo round trip; I/O errors
    /// go through `classify_io_error` as the connection code does.
    async fn exchange_as(connector: &TlsConnector, host: &str, addr: SocketAddr) -> Result<()> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let a = addr.to_string();
        let mut tls = connector.connect(host, &a, tcp).await?;
        let io_err = |e: io::Error| {
            connector
                .classify_io_error(&a, &e)
                .unwrap_or_else(|| Error::io(&a, e.to_string(), None))
        };
        tls.write_all(b"ping").await.map_err(io_err)?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(io_err)?;
        assert_eq!(&buf, b"ping");
        Ok(())
    }

    async fn exchange(config: &TlsConfig, addr: SocketAddr) -> Result<()> {
        exchange_as(&config.connector()?, "127.0.0.1", addr).await
    }

    fn tls_failure(r: Result<()>) -> (TlsFailure, String) {
        match r {
            Err(Error::Tls { kind, detail, .. }) => (kind, detail),
            other => panic!("expected a TLS error, got {other:?}"),
        }
    }

    fn config_error(r: Result<TlsConnector>) -> String {
        match r {
            Err(Error::Config(m)) => m,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn trusted_ca_verifies_ip_and_dns_names_and_sends_sni_only_for_names() {
        let pki = Pki::new();
        let connector = pki.trusting_ca().connector().unwrap();

        let (addr, server) = serve(&pki, Server::new("broker.pem")).await;
        exchange_as(&connector, "127.0.0.1", addr).await.unwrap();
        assert_eq!(server.await.unwrap(), None, "no SNI for an IP (RFC 6066)");

        let (addr, server) = serve(&pki, Server::new("broker.pem")).await;
        exchange_as(&connector, "localhost", addr).await.unwrap();
        assert_eq!(server.await.unwrap().as_deref(), Some("localhost"));
    }

    #[tokio::test]
    async fn tls12_works_too() {
        let pki = Pki::new();
        let mut server = Server::new("broker.pem");
        server.versions = TLS12_ONLY;
        let (addr, _server) = serve(&pki, server).await;
        exchange(&pki.trusting_ca(), addr).await.unwrap();
    }

    #[tokio::test]
    async fn another_ca_is_an_unknown_issuer() {
        let pki = Pki::new();
        let (addr, _server) = serve(&pki, Server::new("broker.pem")).await;
        let config = TlsConfig::new().ca_file(pki.path("other-ca.pem"));
        let (kind, detail) = tls_failure(exchange(&config, addr).await);
        assert_eq!(kind, TlsFailure::UnknownIssuer, "{detail}");
        assert!(detail.contains("other-ca.pem"), "{detail}");
    }

    #[tokio::test]
    async fn self_signed_certificate_is_named_so() {
        let pki = Pki::new();
        let (addr, _server) = serve(&pki, Server::new("selfsigned.pem")).await;
        let (kind, detail) = tls_failure(exchange(&pki.trusting_ca(), addr).await);
        assert_eq!(kind, TlsFailure::SelfSigned, "{detail}");
        assert!(detail.contains("ca_file"), "{detail}");
    }

    #[tokio::test]
    async fn expired_certificate() {
        let pki = Pki::new();
        let (addr, _server) = serve(&pki, Server::new("expired.pem")).await;
        let (kind, detail) = tls_failure(exchange(&pki.trusting_ca(), addr).await);
        assert_eq!(kind, TlsFailure::Expired, "{detail}");
        assert!(detail.contains("2021-01-01T00:00:00Z"), "{detail}");
    }

    #[tokio::test]
    async fn certificate_for_another_host_and_the_server_name_override() {
        let pki = Pki::new();
        let (addr, _server) = serve(&pki, Server::new("wronghost.pem")).await;
        let (kind, detail) = tls_failure(exchange(&pki.trusting_ca(), addr).await);
        assert_eq!(kind, TlsFailure::HostnameMismatch, "{detail}");
        assert!(
            detail.contains("127.0.0.1") && detail.contains("wrong.example"),
            "{detail}"
        );

        let (addr, server) = serve(&pki, Server::new("wronghost.pem")).await;
        let config = pki.trusting_ca().server_name("wrong.example");
        exchange(&config, addr).await.unwrap();
        assert_eq!(server.await.unwrap().as_deref(), Some("wrong.example"));
    }

    #[tokio::test]
    async fn client_certificate_required_tls13() {
        let pki = Pki::new();
        let server = || Server {
            client_auth: true,
            ..Server::new("broker.pem")
        };
        // TLS 1.3: the rejection arrives after our side of the handshake,
        // on the first read.
        let (addr, _server) = serve(&pki, server()).await;
        let (kind, detail) = tls_failure(exchange(&pki.trusting_ca(), addr).await);
        assert_eq!(kind, TlsFailure::ClientCertificate, "{detail}");
        assert!(detail.contains("TlsConfig::client_cert"), "{detail}");

        let (addr, _server) = serve(&pki, server()).await;
        let config = pki
            .trusting_ca()
            .client_cert(pki.path("client.pem"), pki.path("client-key.pem"));
        exchange(&config, addr).await.unwrap();

        // A certificate the broker does not trust.
        let (addr, _server) = serve(&pki, server()).await;
        let config = pki
            .trusting_ca()
            .client_cert(pki.path("selfsigned.pem"), pki.path("selfsigned.pem"));
        let (kind, detail) = tls_failure(exchange(&config, addr).await);
        assert_eq!(kind, TlsFailure::ClientCertificate, "{detail}");
        assert!(detail.contains("selfsigned.pem"), "{detail}");
    }

    #[tokio::test]
    async fn client_certificate_required_tls12_fails_the_handshake() {
        let pki = Pki::new();
        let (addr, _server) = serve(
            &pki,
            Server {
                client_auth: true,
                versions: TLS12_ONLY,
                ..Server::new("broker.pem")
            },
        )
        .await;
        let connector = pki.trusting_ca().connector().unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = connector
            .connect("127.0.0.1", &addr.to_string(), tcp)
            .await
            .err();
        match err {
            Some(Error::Tls {
                kind: TlsFailure::ClientCertificate,
                ..
            }) => {}
            other => panic!("expected a client certificate failure, got {other:?}"),
        }
    }

    /// A plain TCP server: reads the ClientHello, then `reply` (if any) and
    /// closes.
    async fn plain_server(reply: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            // Like Kafka's PLAINTEXT listener: read the 4-byte size only.
            let mut size = [0u8; 4];
            let _ = tcp.read_exact(&mut size).await;
            let _ = tcp.write_all(reply).await;
        });
        addr
    }

    #[tokio::test]
    async fn plain_tcp_peer_is_not_tls() {
        let pki = Pki::new();
        // Something that answers with non-TLS bytes (a Kafka-style frame).
        let addr = plain_server(&[0, 0, 0, 8, 0, 0, 0, 1, 0, 35, 0, 0]).await;
        let (kind, detail) = tls_failure(exchange(&pki.trusting_ca(), addr).await);
        assert_eq!(kind, TlsFailure::NotTls, "{detail}");
        assert!(detail.contains("security.protocol"), "{detail}");
        // Something that hangs up, as Kafka's PLAINTEXT listener does.
        let addr = plain_server(b"").await;
        let (kind, detail) = tls_failure(exchange(&pki.trusting_ca(), addr).await);
        assert_eq!(kind, TlsFailure::NotTls, "{detail}");
    }

    /// Collects what a tracing subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    #[tokio::test]
    async fn dangerous_disable_verification_accepts_anything_and_warns() {
        let pki = Pki::new();
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let connector = TlsConfig::new()
            .dangerous_disable_verification()
            .connector()
            .unwrap();
        assert!(
            logs.text().contains("verification is DISABLED"),
            "{}",
            logs.text()
        );
        for keystore in ["selfsigned.pem", "expired.pem", "wronghost.pem"] {
            let (addr, _server) = serve(&pki, Server::new(keystore)).await;
            exchange_as(&connector, "127.0.0.1", addr).await.unwrap();
        }
        let connects = logs.text().matches("verification DISABLED").count();
        assert_eq!(connects, 3, "{}", logs.text());
    }

    #[test]
    fn missing_or_wrong_files_are_configuration_errors() {
        let pki = Pki::new();
        let missing = pki.path("nope.pem");
        let m = config_error(TlsConfig::new().ca_file(&missing).connector());
        assert!(m.contains("CA file") && m.contains("nope.pem"), "{m}");

        let m = config_error(TlsConfig::new().ca_file(pki.path("ca-key.pem")).connector());
        assert!(
            m.contains("ca-key.pem") && m.contains("no certificate"),
            "{m}"
        );

        let m = config_error(
            pki.trusting_ca()
                .client_cert(pki.path("client.pem"), pki.path("ca.pem"))
                .connector(),
        );
        assert!(
            m.contains("client key file") && m.contains("no private key"),
            "{m}"
        );

        let encrypted = pki.path("encrypted.pem");
        std::fs::write(
            &encrypted,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let m = config_error(
            pki.trusting_ca()
                .client_cert(pki.path("client.pem"), &encrypted)
                .connector(),
        );
        assert!(m.contains("unencrypted"), "{m}");

        // The key of another certificate.
        let m = config_error(
            pki.trusting_ca()
                .client_cert(pki.path("client.pem"), pki.path("broker-key.pem"))
                .connector(),
        );
        assert!(
            m.contains("client.pem") && m.contains("cannot be used"),
            "{m}"
        );

        let m = config_error(pki.trusting_ca().server_name("not a name!").connector());
        assert!(m.contains("not a name!"), "{m}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let pki = Pki::new();
        let config = pki
            .trusting_ca()
            .client_cert(pki.path("client.pem"), pki.path("client-key.pem"));
        let connector = config.connector().unwrap();
        let shown = format!("{config:?} {connector:?}");
        assert!(shown.contains("client-key.pem"), "{shown}");
        let key = std::fs::read_to_string(pki.path("client-key.pem")).unwrap();
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!shown.contains(line), "key material in {shown}");
        }
        let shown = format!(
            "{:?}",
            TlsConfig::from_rustls(connector.rustls_config().clone())
        );
        assert!(shown.contains("user-supplied"), "{shown}");
    }

    #[tokio::test]
    async fn a_rustls_client_config_is_used_as_is() {
        let pki = Pki::new();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(load_certs(&pki.path("ca.pem"), "CA").unwrap());
        let rustls_config = Arc::new(
            rustls::ClientConfig::builder_with_provider(select_provider(None).unwrap())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        let connector = TlsConfig::from_rustls(rustls_config.clone())
            .connector()
            .unwrap();
        assert!(Arc::ptr_eq(connector.rustls_config(), &rustls_config));
        let (addr, _server) = serve(&pki, Server::new("broker.pem")).await;
        exchange_as(&connector, "localhost", addr).await.unwrap();

        // Its own verifier applies: the self-signed server is refused.
        let (addr, _server) = serve(&pki, Server::new("selfsigned.pem")).await;
        let (kind, _) = tls_failure(exchange_as(&connector, "localhost", addr).await);
        assert_eq!(kind, TlsFailure::UnknownIssuer);

        let m = config_error(
            TlsConfig::from_rustls(rustls_config)
                .ca_file(pki.path("ca.pem"))
                .connector(),
        );
        assert!(m.contains("from_rustls") && m.contains("ca_file"), "{m}");
    }

    #[test]
    fn providers_not_compiled_in_are_configuration_errors() {
        for p in [
            TlsProvider::Graviola,
            TlsProvider::Ring,
            TlsProvider::AwsLcRs,
        ] {
            let compiled = match p {
                TlsProvider::Graviola => GRAVIOLA,
                TlsProvider::Ring => cfg!(feature = "ring"),
                TlsProvider::AwsLcRs => cfg!(feature = "aws-lc-rs"),
            };
            let r = TlsConfig::new().provider(p).connector();
            if compiled {
                r.unwrap();
            } else {
                let m = config_error(r);
                assert!(m.contains(p.feature()), "{m}");
            }
        }
    }

    /// graviola (debug builds) lets `GRAVIOLA_CPU_DISABLE_<feature>` hide a
    /// CPU feature; the check runs in a child process so the variable
    /// cannot affect the other tests.
    #[test]
    fn unsupported_cpu_is_a_clear_error() {
        if !GRAVIOLA
            || !cfg!(debug_assertions)
            || cfg!(feature = "ring")
            || cfg!(feature = "aws-lc-rs")
        {
            return;
        }
        const CHILD: &str = "SKOTCH_TLS_TEST_CPU_CHILD";
        if std::env::var_os(CHILD).is_some() {
            match TlsConfig::new().connector() {
                Err(
                    e @ Error::Tls {
                        kind: TlsFailure::UnsupportedCpu,
                        ..
                    },
                ) => {
                    let m = e.to_string();
                    assert!(m.contains("`ring`") && m.contains("`aws-lc-rs`"), "{m}");
                    println!("child saw UnsupportedCpu");
                }
                other => panic!("expected UnsupportedCpu, got {other:?}"),
            }
            return;
        }
        let name = module_path!()
            .split_once("::")
            .map(|(_, rest)| format!("{rest}::unsupported_cpu_is_a_clear_error"))
            .unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("GRAVIOLA_CPU_DISABLE_aes", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("child saw UnsupportedCpu"),
            "child: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn utc_dates() {
        let at = |s| {
            utc(&UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                s,
            )))
        };
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_609_459_199), "2020-12-31T23:59:59Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(presented_name("DnsName(\"a.b\")"), "a.b");
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(presented_name("odd"), "odd");
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            parse_server_name("127.0.0.1"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            parse_server_name("[::1]"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            parse_server_name("broker-1.example.org"),
            Some(ServerName::DnsName(_))
        ));
        assert!(parse_server_name("").is_none());
        assert!(parse_server_name("bad name").is_none());
    }

    #[tokio::test]
    async fn a_host_that_is_no_name_is_a_configuration_error() {
        let pki = Pki::new();
        let (addr, _server) = serve(&pki, Server::new("broker.pem")).await;
        let connector = pki.trusting_ca().connector().unwrap();
        match exchange_as(&connector, "bad host", addr).await {
            Err(Error::Config(m)) => assert!(m.contains("server_name"), "{m}"),
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}
