//! A topic's configuration (DescribeConfigs, KIP-133; sources from KIP-226):
//! Java's `Admin.describeConfigs` for a `ConfigResource.Type.TOPIC`.

use skotch_protocol::messages::describe_configs_request::DescribeConfigsResource;
use skotch_protocol::messages::DescribeConfigsRequest;

use super::Admin;
use crate::error::{Error, Result};

/// `ConfigResource.Type.TOPIC` on the wire.
const RESOURCE_TOPIC: i8 = 2;

/// Where a config's value comes from (Java's `ConfigEntry.ConfigSource`,
/// KIP-226).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Set on this topic (`kafka-configs --alter --entity-type topics`, or
    /// at creation).
    DynamicTopic,
    /// A dynamic config of one broker.
    DynamicBroker,
    /// A dynamic config default of all brokers.
    DynamicDefaultBroker,
    /// The broker's `server.properties`.
    StaticBroker,
    /// Kafka's built-in default.
    Default,
    /// Any other source the broker names (its wire id), or none (-1, an
    /// old broker).
    Other(i8),
}

impl ConfigSource {
    fn from_wire(id: i8) -> Self {
        match id {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            other => ConfigSource::Other(other),
        }
    }

    /// Java's name of the source (`DYNAMIC_TOPIC_CONFIG`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::Other(_) => "UNKNOWN",
        }
    }
}

/// One config of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The config name, e.g. `retention.ms`.
    pub name: String,
    /// Its value; `None` for a sensitive config (the broker never sends
    /// those) or one without a value.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// The broker refuses to change it.
    pub read_only: bool,
    /// A password or other secret.
    pub sensitive: bool,
}

impl ConfigEntry {
    /// True when the value was set on this topic rather than inherited.
    pub fn is_topic_override(&self) -> bool {
        self.source == ConfigSource::DynamicTopic
    }
}

impl Admin {
    /// Every config of `topic`, sorted by name (Java's
    /// `describeConfigs(ConfigResource(TOPIC, topic))`), defaults
    /// included: see [`ConfigEntry::source`] for what was set on the topic.
    ///
    /// Errors: UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist,
    /// TOPIC_AUTHORIZATION_FAILED, and the broker's other refusals, with
    /// its message; connection trouble after retries within the admin
    /// timeout.
    pub async fn describe_topic_configs(&self, topic: &str) -> Result<Vec<ConfigEntry>> {
        let req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: topic.to_string(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        // Topic configs may be asked of any broker (broker configs would
        // have to go to that broker).
        let resp = self
            .client
            .retry(self.timeout, || self.client.send_any(&req))
            .await?;
        let result = resp
            .results
            .into_iter()
            .find(|r| r.resource_type == RESOURCE_TOPIC && r.resource_name == topic)
            .ok_or_else(|| {
                Error::Config(format!(
                    "the broker's DescribeConfigs answer has no entry for topic {topic:?}"
                ))
            })?;
        Error::check(result.error_code, result.error_message, || {
            format!("describe the configs of topic {topic:?}")
        })?;
        let mut entries: Vec<ConfigEntry> = result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name,
                value: c.value,
                source: ConfigSource::from_wire(c.config_source),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_wire_id() {
        assert_eq!(ConfigSource::from_wire(1), ConfigSource::DynamicTopic);
        assert_eq!(ConfigSource::from_wire(5), ConfigSource::Default);
        assert_eq!(ConfigSource::from_wire(-1), ConfigSource::Other(-1));
        assert_eq!(ConfigSource::from_wire(5).as_str(), "DEFAULT_CONFIG");
        assert_eq!(ConfigSource::from_wire(9).as_str(), "UNKNOWN");
    }
}
