//! SASL `PLAIN` (RFC 4616), client side: one message
//! `[authzid] NUL authcid NUL passwd`, with the authorization identity left
//! empty (the broker then authorizes as the authenticated user, which is what
//! Kafka's Java client sends too). Kafka's `PlainSaslServer` answers a
//! successful authentication with empty bytes.

use std::fmt;

use super::{Password, SaslError, Step};

/// Where a PLAIN exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `initial` has not been called.
    Start,
    /// The message went out; the broker's answer is awaited.
    Sent,
    /// The broker accepted the credentials.
    Done,
    /// Something went wrong; the exchange is over.
    Failed,
}

/// A PLAIN exchange. The password is only ever readable through
/// [`Password::expose`]; `Debug` shows the username and the state.
pub(crate) struct Plain {
    username: String,
    password: Password,
    state: State,
}

impl fmt::Debug for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plain")
            .field("username", &self.username)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Plain {
    /// Checks the credentials: RFC 4616 forbids NUL in either (it is the
    /// separator) and requires a non-empty authcid.
    pub(crate) fn new(username: &str, password: &Password) -> Result<Self, SaslError> {
        if username.is_empty() {
            return Err(SaslError::InvalidUsername("is empty"));
        }
        if username.contains('\0') {
            return Err(SaslError::InvalidUsername("contains a NUL character"));
        }
        if password.expose().contains('\0') {
            return Err(SaslError::InvalidPassword(
                "contains a NUL character, which PLAIN uses as its separator",
            ));
        }
        Ok(Plain {
            username: username.to_string(),
            password: password.clone(),
            state: State::Start,
        })
    }

    /// `NUL username NUL password`, built on demand so the state keeps no
    /// second copy of the password.
    pub(crate) fn initial(&mut self) -> Result<Vec<u8>, SaslError> {
        if self.state != State::Start {
            let state = self.state_name();
            self.state = State::Failed;
            return Err(SaslError::OutOfOrder {
                call: "initial()",
                state,
            });
        }
        let password = self.password.expose();
        let mut out = Vec::with_capacity(2 + self.username.len() + password.len());
        out.push(0);
        out.extend_from_slice(self.username.as_bytes());
        out.push(0);
        out.extend_from_slice(password.as_bytes());
        self.state = State::Sent;
        Ok(out)
    }

    /// The broker's answer: empty bytes mean success. A failed PLAIN
    /// authentication shows as an error code in SaslAuthenticate, not here.
    pub(crate) fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        if self.state != State::Sent {
            let state = self.state_name();
            self.state = State::Failed;
            return Err(SaslError::OutOfOrder {
                call: "step()",
                state,
            });
        }
        if !server.is_empty() {
            self.state = State::Failed;
            return Err(SaslError::UnexpectedServerData { len: server.len() });
        }
        self.state = State::Done;
        Ok(Step::Done)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            State::Start => "before initial()",
            State::Sent => "while waiting for the broker's answer",
            State::Done => "after authentication completed",
            State::Failed => "after the exchange failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let mut p = Plain::new("alice", &Password::new("pa55")).unwrap();
        assert_eq!(p.initial().unwrap(), b"\0alice\0pa55");
        assert!(!p.is_done());
        assert_eq!(p.step(b"").unwrap(), Step::Done);
        assert!(p.is_done());
    }

    #[test]
    fn utf8_credentials_travel_as_is() {
        let mut p = Plain::new("zoë", &Password::new("pässwörd,=")).unwrap();
        assert_eq!(
            p.initial().unwrap(),
            "\0zoë\0pässwörd,=".as_bytes().to_vec()
        );
    }

    #[test]
    fn nul_and_empty_are_rejected() {
        assert!(matches!(
            Plain::new("", &Password::new("x")),
            Err(SaslError::InvalidUsername(_))
        ));
        assert!(matches!(
            Plain::new("a\0b", &Password::new("x")),
            Err(SaslError::InvalidUsername(_))
        ));
        let err = Plain::new("alice", &Password::new("se\0cret")).unwrap_err();
        assert!(matches!(err, SaslError::InvalidPassword(_)));
        assert!(!err.to_string().contains("se\0cret"));
    }

    #[test]
    fn non_empty_answer_is_an_error() {
        let mut p = Plain::new("alice", &Password::new("pa55")).unwrap();
        p.initial().unwrap();
        assert_eq!(
            p.step(b"surprise").unwrap_err(),
            SaslError::UnexpectedServerData { len: 8 }
        );
        assert!(matches!(
            p.step(b""),
            Err(SaslError::OutOfOrder { call: "step()", .. })
        ));
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let mut p = Plain::new("alice", &Password::new("pa55")).unwrap();
        assert!(matches!(p.step(b""), Err(SaslError::OutOfOrder { .. })));

        let mut p = Plain::new("alice", &Password::new("pa55")).unwrap();
        p.initial().unwrap();
        assert!(matches!(p.initial(), Err(SaslError::OutOfOrder { .. })));

        let mut p = Plain::new("alice", &Password::new("pa55")).unwrap();
        p.initial().unwrap();
        assert_eq!(p.step(b""), Ok(Step::Done));
        let err = p.step(b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SASL exchange used out of order: step() called after authentication completed"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let mut p = Plain::new("alice", &Password::new("Sw0rdf1sh-PLAIN")).unwrap();
        assert!(!format!("{p:?}").contains("Sw0rdf1sh"));
        p.initial().unwrap();
        assert!(!format!("{p:?}").contains("Sw0rdf1sh"));
    }
}
