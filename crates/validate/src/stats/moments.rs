//! Count, mean and sum of squared deviations, computed per batch and merged
//! across batches and partitions (Chan et al.'s parallel algorithm), so `mean`
//! and `stddev` need one pass and no stored values.

/// Adds a part's count, mean and sum of squared deviations to running ones (Chan et al.).
pub(super) fn merge_moments(
    (n, mean, m2): (&mut u64, &mut f64, &mut f64),
    (bn, bmean, bm2): (u64, f64, f64),
) {
    if bn == 0 {
        return;
    }
    let total = *n + bn;
    let delta = bmean - *mean;
    *m2 += bm2 + delta * delta * (*n as f64) * (bn as f64) / total as f64;
    *mean += delta * bn as f64 / total as f64;
    *n = total;
}

/// Count, mean and sum of squared deviations of one batch (two passes, for accuracy).
pub(super) fn moments(values: &[f64]) -> (u64, f64, f64) {
    if values.is_empty() {
        return (0, 0.0, 0.0);
    }
    let n = values.len() as u64;
    let mean = values.iter().sum::<f64>() / n as f64;
    let m2 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (n, mean, m2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_merged_by_parts_equal_the_whole() {
        let all: Vec<f64> = (0..1000)
            .map(|i| ((i * 37) % 101) as f64 * 0.5 - 7.0)
            .collect();
        let (n, mean, m2) = moments(&all);
        let (mut pn, mut pmean, mut pm2) = (0u64, 0.0f64, 0.0f64);
        for part in all.chunks(97) {
            merge_moments((&mut pn, &mut pmean, &mut pm2), moments(part));
        }
        assert_eq!(pn, n);
        assert!((pmean - mean).abs() < 1e-12);
        assert!((pm2 - m2).abs() < 1e-9 * m2);
        // The sample standard deviation, as numpy.std(ddof=1) would give it.
        let direct = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        assert!(((pm2 / (pn - 1) as f64).sqrt() - direct).abs() < 1e-12);
    }
}
