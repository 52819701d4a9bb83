//! `kafka://` URLs as hop-client defines them.
//!
//! Grammar (hop-client's "Anatomy of a Kafka URL", extended to several brokers
//! and IPv6 the way its parser `adc.kafka.parse_kafka_url` splits them):
//!
//! ```text
//! kafka://[username@]broker[:port][,broker2[:port]...][/[topic[,topic2...]]]
//! broker = hostname | IPv4 address | "[" IPv6 address "]"
//! ```
//!
//! Decisions, where hop-client is silent or lenient:
//!
//! - The scheme is matched ASCII case-insensitively (`KAFKA://` works, as
//!   Python's `urlparse` lowercases it); [`Display`](fmt::Display) writes `kafka`.
//! - The port defaults to [`DEFAULT_PORT`] (9092) and must be 1..=65535.
//! - `kafka://host`, `kafka://host/` both mean "no topic": allowed, since a
//!   stream opened for writing may name the topic on each write. Reading needs
//!   at least one topic; that check belongs to whoever opens the stream.
//!   The canonical form writes no trailing slash when there is no topic.
//! - Topic names follow Kafka's rules (`org.apache.kafka.common.internals.Topic`):
//!   characters `[a-zA-Z0-9._-]`, 1 to 249 characters, not `.` or `..`.
//!   A topic named twice is an error (it is almost certainly a typo).
//! - The username selects which stored credential to use (hop-client); it is
//!   never a password. `user:secret@` is rejected without echoing the secret.
//!   The username is percent-decoded as hop-client 0.13 does
//!   (`urllib.parse.unquote`: `%XX` becomes that byte, a `%` not followed
//!   by two hex digits stays as is), so `kafka://user%40example.org@host`
//!   names `user@example.org`. Unlike Python, a decoded name that is not
//!   UTF-8 is an error rather than a name with U+FFFD in it. `Display`
//!   encodes it again, so a parsed URL prints back to an equal one.
//! - Query strings (`?`) and fragments (`#`) are rejected: hop-client silently
//!   ignores them, which hides mistakes.
//! - Whitespace and control characters are rejected everywhere.
//! - Host names are limited to the characters `[A-Za-z0-9._-]` and 253 bytes;
//!   IPv6 addresses must be in brackets and are validated (no zone ids).
//!   Hosts are kept as written (not lowercased, IPv6 not re-formatted).
//!
//! Every error names what is wrong and the byte position in the input
//! where it was found ([`UrlError::position`]).

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What `Display` escapes in a username: everything but RFC 3986's
/// unreserved characters and sub-delimiters, so `@ : / % ? #`, spaces and
/// non-ASCII print as `%XX` and parse back to the same name.
const USERNAME_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'-')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b';')
    .remove(b'=')
    .remove(b',');

/// The broker port used when a URL names none (Kafka's default listener port).
pub const DEFAULT_PORT: u16 = 9092;

/// Kafka's maximum topic name length in characters
/// (`org.apache.kafka.common.internals.Topic.MAX_NAME_LENGTH`).
pub const MAX_TOPIC_LENGTH: usize = 249;

/// The maximum length of a DNS host name in bytes (RFC 1035, without the root dot).
pub const MAX_HOST_LENGTH: usize = 253;

/// One bootstrap broker: a host and a port.
///
/// `host` is a host name, an IPv4 address, or an IPv6 address *without*
/// brackets (`::1`); [`Display`](fmt::Display) adds the brackets back
/// (`[::1]:9092`), which is also the form the Java client accepts in
/// `bootstrap.servers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port, 1..=65535.
    pub port: u16,
}

impl BrokerAddr {
    /// A broker address from its parts. No validation: use [`KafkaUrl`]'s
    /// parser for text that came from a user.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl FromStr for BrokerAddr {
    type Err = UrlError;

