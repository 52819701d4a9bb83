//! API version negotiation: the broker's ApiVersions ranges meet ours, and
//! the highest version both speak is used (protocol guide, "Versioning and
//! Compatibility"; KIP-35).

use skotch_protocol::messages::{ApiKey, ApiVersionsResponse};

use crate::error::{Error, Result};

/// Version ranges a broker advertised, indexed by API key.
#[derive(Debug, Clone, Default)]
pub struct BrokerVersions {
    ranges: Vec<Option<(i16, i16)>>,
}

/// Most API keys are below this; larger ones are simply ignored.
const MAX_KEY: usize = 1024;

impl BrokerVersions {
    /// Collect the ranges from an ApiVersions response.
    pub fn from_response(resp: &ApiVersionsResponse) -> Self {
        let mut ranges = Vec::new();
        for k in &resp.api_keys {
            let Ok(idx) = usize::try_from(k.api_key) else {
                continue;
            };
            if idx >= MAX_KEY || k.min_version > k.max_version {
                continue;
            }
            if ranges.len() <= idx {
                ranges.resize(idx + 1, None);
            }
            ranges[idx] = Some((k.min_version, k.max_version));
        }
        Self { ranges }
    }

    /// The broker's range for `api`, if it offers it.
    pub fn range(&self, api: ApiKey) -> Option<(i16, i16)> {
        usize::try_from(api as i16)
            .ok()
            .and_then(|i| self.ranges.get(i).copied().flatten())
    }

    /// The highest version in both the broker's range and `ours`.
    pub fn pick(&self, addr: &str, api: ApiKey, ours: (i16, i16)) -> Result<i16> {
        let theirs = self.range(api);
        match theirs {
            Some((lo, hi)) if hi.min(ours.1) >= lo.max(ours.0) => Ok(hi.min(ours.1)),
            _ => {
                let (broker_min, broker_max) = theirs.unwrap_or((-1, -1));
                Err(Error::UnsupportedVersion {
                    addr: addr.to_string(),
                    api,
                    broker_min,
                    broker_max,
                    ours_min: ours.0,
                    ours_max: ours.1,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skotch_protocol::messages::api_versions_response::ApiVersion;

    fn versions(list: &[(i16, i16, i16)]) -> BrokerVersions {
        let resp = ApiVersionsResponse {
            api_keys: list
                .iter()
                .map(|&(api_key, min_version, max_version)| ApiVersion {
                    api_key,
                    min_version,
                    max_version,
                })
                .collect(),
            ..Default::default()
        };
        BrokerVersions::from_response(&resp)
    }

    #[test]
    fn picks_highest_common() {
        let v = versions(&[(0, 3, 9), (1, 4, 17), (-1, 0, 0), (5000, 0, 1)]);
        assert_eq!(v.pick("b", ApiKey::Produce, (3, 13)).unwrap(), 9);
        assert_eq!(v.pick("b", ApiKey::Fetch, (4, 12)).unwrap(), 12);
        assert!(v.pick("b", ApiKey::Fetch, (0, 3)).is_err());
        let e = v.pick("b", ApiKey::Metadata, (0, 12)).unwrap_err();
        assert!(e.to_string().contains("does not support"), "{e}");
    }
}
