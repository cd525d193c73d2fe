//! Distribution statistics over sorted samples: exact quantiles, the population
//! stability index and the two-sample Kolmogorov–Smirnov statistic.

/// The smallest probability a PSI bin is given, so that an empty bin does not make
/// the index infinite (the seed pipeline's `np.clip(p, 1e-6, None)`).
pub const PSI_FLOOR: f64 = 1e-6;

/// The `q` quantile of sorted values, interpolated linearly between the two
/// nearest ranks (as `percentile_cont` and numpy's default do). `None` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Inner bin edges at the reference's quantiles `1/bins, ..., (bins-1)/bins`,
/// repeated edges removed. Bin `i` holds values in `(edge[i-1], edge[i]]`, the
/// first bin everything up to `edge[0]`, the last everything above the last edge.
pub fn quantile_edges(reference_sorted: &[f64], bins: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..bins)
        .filter_map(|i| quantile(reference_sorted, i as f64 / bins as f64))
        .collect();
    edges.dedup();
    edges
}

/// How many sorted values fall in each bin given by inner `edges`.
pub fn bin_counts(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    let mut counts = Vec::with_capacity(edges.len() + 1);
    let mut start = 0;
    for edge in edges {
        let end = sorted.partition_point(|v| v <= edge);
        counts.push((end - start) as u64);
        start = end;
    }
    counts.push((sorted.len() - start) as u64);
    counts
}

/// Proportions of counts; uniform when there are none (as the seed does).
pub fn proportions(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return vec![1.0 / counts.len().max(1) as f64; counts.len()];
    }
    counts.iter().map(|c| *c as f64 / total as f64).collect()
}

/// The population stability index of `actual` against `expected` bin counts:
/// `sum((a - e) * ln(a / e))` over the proportions, each clipped below at
/// [`PSI_FLOOR`] — the seed's `_calculate_psi`.
pub fn psi(expected: &[u64], actual: &[u64]) -> f64 {
    let e = proportions(expected);
    let a = proportions(actual);
    e.iter()
        .zip(&a)
        .map(|(e, a)| {
            let e = e.max(PSI_FLOOR);
            let a = a.max(PSI_FLOOR);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// The two-sample Kolmogorov–Smirnov statistic: the largest distance between the
/// empirical distribution functions of two sorted samples. 0 when either is empty.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut d: f64 = 0.0;
    while i < a.len() && j < b.len() {
        // Step both functions past the next value (ties move together).
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values computed with numpy 2.4.6 and scipy 1.17.1:
    //   a = [0.1*i**1.5 % 7 for i in range(200)], b = [0.13*i**1.4 % 6 + 0.5 for i in range(150)]
    //   scipy.stats.ks_2samp(a, b).statistic
    //   edges = np.quantile(a, [i/10 for i in range(1, 10)]); the seed's _calculate_psi on
    //   the counts of a and b in the bins (-inf, e1], ..., (e9, inf)
    fn samples() -> (Vec<f64>, Vec<f64>) {
        let mut a: Vec<f64> = (0..200)
            .map(|i| (0.1 * (i as f64).powf(1.5)) % 7.0)
            .collect();
        let mut b: Vec<f64> = (0..150)
            .map(|i| (0.13 * (i as f64).powf(1.4)) % 6.0 + 0.5)
            .collect();
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        (a, b)
    }

    #[test]
    fn psi_is_the_seed_formula() {
        // Hand-checkable: e = [.5, .5], a = [.25, .75].
        let v = psi(&[50, 50], &[25, 75]);
        let expected = (0.25 - 0.5) * (0.25f64 / 0.5).ln() + (0.75 - 0.5) * (0.75f64 / 0.5).ln();
        assert!((v - expected).abs() < 1e-12);
        // An empty bin is clipped at 1e-6 rather than making the index infinite.
        let v = psi(&[10, 0], &[5, 5]);
        let e: [f64; 2] = [1.0, 1e-6];
        let a: [f64; 2] = [0.5, 0.5];
        let expected: f64 = (0..2).map(|i| (a[i] - e[i]) * (a[i] / e[i]).ln()).sum();
        assert!((v - expected).abs() < 1e-9);
        assert_eq!(psi(&[3, 4, 5], &[3, 4, 5]), 0.0);
    }

    #[test]
    fn ks_matches_the_textbook_on_small_cases() {
        assert_eq!(ks_statistic(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(ks_statistic(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        // F_a jumps to 0.5 at 1; F_b is 0 until 2: the largest gap is 0.5.
        assert_eq!(ks_statistic(&[1.0, 3.0], &[2.0, 4.0]), 0.5);
        // Ties: both functions step together.
        assert_eq!(ks_statistic(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]), 1.0 / 3.0);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert!((quantile(&v, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn bins_hold_values_up_to_their_edge() {
        assert_eq!(
            bin_counts(&[1.0, 2.0, 2.0, 3.0, 9.0], &[2.0, 3.0]),
            vec![3, 1, 1]
        );
        assert_eq!(quantile_edges(&[1.0, 1.0, 1.0, 1.0], 4), vec![1.0]);
    }

    #[test]
    fn drift_equals_scipy_and_numpy_to_1e_9() {
        let (a, b) = samples();
        let ks = ks_statistic(&a, &b);
        let edges = quantile_edges(&a, 10);
        let p = psi(&bin_counts(&a, &edges), &bin_counts(&b, &edges));
        assert!((ks - KS_SCIPY).abs() < 1e-9, "ks {ks} vs scipy {KS_SCIPY}");
        assert!((p - PSI_NUMPY).abs() < 1e-9, "psi {p} vs numpy {PSI_NUMPY}");
    }

    const KS_SCIPY: f64 = 0.08666666666666667;
    const PSI_NUMPY: f64 = 0.29373368972899583;
}