    /// One `host[:port]` or `[v6addr][:port]`, as in a URL's broker list
    /// (port 9092 by default). Errors name positions within `s`.
    fn from_str(s: &str) -> Result<Self, UrlError> {
        parse_broker(s, 0)
    }
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed `kafka://` URL.
///
/// Parse with [`str::parse`] / [`KafkaUrl::parse`]; [`Display`](fmt::Display)
/// writes the canonical form (lowercase scheme, every port explicit, no
/// trailing slash without topics), which parses back to an equal value.
/// The fields are public for convenience; a hand-built value that breaks the
/// rules above (e.g. no broker) displays as a URL that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaUrl {
    /// The `username@` part: selects the credential to authenticate with.
    pub username: Option<String>,
    /// Bootstrap brokers, in URL order; never empty when parsed.
    pub brokers: Vec<BrokerAddr>,
    /// Topics, in URL order, without duplicates; may be empty.
    pub topics: Vec<String>,
}

impl KafkaUrl {
    /// Parses a `kafka://` URL (same as [`str::parse`]).
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        input.parse()
    }

    /// The brokers as a Kafka `bootstrap.servers` list: `host:port,host2:port2`
    /// (IPv6 hosts in brackets).
    pub fn bootstrap_servers(&self) -> String {
        join(&self.brokers)
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item.to_string());
    }
    out
}

impl fmt::Display for KafkaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("kafka://")?;
        if let Some(user) = &self.username {
            write!(f, "{}@", utf8_percent_encode(user, USERNAME_ESCAPES))?;
        }
        f.write_str(&self.bootstrap_servers())?;
        if !self.topics.is_empty() {
            write!(f, "/{}", self.topics.join(","))?;
        }
        Ok(())
    }
}

