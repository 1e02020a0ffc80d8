//! Latency samples and their percentiles.

use std::time::Duration;

/// Latencies of one measured run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Samples {
    micros: Vec<f64>,
    /// Wall time of the whole run.
    pub(crate) elapsed: Duration,
}

impl Samples {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            micros: Vec::with_capacity(n),
            elapsed: Duration::ZERO,
        }
    }

    pub(crate) fn push(&mut self, d: Duration) {
        self.micros.push(d.as_secs_f64() * 1e6);
    }

    /// A run that counted operations without timing each: only its throughput means
    /// anything.
    pub(crate) fn tally(count: usize, elapsed: Duration) -> Self {
        Self {
            micros: vec![0.0; count],
            elapsed,
        }
    }

    /// Adds another run's samples.
    pub(crate) fn merge(&mut self, other: &Samples) {
        self.micros.extend_from_slice(&other.micros);
    }

    /// The q-quantile (0..=1) in milliseconds, nearest rank.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let mut v = self.micros.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1] / 1000.0
    }

    pub(crate) fn p50(&self) -> f64 {
        self.quantile_ms(0.50)
    }

    pub(crate) fn p99(&self) -> f64 {
        self.quantile_ms(0.99)
    }

    pub(crate) fn p999(&self) -> f64 {
        self.quantile_ms(0.999)
    }

    /// Operations per second over the run's wall time.
    pub(crate) fn throughput(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.micros.len() as f64 / s
        } else {
            f64::NAN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut s = Samples::default();
        for ms in 1..=100 {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.p50(), 50.0);
        assert_eq!(s.p99(), 99.0);
        assert_eq!(s.quantile_ms(1.0), 100.0);
    }
}
