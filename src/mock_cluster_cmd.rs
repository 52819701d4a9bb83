//! `skotch mock-cluster`: the in-process Kafka cluster of skotch-mock
//! (`skotch::mock::MockCluster`) run as a process of its own, so that any
//! Kafka client (skotch's CLI, the Java client, librdkafka) can be tested
//! against it with no JVM and no broker installed. It prints its bootstrap
//! address as one line on stdout and serves until SIGINT or SIGTERM.

use std::io::ErrorKind;

use clap::Args;
use skotch::mock::{MockCluster, MockError};
use skotch::protocol::sasl::Mechanism;

use crate::cli_support::emit;
use crate::signals;

/// `skotch mock-cluster ...`.
#[derive(Args)]
pub struct MockClusterArgs {
    /// Brokers in the cluster (node ids 0 to N-1).
    #[arg(long, short, default_value_t = 1, value_name = "N", value_parser = parse_brokers)]
    brokers: usize,
    /// Create a topic, NAME:PARTITIONS, replicated on min(3, N) brokers;
    /// repeat for more.
    #[arg(long = "topic", short, value_name = "NAME:PARTITIONS", value_parser = parse_topic)]
    topics: Vec<TopicSpec>,
    /// Broker 0 listens on port P, broker 1 on P+1, and so on
    /// [default: free ports the system picks].
    #[arg(long, short, value_name = "P", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// Require SASL (a SASL_PLAINTEXT listener) and accept this user,
    /// MECHANISM:USER:PASSWORD with MECHANISM one of PLAIN, SCRAM-SHA-256,
    /// SCRAM-SHA-512; repeat for more users. Without it the listeners
    /// are PLAINTEXT.
    #[arg(long = "sasl-user", value_name = "MECHANISM:USER:PASSWORD", value_parser = parse_sasl_user)]
    sasl_users: Vec<SaslUser>,
}

/// A `--topic` argument.
#[derive(Clone)]
struct TopicSpec {
    name: String,
    partitions: i32,
}

/// `--brokers`: 1 or more (clap reports a bad value as a usage error).
fn parse_brokers(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(0) => Err("a cluster needs at least one broker".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number of 1 or more".into()),
    }
}

fn parse_topic(raw: &str) -> Result<TopicSpec, String> {
    let bad = |why: &str| format!("{why} (expected NAME:PARTITIONS, e.g. events:3)");
    // Kafka topic names cannot hold ':' (Topic.validate: [a-zA-Z0-9._-]),
    // so the last ':' separates the count.
    let (name, count) = raw.rsplit_once(':').ok_or_else(|| bad("no ':'"))?;
    if name.is_empty() {
        return Err(bad("empty topic name"));
    }
    let partitions = count
        .parse::<i32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad("PARTITIONS must be a whole number of 1 or more"))?;
    Ok(TopicSpec {
        name: name.to_string(),
        partitions,
    })
}

/// A `--sasl-user` argument: mechanism, user, password.
type SaslUser = (Mechanism, String, String);

/// The password is everything after the second ':' (it may hold ':'
/// itself).
fn parse_sasl_user(raw: &str) -> Result<SaslUser, String> {
    let bad = |why: &str| format!("{why} (expected MECHANISM:USER:PASSWORD)");
    let mut parts = raw.splitn(3, ':');
    let (Some(mech), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not three ':'-separated parts"));
    };
    let mechanism = mech.parse::<Mechanism>().map_err(|e| e.to_string())?;
    if user.is_empty() {
        return Err(bad("empty user name"));
    }
    Ok((mechanism, user.to_string(), password.to_string()))
}

/// Run the cluster until SIGINT or SIGTERM.
pub async fn run(args: MockClusterArgs) -> Result<(), String> {
    let MockClusterArgs {
        brokers,
        topics,
        port,
        sasl_users: users,
    } = args;
    let last_port = match port {
        Some(p) => Some(
            u16::try_from(brokers - 1)
                .ok()
                .and_then(|extra| p.checked_add(extra))
                .ok_or_else(|| format!("--port {p} with {} brokers: ports above 65535", brokers))?,
        ),
        None => None,
    };

    let mut builder = MockCluster::builder().brokers(brokers);
    if let Some(p) = port {
        builder = builder.port(p);
    }
    for (mechanism, user, password) in &users {
        builder = builder.sasl_user(*mechanism, user, password);
    }
    let cluster = builder.start().await.map_err(|e| match (e, port) {
        (MockError::Io(e), Some(first)) if e.kind() == ErrorKind::AddrInUse => {
            let last = last_port.unwrap_or(first);
            let ports = if last == first {
                format!("port {first} is")
            } else {
                format!("one of the ports {first}-{last} is")
            };
            format!("cannot listen on 127.0.0.1: {ports} in use ({e})")
        }
        (MockError::Io(e), _) => format!("cannot listen on 127.0.0.1: {e}"),
        (e, _) => e.to_string(),
    })?;

    // As a broker's default.replication.factor would be, capped by the
    // brokers there are (a real broker refuses a factor above them:
    // INVALID_REPLICATION_FACTOR).
    let replication = brokers.min(3) as i16;
    for t in &topics {
        cluster
            .create_topic(&t.name, t.partitions, replication)
            .map_err(|e| format!("--topic {}:{}: {e}", t.name, t.partitions))?;
    }

    // Catch the signals before announcing the address: a caller that reads
    // the line and stops us at once gets a clean stop (exit 0).
    let mut shutdown = signals::Shutdown::install();
    emit(&format!("{}\n", cluster.bootstrap_servers()))?;
    eprintln!(
        "skotch: mock cluster of {} broker(s) serving{}; Ctrl-C or SIGTERM stops it",
        brokers,
        if users.is_empty() {
            " (PLAINTEXT)"
        } else {
            " (SASL_PLAINTEXT)"
        }
    );
    shutdown.requested().await;
    cluster.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{parse_sasl_user, parse_topic};
    use skotch::protocol::sasl::Mechanism;

    #[test]
    fn topics_parse_as_name_colon_partitions() {
        let t = parse_topic("events:3").unwrap();
        assert_eq!((t.name.as_str(), t.partitions), ("events", 3));
        for bad in [
            "events",
            ":3",
            "events:",
            "events:0",
            "events:-1",
            "events:x",
        ] {
            let e = parse_topic(bad).err().unwrap();
            assert!(e.contains("NAME:PARTITIONS"), "{bad}: {e}");
        }
    }

    #[test]
    fn sasl_users_keep_colons_in_the_password() {
        let (m, u, p) = parse_sasl_user("SCRAM-SHA-256:alice:a:b").unwrap();
        assert_eq!(m, Mechanism::ScramSha256);
        assert_eq!((u.as_str(), p.as_str()), ("alice", "a:b"));
        assert!(parse_sasl_user("MD5:alice:x")
            .unwrap_err()
            .contains("PLAIN"));
        assert!(parse_sasl_user("PLAIN:alice").is_err());
        assert!(parse_sasl_user("PLAIN::x").is_err());
    }
}