/// Why a `kafka://` URL did not parse. Every variant carries the byte
/// position in the input where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The input has no `scheme://` prefix at all.
    #[error(
        "invalid Kafka URL: expected it to start with kafka:// (e.g. kafka://localhost:9092/topic)"
    )]
    MissingScheme,
    /// The scheme is not `kafka`.
    #[error("invalid Kafka URL: scheme is {scheme:?}, expected \"kafka\" (URL must start with kafka://)")]
    WrongScheme {
        /// The scheme found, as written.
        scheme: String,
    },
    /// Whitespace or a control character somewhere in the URL.
    #[error("invalid Kafka URL: whitespace or control character {ch:?} at byte {position}")]
    Whitespace {
        /// Byte position of the character.
        position: usize,
        /// The character.
        ch: char,
    },
    /// A `?` query string or `#` fragment: not part of a Kafka URL.
    #[error("invalid Kafka URL: unexpected {ch:?} at byte {position}: query strings and fragments are not supported")]
    TrailingJunk {
        /// Byte position of the `?` or `#`.
        position: usize,
        /// `?` or `#`.
        ch: char,
    },
    /// `@` with nothing before it.
    #[error("invalid Kafka URL: empty username before '@' at byte {position}")]
    EmptyUsername {
        /// Byte position of the `@`.
        position: usize,
    },
    /// `user:secret@`: a password in the URL. The secret is not repeated here.
    #[error("invalid Kafka URL: ':' in the username at byte {position}; a password does not belong in the URL (credentials are selected by username)")]
    PasswordInUrl {
        /// Byte position of the `:`.
        position: usize,
    },
    /// The username percent-decodes to bytes that are not UTF-8.
    #[error(
        "invalid Kafka URL: the username at byte {position} is not UTF-8 once percent-decoded"
    )]
    UsernameNotUtf8 {
        /// Byte position of the username.
        position: usize,
    },
    /// No broker between `kafka://` (or `user@`) and the path.
    #[error("invalid Kafka URL: no broker at byte {position} (expected kafka://host[:port]/...)")]
    NoBrokers {
        /// Byte position where the broker list should start.
        position: usize,
    },
    /// An empty entry in the broker list (`a,,b`, a trailing comma) or a
    /// broker with no host (`:9092`).
    #[error("invalid Kafka URL: empty broker host at byte {position}")]
    EmptyHost {
        /// Byte position of the empty entry.
        position: usize,
    },
    /// A host name with a character outside `[A-Za-z0-9._-]`.
    #[error(
        "invalid Kafka URL: broker host {host:?} has invalid character {ch:?} at byte {position}"
    )]
    InvalidHostChar {
        /// The host as written.
        host: String,
        /// Byte position of the character.
        position: usize,
        /// The character.
        ch: char,
    },
    /// A host name longer than [`MAX_HOST_LENGTH`] bytes.
    #[error("invalid Kafka URL: broker host at byte {position} is {len} bytes long, more than the {MAX_HOST_LENGTH} allowed")]
    HostTooLong {
        /// Byte position of the host.
        position: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// An IPv6 address without brackets.
    #[error("invalid Kafka URL: broker {broker:?} at byte {position} looks like an IPv6 address; write it in brackets, e.g. [::1]:9092")]
    Ipv6NeedsBrackets {
        /// The broker entry as written.
        broker: String,
        /// Byte position of the entry.
        position: usize,
    },
    /// `[` with no matching `]`.
    #[error("invalid Kafka URL: '[' at byte {position} has no closing ']'")]
    UnclosedBracket {
        /// Byte position of the `[`.
        position: usize,
    },
    /// The text in brackets is not an IPv6 address.
    #[error("invalid Kafka URL: {host:?} at byte {position} is not a valid IPv6 address")]
    InvalidIpv6 {
        /// The text between the brackets.
        host: String,
        /// Byte position of that text.
        position: usize,
    },
    /// Something other than `:port` after `[ipv6]`.
    #[error(
        "invalid Kafka URL: expected ':' or the end of the broker after ']' at byte {position}"
    )]
    AfterBracket {
        /// Byte position of the unexpected character.
        position: usize,
    },
    /// A port that is empty or not a decimal number.
    #[error(
        "invalid Kafka URL: port {port:?} at byte {position} is not a number (expected 1-65535)"
    )]
    InvalidPort {
        /// The port text as written.
        port: String,
        /// Byte position of the port.
        position: usize,
    },
    /// Port 0.
    #[error(
        "invalid Kafka URL: port 0 at byte {position} is not a usable port (expected 1-65535)"
    )]
    PortZero {
        /// Byte position of the port.
        position: usize,
    },
    /// A port above 65535.
    #[error(
        "invalid Kafka URL: port {port} at byte {position} is out of range (expected 1-65535)"
    )]
    PortOutOfRange {
        /// The port text as written.
        port: String,
        /// Byte position of the port.
        position: usize,
    },
    /// An empty entry in the topic list (`a,,b`, a trailing comma).
    #[error("invalid Kafka URL: empty topic name at byte {position}")]
    EmptyTopic {
        /// Byte position of the empty entry.
        position: usize,
    },
    /// A topic name with a character outside `[a-zA-Z0-9._-]` (Kafka's rule).
    #[error("invalid Kafka URL: topic {topic:?} has invalid character {ch:?} at byte {position}; topic names may contain only ASCII letters, digits, '.', '_' and '-'")]
    InvalidTopicChar {
        /// The topic as written.
        topic: String,
        /// Byte position of the character.
        position: usize,
        /// The character.
        ch: char,
    },
    /// A topic name longer than [`MAX_TOPIC_LENGTH`].
    #[error("invalid Kafka URL: topic at byte {position} is {len} characters long, more than Kafka's limit of {MAX_TOPIC_LENGTH}")]
    TopicTooLong {
        /// Byte position of the topic.
        position: usize,
        /// Its length.
        len: usize,
    },
    /// `.` or `..` as a topic name (Kafka forbids both).
    #[error("invalid Kafka URL: {topic:?} at byte {position} is not a legal topic name")]
    ReservedTopic {
        /// `.` or `..`.
        topic: String,
        /// Byte position of the topic.
        position: usize,
    },
    /// The same topic twice.
    #[error("invalid Kafka URL: topic {topic:?} at byte {position} is listed twice")]
    DuplicateTopic {
        /// The repeated topic.
        topic: String,
        /// Byte position of the second occurrence.
        position: usize,
    },
}

