//! The criterion settings every benchmark here shares.

use std::time::Duration;

use criterion::Criterion;

/// Short runs (each bench file takes under three minutes): the figures are
/// for comparing codecs with each other and with memcpy, not for
/// detecting 1 % regressions.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}
