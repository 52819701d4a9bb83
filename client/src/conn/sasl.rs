//! SASL authentication of a connection (KIP-43, KIP-152) and its periodic
//! re-authentication (KIP-368). The mechanisms themselves are sans-IO state
//! machines in [`skotch_protocol::sasl`]; this file moves their messages in
//! SaslHandshake and SaslAuthenticate requests.

use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use rand::distr::{Alphanumeric, SampleString};
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::{ApiKey, Message, SaslAuthenticateRequest, SaslHandshakeRequest};
use skotch_protocol::sasl::{Exchange, SaslError, Step};
use tokio::time::Instant;

use super::versions::BrokerVersions;
use super::Inner;
use crate::error::{AuthFailure, Error, Result};
use crate::security::{SaslConfig, SaslMechanism};

/// Authenticate on `inner` with `creds`. Returns the session lifetime the
/// broker set (`connections.max.reauth.ms`), if any.
///
/// `reauth` is true for a re-authentication: its requests bypass the gate
/// the re-authentication task holds.
pub(super) async fn authenticate(
    inner: &Inner,
    versions: &BrokerVersions,
    creds: &SaslConfig,
    reauth: bool,
) -> Result<Option<Duration>> {
    let addr = &inner.addr;
    let timeout = inner.opts.request_timeout;
    let gated = !reauth;
    // v0 of SaslHandshake means raw SASL tokens after it, without Kafka
    // framing; brokers since 1.0 offer v1 and Kafka 4 removed v0 (KIP-896).
    let handshake_v = versions.pick(
        addr,
        ApiKey::SaslHandshake,
        (1, SaslHandshakeRequest::VERSIONS.1),
    )?;
    let auth_v = versions.pick(
        addr,
        ApiKey::SaslAuthenticate,
        SaslAuthenticateRequest::VERSIONS,
    )?;
    let mechanism = creds.mechanism.as_str();
    let hs = inner
        .send_version(
            &SaslHandshakeRequest {
                mechanism: mechanism.to_string(),
            },
            handshake_v,
            timeout,
            gated,
        )
        .await?;
    if ErrorCode(hs.error_code) == ErrorCode::UNSUPPORTED_SASL_MECHANISM {
        return Err(Error::SaslMechanismNotEnabled {
            addr: addr.clone(),
            wanted: mechanism.to_string(),
            offered: hs.mechanisms,
        });
    }
    Error::check(hs.error_code, None, || {
        format!("SaslHandshake ({mechanism}) with {addr}")
    })?;

    let auth_err = |kind: AuthFailure, reason: String| Error::Authentication {
        addr: addr.clone(),
        kind,
        mechanism: mechanism.to_string(),
        username: creds.username.clone(),
        reason,
    };
    let exchange_err = |e: SaslError| {
        let kind = match &e {
            SaslError::InvalidUsername(_)
            | SaslError::InvalidPassword(_)
            | SaslError::InvalidClientNonce(_) => AuthFailure::InvalidInput,
            SaslError::NonceMismatch | SaslError::ServerSignatureMismatch => {
                AuthFailure::BrokerNotVerified
            }
            // RFC 5802 server-error-value names.
            SaslError::ServerError(v) if v == "unknown-user" => AuthFailure::UnknownUser,
            SaslError::ServerError(v) if v == "invalid-proof" => AuthFailure::WrongPassword,
            SaslError::ServerError(_) if creds.mechanism == SaslMechanism::Plain => {
                AuthFailure::InvalidCredentials
            }
            _ => AuthFailure::Protocol,
        };
        auth_err(kind, e.to_string())
    };
    // RFC 5802 wants a nonce that is unpredictable: ThreadRng is a CSPRNG
    // seeded from the operating system.
    let nonce = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let mut exchange = Exchange::new(creds.mechanism, &creds.username, &creds.password, &nonce)
        .map_err(exchange_err)?;
    let mut message = exchange.initial().map_err(exchange_err)?;
    // Sent just before the first SaslAuthenticate: the broker's session
    // lifetime counts from about then, so re-authentication is timed from it.
    let started = Instant::now();
    // PLAIN takes one round trip, SCRAM two; more means a confused broker.
    for round in 0..4 {
        let resp = inner
            .send_version(
                &SaslAuthenticateRequest {
                    auth_bytes: Bytes::from(message),
                },
                auth_v,
                timeout,
                gated,
            )
            .await?;
        if resp.error_code != 0 {
            let reason = match resp.error_message {
                Some(m) if !m.is_empty() => m,
                _ => ErrorCode(resp.error_code).to_string(),
            };
            // Kafka answers both an unknown user and a wrong password with
            // the same message; which SCRAM message it refused tells them
            // apart: the first carries only the username, the second the
            // proof of the password.
            let kind = match (creds.mechanism, round) {
                (SaslMechanism::Plain, _) => AuthFailure::InvalidCredentials,
                (_, 0) => AuthFailure::UnknownUser,
                _ => AuthFailure::WrongPassword,
            };
            return Err(auth_err(kind, reason));
        }
        // SCRAM's PBKDF2 costs milliseconds at Kafka's 4096 iterations but
        // up to half a second at the most we accept: off the async workers,
        // so heartbeats and other connections keep going meanwhile.
        let (back, step) = tokio::task::spawn_blocking(move || {
            let step = exchange.step(&resp.auth_bytes);
            (exchange, step.map(|s| (s, resp.session_lifetime_ms)))
        })
        .await
        .map_err(|e| auth_err(AuthFailure::Protocol, format!("SASL step failed: {e}")))?;
        exchange = back;
        let (step, session_lifetime_ms) = step.map_err(exchange_err)?;
        match step {
            Step::Send(next) => message = next,
            Step::Done => {
                tracing::debug!(%addr, mechanism, username = %creds.username, reauth, "SASL authenticated");
                // v1+ carries the lifetime; 0 means the session never expires.
                let lifetime = u64::try_from(session_lifetime_ms)
                    .ok()
                    .filter(|ms| *ms > 0)
                    .map(Duration::from_millis);
                return Ok(lifetime.map(|l| l.saturating_sub(started.elapsed())));
            }
        }
    }
    Err(auth_err(
        AuthFailure::Protocol,
        "the broker kept the exchange going past its last step".to_string(),
    ))
}

/// Re-authenticate before each session expires, until the connection goes
/// away. Like Java, at a random point between 85 % and 95 % of the lifetime,
/// so that many connections opened together do not all re-authenticate at
/// once. A failed re-authentication closes the connection with its error;
/// requests already in flight have their answers by then.
pub(super) async fn reauthenticate(
    inner: Weak<Inner>,
    versions: BrokerVersions,
    creds: SaslConfig,
    mut lifetime: Duration,
) {
    loop {
        let fraction = rand::random_range(0.85..0.95);
        tokio::time::sleep(lifetime.mul_f64(fraction)).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.shared.closed_error().is_some() {
            return;
        }
        // New requests wait here until the exchange is over; queued and
        // in-flight ones are answered before the broker reads it.
        let _exclusive = inner.gate.write().await;
        match authenticate(&inner, &versions, &creds, true).await {
            Ok(next) => {
                inner
                    .reauthentications
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match next {
                    Some(next) => lifetime = next,
                    None => return,
                }
            }
            Err(e) => {
                tracing::warn!(addr = %inner.addr, error = %e, "SASL re-authentication failed; closing the connection");
                inner.shared.fail(e);
                return;
            }
        }
    }
}