impl UrlError {
    /// Byte position in the input where the problem was found; `None` for
    /// scheme errors, which concern the start of the input.
    pub fn position(&self) -> Option<usize> {
        use UrlError::*;
        match self {
            MissingScheme | WrongScheme { .. } => None,
            Whitespace { position, .. }
            | TrailingJunk { position, .. }
            | EmptyUsername { position }
            | PasswordInUrl { position }
            | UsernameNotUtf8 { position }
            | NoBrokers { position }
            | EmptyHost { position }
            | InvalidHostChar { position, .. }
            | HostTooLong { position, .. }
            | Ipv6NeedsBrackets { position, .. }
            | UnclosedBracket { position }
            | InvalidIpv6 { position, .. }
            | AfterBracket { position }
            | InvalidPort { position, .. }
            | PortZero { position }
            | PortOutOfRange { position, .. }
            | EmptyTopic { position }
            | InvalidTopicChar { position, .. }
            | TopicTooLong { position, .. }
            | ReservedTopic { position, .. }
            | DuplicateTopic { position, .. } => Some(*position),
        }
    }
}

impl FromStr for KafkaUrl {
    type Err = UrlError;

    fn from_str(input: &str) -> Result<Self, UrlError> {
        let Some(scheme_end) = input.find("://") else {
            return Err(UrlError::MissingScheme);
        };
        let scheme = &input[..scheme_end];
        if !scheme.eq_ignore_ascii_case("kafka") {
            return Err(UrlError::WrongScheme {
                scheme: scheme.to_string(),
            });
        }
        let start = scheme_end + 3;
        let rest = &input[start..];

        // Whole-URL character checks first, so that the error points at the
        // real culprit rather than at a split that it confused.
        for (i, ch) in rest.char_indices() {
            if ch.is_whitespace() || ch.is_control() {
                return Err(UrlError::Whitespace {
                    position: start + i,
                    ch,
                });
            }
            if ch == '?' || ch == '#' {
                return Err(UrlError::TrailingJunk {
                    position: start + i,
                    ch,
                });
            }
        }

        let (authority, path) = match rest.find('/') {
            Some(slash) => (
                &rest[..slash],
                Some((&rest[slash + 1..], start + slash + 1)),
            ),
            None => (rest, None),
        };

        let (username, brokers_text, brokers_start) = match authority.find('@') {
            Some(at) => {
                let user = &authority[..at];
                if user.is_empty() {
                    return Err(UrlError::EmptyUsername {
                        position: start + at,
                    });
                }
                if let Some(colon) = user.find(':') {
                    return Err(UrlError::PasswordInUrl {
                        position: start + colon,
                    });
                }
                let user = percent_decode_str(user)
                    .decode_utf8()
                    .map_err(|_| UrlError::UsernameNotUtf8 { position: start })?;
                (
                    Some(user.into_owned()),
                    &authority[at + 1..],
                    start + at + 1,
                )
            }
            None => (None, authority, start),
        };

        if brokers_text.is_empty() {
            return Err(UrlError::NoBrokers {
                position: brokers_start,
            });
        }
        let mut brokers = Vec::new();
        for (entry, position) in split_with_positions(brokers_text, brokers_start) {
            brokers.push(parse_broker(entry, position)?);
        }

        let mut topics: Vec<String> = Vec::new();
        if let Some((path, path_start)) = path {
            if !path.is_empty() {
                let mut seen = HashSet::new();
                for (topic, position) in split_with_positions(path, path_start) {
                    validate_topic(topic, position)?;
                    if !seen.insert(topic) {
                        return Err(UrlError::DuplicateTopic {
                            topic: topic.to_string(),
                            position,
                        });
                    }
                    topics.push(topic.to_string());
                }
            }
        }

        Ok(KafkaUrl {
            username,
            brokers,
            topics,
        })
    }
}

