//! A SCRAM server for tests, written straight from RFC 5802 sections 3 and
//! 7 and independent of the client code: its own `Hi` (PBKDF2 unrolled by
//! hand, no `pbkdf2` crate), its own parsing and un-escaping. It is checked
//! against the RFC vectors and the `sasl` crate's client, and the client is
//! checked against it.

use std::marker::PhantomData;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{EagerHash, Hmac, KeyInit, Mac};

/// One server-side SCRAM conversation for one stored credential.
pub(crate) struct TestServer<D> {
    username: String,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    server_nonce: String,
    /// Extra attributes appended to server-first (RFC 5802 extensions).
    pub(crate) extensions: String,
    /// client-first-message-bare and server-first-message, once sent.
    first: Option<(String, String)>,
    _hash: PhantomData<fn() -> D>,
}

fn hmac<D: EagerHash>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `Hi(str, salt, i)`: U1 = HMAC(str, salt + INT(1)), Ui = HMAC(str, Ui-1),
/// result U1 XOR ... XOR Ui.
pub(crate) fn hi<D: EagerHash>(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac::<D>(password, &block);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac::<D>(password, &u);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

fn unescape(saslname: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = saslname;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        let code = rest.get(pos + 1..pos + 3).ok_or("truncated escape")?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return Err(format!("bad escape ={code}")),
        });
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

impl<D: EagerHash> TestServer<D> {
    pub(crate) fn new(
        username: &str,
        password: &str,
        salt: &[u8],
        iterations: u32,
        server_nonce: &str,
    ) -> Self {
        let salted = hi::<D>(password.as_bytes(), salt, iterations);
        let client_key = hmac::<D>(&salted, b"Client Key");
        TestServer {
            username: username.to_string(),
            salt: salt.to_vec(),
            iterations,
            stored_key: D::digest(&client_key).to_vec(),
            server_key: hmac::<D>(&salted, b"Server Key"),
            server_nonce: server_nonce.to_string(),
            extensions: String::new(),
            first: None,
            _hash: PhantomData,
        }
    }

    /// client-first in, server-first out. `Err` means the server would fail
    /// the authentication (with a Kafka error code, not a SCRAM message).
    pub(crate) fn first(&mut self, client_first: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(client_first).map_err(|e| e.to_string())?;
        let bare = text.strip_prefix("n,,").ok_or("gs2 header is not n,,")?;
        let (n, r) = bare.split_once(',').ok_or("no r=")?;
        let user = unescape(n.strip_prefix("n=").ok_or("no n=")?)?;
        let client_nonce = r.strip_prefix("r=").ok_or("no r=")?;
        if user != self.username {
            return Err("unknown-user".into());
        }
        let server_first = format!(
            "r={client_nonce}{},s={},i={}{}",
            self.server_nonce,
            BASE64.encode(&self.salt),
            self.iterations,
            self.extensions
        );
        self.first = Some((bare.to_string(), server_first.clone()));
        Ok(server_first.into_bytes())
    }

    /// client-final in, server-final out (`v=` on success, `e=invalid-proof`
    /// on a wrong proof).
    pub(crate) fn last(&mut self, client_final: &[u8]) -> Result<Vec<u8>, String> {
        let (bare, server_first) = self.first.take().ok_or("no client-first yet")?;
        let text = std::str::from_utf8(client_final).map_err(|e| e.to_string())?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or("no p=")?;
        let nonce = server_first.split(',').next().unwrap();
        if without_proof != format!("c=biws,{nonce}") {
            return Err(format!("unexpected client-final {without_proof}"));
        }
        let proof = BASE64.decode(proof).map_err(|e| e.to_string())?;
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_signature = hmac::<D>(&self.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Ok(b"e=invalid-proof".to_vec());
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if D::digest(&client_key).to_vec() != self.stored_key {
            return Ok(b"e=invalid-proof".to_vec());
        }
        let signature = hmac::<D>(&self.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hi_matches_rfc6070_pbkdf2_vector() {
        // RFC 6070 test vector 2: "password", "salt", 2 iterations, SHA-1.
        let out = hi::<sha1::Sha1>(b"password", b"salt", 2);
        assert_eq!(
            out,
            [
                0xea, 0x6c, 0x01, 0x4d, 0xc7, 0x2d, 0x6f, 0x8c, 0xcd, 0x1e, 0xd9, 0x2a, 0xce, 0x1d,
                0x41, 0xf0, 0xd8, 0xde, 0x89, 0x57
            ]
        );
    }

    #[test]
    fn unescape_saslname() {
        assert_eq!(unescape("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(unescape("a=2").is_err());
        assert!(unescape("a=41").is_err());
    }
}
