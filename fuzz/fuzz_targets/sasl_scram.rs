//! SCRAM server messages from a hostile broker: the parsers and the client
//! exchange never panic, what parses respects the documented bounds, and no
//! server-final message from a peer that does not know the password ends in
//! `Step::Done`.
//!
//! Input: `[selector][u16 BE length of server-first][server-first][server-final]`.
//! The parsers see every input whole (cheap, most executions). The exchange
//! runs only when the server-first would cost at most `MIN_ITERATIONS`
//! (4096) PBKDF2 rounds, so one execution stays in the milliseconds instead
//! of letting the fuzzer pick a million rounds per input; the bounds check
//! itself is exercised by the parser half.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skotch_protocol::sasl::scram::{
    parse_server_final, parse_server_first, ServerFinal, MAX_ITERATIONS, MAX_SERVER_MESSAGE_LEN,
    MIN_ITERATIONS,
};
use skotch_protocol::sasl::{Exchange, Mechanism, Password, SaslError, Step};

const CLIENT_NONCE: &str = "fuzzClientNonce";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };

    if let Ok(first) = parse_server_first(rest) {
        assert!(rest.len() <= MAX_SERVER_MESSAGE_LEN);
        assert!((MIN_ITERATIONS..=MAX_ITERATIONS).contains(&first.iterations));
        assert!(!first.salt.is_empty());
        assert!(!first.nonce.is_empty());
        assert!(first
            .nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b','));
    }
    if let Ok(last) = parse_server_final(rest) {
        assert!(rest.len() <= MAX_SERVER_MESSAGE_LEN);
        if let ServerFinal::Error(e) = last {
            assert!(!e.is_empty() && !e.contains(','));
        }
    }

    let Some((len, body)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_be_bytes(*len)).min(body.len());
    let (server_first, server_final) = body.split_at(split);
    if matches!(parse_server_first(server_first), Ok(f) if f.iterations > MIN_ITERATIONS) {
        return;
    }

    let mechanism = if selector & 1 == 0 {
        Mechanism::ScramSha256
    } else {
        Mechanism::ScramSha512
    };
    let password = Password::new("fuzz-password");
    let mut exchange = Exchange::new(mechanism, "fuzz,user=", &password, CLIENT_NONCE)
        .expect("valid username and nonce");
    let client_first = exchange.initial().expect("first call");
    assert_eq!(client_first, b"n,,n=fuzz=2Cuser=3D,r=fuzzClientNonce");

    match exchange.step(server_first) {
        Ok(Step::Send(client_final)) => {
            assert!(client_final.starts_with(b"c=biws,r=fuzzClientNonce"));
            match exchange.step(server_final) {
                Ok(Step::Done) => panic!("server-final accepted from a peer without the password"),
                Ok(Step::Send(_)) => panic!("SCRAM has no fourth message"),
                Err(_) => {}
            }
        }
        Ok(Step::Done) => panic!("Done straight after server-first"),
        Err(_) => {}
    }
    // Whatever happened, the exchange is over and says so.
    assert!(matches!(
        exchange.step(server_final),
        Err(SaslError::OutOfOrder { .. })
    ));
    assert!(!exchange.is_done());
});