/// Splits on `,`, yielding each piece with its byte position in the input.
fn split_with_positions(text: &str, start: usize) -> impl Iterator<Item = (&str, usize)> {
    let mut offset = start;
    text.split(',').map(move |piece| {
        let here = offset;
        offset += piece.len() + 1;
        (piece, here)
    })
}

fn parse_broker(entry: &str, position: usize) -> Result<BrokerAddr, UrlError> {
    if entry.is_empty() {
        return Err(UrlError::EmptyHost { position });
    }
    if let Some(inner) = entry.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err(UrlError::UnclosedBracket { position });
        };
        let host = &inner[..close];
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(UrlError::InvalidIpv6 {
                host: host.to_string(),
                position: position + 1,
            });
        }
        let after = &inner[close + 1..];
        let after_pos = position + 1 + close + 1;
        let port = if after.is_empty() {
            DEFAULT_PORT
        } else if let Some(port) = after.strip_prefix(':') {
            parse_port(port, after_pos + 1)?
        } else {
            return Err(UrlError::AfterBracket {
                position: after_pos,
            });
        };
        return Ok(BrokerAddr::new(host, port));
    }

    let (host, port) = match entry.matches(':').count() {
        0 => (entry, DEFAULT_PORT),
        1 => {
            let colon = entry.find(':').unwrap_or(entry.len());
            let port_text = entry.get(colon + 1..).unwrap_or("");
            (
                &entry[..colon],
                parse_port(port_text, position + colon + 1)?,
            )
        }
        _ => {
            return Err(UrlError::Ipv6NeedsBrackets {
                broker: entry.to_string(),
                position,
            })
        }
    };
    if host.is_empty() {
        return Err(UrlError::EmptyHost { position });
    }
    if let Some((i, ch)) = host
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(UrlError::InvalidHostChar {
            host: host.to_string(),
            position: position + i,
            ch,
        });
    }
    if host.len() > MAX_HOST_LENGTH {
        return Err(UrlError::HostTooLong {
            position,
            len: host.len(),
        });
    }
    Ok(BrokerAddr::new(host, port))
}

fn parse_port(text: &str, position: usize) -> Result<u16, UrlError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::InvalidPort {
            port: text.to_string(),
            position,
        });
    }
    match text.parse::<u16>() {
        Ok(0) => Err(UrlError::PortZero { position }),
        Ok(port) => Ok(port),
        // All digits, so the only failure is overflow.
        Err(_) => Err(UrlError::PortOutOfRange {
            port: text.to_string(),
            position,
        }),
    }
}

fn validate_topic(topic: &str, position: usize) -> Result<(), UrlError> {
    if topic.is_empty() {
        return Err(UrlError::EmptyTopic { position });
    }
    if let Some((i, ch)) = topic.char_indices().find(|&(_, c)| !is_legal_topic_char(c)) {
        return Err(UrlError::InvalidTopicChar {
            topic: topic.to_string(),
            position: position + i,
            ch,
        });
    }
    // All characters are ASCII now, so bytes == characters.
    if topic.len() > MAX_TOPIC_LENGTH {
        return Err(UrlError::TopicTooLong {
            position,
            len: topic.len(),
        });
    }
    if topic == "." || topic == ".." {
        return Err(UrlError::ReservedTopic {
            topic: topic.to_string(),
            position,
        });
    }
    Ok(())
}

fn is_legal_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether `name` is a legal Kafka topic name: 1 to [`MAX_TOPIC_LENGTH`]
/// characters from `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn is_valid_topic_name(name: &str) -> bool {
    validate_topic(name, 0).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url(s: &str) -> KafkaUrl {
        match s.parse() {
            Ok(u) => u,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> UrlError {
        match s.parse::<KafkaUrl>() {
            Ok(u) => panic!("{s} parsed as {u:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn full_url() {
        let u = url("kafka://alice@broker1:9093,broker2/topic1,topic2");
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert_eq!(
            u.brokers,
            vec![
                BrokerAddr::new("broker1", 9093),
                BrokerAddr::new("broker2", 9092)
            ]
        );
        assert_eq!(u.topics, vec!["topic1", "topic2"]);
        assert_eq!(u.bootstrap_servers(), "broker1:9093,broker2:9092");
        assert_eq!(
            u.to_string(),
            "kafka://alice@broker1:9093,broker2:9092/topic1,topic2"
        );
    }

    #[test]
    fn no_topic_forms() {
        for s in ["kafka://host", "kafka://host/", "kafka://host:9092/"] {
            let u = url(s);
            assert!(u.topics.is_empty(), "{s}");
            assert_eq!(u.to_string(), "kafka://host:9092");
        }
    }

    #[test]
    fn scheme_case_insensitive() {
        assert_eq!(url("KAFKA://h/t").to_string(), "kafka://h:9092/t");
    }

    #[test]
    fn ipv6() {
        let u = url("kafka://[::1]:9093,[fe80::1]/t");
        assert_eq!(u.brokers[0], BrokerAddr::new("::1", 9093));
        assert_eq!(u.brokers[1], BrokerAddr::new("fe80::1", 9092));
        assert_eq!(u.bootstrap_servers(), "[::1]:9093,[fe80::1]:9092");
        assert_eq!(url(&u.to_string()), u);
    }

    #[test]
    fn ipv4_and_underscore_hosts() {
        assert_eq!(url("kafka://127.0.0.1/t").brokers[0].host, "127.0.0.1");
        assert_eq!(url("kafka://my_broker.local:1/t").brokers[0].port, 1);
        assert_eq!(url("kafka://h:65535").brokers[0].port, 65535);
    }

    #[test]
    fn topic_name_rules() {
        let long = "a".repeat(MAX_TOPIC_LENGTH);
        assert_eq!(url(&format!("kafka://h/{long}")).topics, vec![long.clone()]);
        assert!(is_valid_topic_name("a.b_c-D9"));
        assert!(is_valid_topic_name("..."));
        assert!(!is_valid_topic_name("."));
        assert!(!is_valid_topic_name(""));
        assert!(!is_valid_topic_name("a/b"));
    }

    #[test]
    fn error_scheme() {
        assert_eq!(err("localhost:9092/t"), UrlError::MissingScheme);
        assert_eq!(err(""), UrlError::MissingScheme);
        assert_eq!(err("kafka:/host/t"), UrlError::MissingScheme);
        assert_eq!(
            err("http://host/t"),
            UrlError::WrongScheme {
                scheme: "http".into()
            }
        );
        assert!(err("http://h").to_string().contains("kafka://"));
    }

    #[test]
    fn error_whitespace_and_junk() {
        assert_eq!(
            err("kafka://h /t"),
            UrlError::Whitespace {
                position: 9,
                ch: ' '
            }
        );
        assert_eq!(
            err("kafka://h/t\n"),
            UrlError::Whitespace {
                position: 11,
                ch: '\n'
            }
        );
        assert_eq!(
            err("kafka://h/t?x=1"),
            UrlError::TrailingJunk {
                position: 11,
                ch: '?'
            }
        );
        assert_eq!(
            err("kafka://h/t#frag"),
            UrlError::TrailingJunk {
                position: 11,
                ch: '#'
            }
        );
        assert_eq!(
            err("kafka://h?x"),
            UrlError::TrailingJunk {
                position: 9,
                ch: '?'
            }
        );
    }

    #[test]
    fn username_is_percent_decoded_as_hop_0_13() {
        // hop-client 0.13 io.py: `username = unquote(username)`.
        let u = url("kafka://user%40example.org@h/t");
        assert_eq!(u.username.as_deref(), Some("user@example.org"));
        assert_eq!(u.to_string(), "kafka://user%40example.org@h:9092/t");
        // unquote keeps a '%' that starts no escape.
        assert_eq!(url("kafka://a%zz%4@h").username.as_deref(), Some("a%zz%4"));
        assert_eq!(
            url("kafka://a%zz%4@h").to_string(),
            "kafka://a%25zz%254@h:9092"
        );
        assert_eq!(url("kafka://caf%C3%A9@h").username.as_deref(), Some("café"));
        assert_eq!(url("kafka://a%3Ab@h").username.as_deref(), Some("a:b"));
        assert_eq!(
            err("kafka://a%FF@h/t"),
            UrlError::UsernameNotUtf8 { position: 8 }
        );
    }

    #[test]
    fn error_username() {
        assert_eq!(err("kafka://@h/t"), UrlError::EmptyUsername { position: 8 });
        let e = err("kafka://user:hunter2@h/t");
        assert_eq!(e, UrlError::PasswordInUrl { position: 12 });
        assert!(!e.to_string().contains("hunter2"));
        assert!(!format!("{e:?}").contains("hunter2"));
        // A second '@' lands in the host.
        assert_eq!(
            err("kafka://a@b@h/t"),
            UrlError::InvalidHostChar {
                host: "b@h".into(),
                position: 11,
                ch: '@'
            }
        );
    }

    #[test]
    fn error_brokers() {
        assert_eq!(err("kafka:///t"), UrlError::NoBrokers { position: 8 });
        assert_eq!(err("kafka://"), UrlError::NoBrokers { position: 8 });
        assert_eq!(err("kafka://u@/t"), UrlError::NoBrokers { position: 10 });
        assert_eq!(err("kafka://a,,b/t"), UrlError::EmptyHost { position: 10 });
        assert_eq!(err("kafka://a,/t"), UrlError::EmptyHost { position: 10 });
        assert_eq!(err("kafka://:9092/t"), UrlError::EmptyHost { position: 8 });
        assert_eq!(
            err("kafka://h*st/t"),
            UrlError::InvalidHostChar {
                host: "h*st".into(),
                position: 9,
                ch: '*'
            }
        );
        let long = "h".repeat(MAX_HOST_LENGTH + 1);
        assert_eq!(
            err(&format!("kafka://{long}/t")),
            UrlError::HostTooLong {
                position: 8,
                len: MAX_HOST_LENGTH + 1
            }
        );
    }

    #[test]
    fn error_ipv6() {
        assert_eq!(
            err("kafka://::1/t"),
            UrlError::Ipv6NeedsBrackets {
                broker: "::1".into(),
                position: 8
            }
        );
        assert_eq!(
            err("kafka://[::1/t"),
            UrlError::UnclosedBracket { position: 8 }
        );
        assert_eq!(
            err("kafka://[nope]/t"),
            UrlError::InvalidIpv6 {
                host: "nope".into(),
                position: 9
            }
        );
        assert_eq!(
            err("kafka://[]/t"),
            UrlError::InvalidIpv6 {
                host: "".into(),
                position: 9
            }
        );
        assert_eq!(
            err("kafka://[::1]x/t"),
            UrlError::AfterBracket { position: 13 }
        );
        assert_eq!(
            err("kafka://[::1]:/t"),
            UrlError::InvalidPort {
                port: "".into(),
                position: 14
            }
        );
    }

    #[test]
    fn error_ports() {
        assert_eq!(
            err("kafka://h:/t"),
            UrlError::InvalidPort {
                port: "".into(),
                position: 10
            }
        );
        assert_eq!(
            err("kafka://h:abc/t"),
            UrlError::InvalidPort {
                port: "abc".into(),
                position: 10
            }
        );
        assert_eq!(
            err("kafka://h:-1/t"),
            UrlError::InvalidPort {
                port: "-1".into(),
                position: 10
            }
        );
        assert_eq!(
            err("kafka://h:+1/t"),
            UrlError::InvalidPort {
                port: "+1".into(),
                position: 10
            }
        );
        assert_eq!(err("kafka://h:0/t"), UrlError::PortZero { position: 10 });
        assert_eq!(err("kafka://h:000/t"), UrlError::PortZero { position: 10 });
        assert_eq!(
            err("kafka://h:65536/t"),
            UrlError::PortOutOfRange {
                port: "65536".into(),
                position: 10
            }
        );
        assert_eq!(
            err("kafka://a,h:99999999999999999999999/t"),
            UrlError::PortOutOfRange {
                port: "99999999999999999999999".into(),
                position: 12
            }
        );
    }

    #[test]
    fn error_topics() {
        assert_eq!(err("kafka://h/a,,b"), UrlError::EmptyTopic { position: 12 });
        assert_eq!(err("kafka://h/a,"), UrlError::EmptyTopic { position: 12 });
        assert_eq!(err("kafka://h/,a"), UrlError::EmptyTopic { position: 10 });
        assert_eq!(
            err("kafka://h/a/b"),
            UrlError::InvalidTopicChar {
                topic: "a/b".into(),
                position: 11,
                ch: '/'
            }
        );
        assert_eq!(
            err("kafka://h/t,caf\u{e9}"),
            UrlError::InvalidTopicChar {
                topic: "caf\u{e9}".into(),
                position: 15,
                ch: '\u{e9}'
            }
        );
        assert_eq!(
            err("kafka://h/x,."),
            UrlError::ReservedTopic {
                topic: ".".into(),
                position: 12
            }
        );
        assert_eq!(
            err("kafka://h/.."),
            UrlError::ReservedTopic {
                topic: "..".into(),
                position: 10
            }
        );
        let long = "t".repeat(MAX_TOPIC_LENGTH + 1);
        assert_eq!(
            err(&format!("kafka://h/{long}")),
            UrlError::TopicTooLong {
                position: 10,
                len: MAX_TOPIC_LENGTH + 1
            }
        );
        assert_eq!(
            err("kafka://h/a,b,a"),
            UrlError::DuplicateTopic {
                topic: "a".into(),
                position: 14
            }
        );
    }

    #[test]
    fn every_error_has_position_except_scheme() {
        assert_eq!(err("x").position(), None);
        assert_eq!(err("kafka://h:0").position(), Some(10));
    }

    fn arb_host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9_-][A-Za-z0-9._-]{0,30}",
            any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_string()),
            any::<u128>().prop_map(|b| Ipv6Addr::from(b).to_string()),
        ]
    }

    fn arb_url() -> impl Strategy<Value = KafkaUrl> {
        let broker = (arb_host(), 1u16..=u16::MAX).prop_map(|(h, p)| BrokerAddr::new(h, p));
        let topic = "[a-zA-Z0-9._-]{1,40}".prop_filter("reserved", |t| t != "." && t != "..");
        let topics = proptest::collection::vec(topic, 0..5).prop_map(|ts| {
            let mut seen = HashSet::new();
            ts.into_iter()
                .filter(|t| seen.insert(t.clone()))
                .collect::<Vec<_>>()
        });
        (
            proptest::option::of("[A-Za-z0-9._~!$&'()*+;=%,:@/ é-]{1,20}"),
            proptest::collection::vec(broker, 1..4),
            topics,
        )
            .prop_map(|(username, brokers, topics)| KafkaUrl {
                username,
                brokers,
                topics,
            })
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(u in arb_url()) {
            let text = u.to_string();
            let back: KafkaUrl = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(&back, &u);
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = s.parse::<KafkaUrl>();
            let _ = format!("kafka://{s}").parse::<KafkaUrl>();
        }

        #[test]
        fn url_like_strings_never_panic(s in "[a-z0-9@:/,\\[\\]\\.?#_ é-]{0,40}") {
            if let Err(e) = format!("kafka://{s}").parse::<KafkaUrl>() {
                // Positions always point inside the input.
                if let Some(p) = e.position() {
                    prop_assert!(p <= 8 + s.len());
                }
                let _ = e.to_string();
            }
        }
    }
}
