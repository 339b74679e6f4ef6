//! Batch normalization's numbers inside a training step: the batch's mean, variance and
//! 1/√(σ² + ε) per normalization, and its Σg and Σg·x̂ for the backward pass, each added up
//! from the shards' parts in shard order (see `step`, whose passes fill them).

use crate::alloc;
use crate::error::Result;
use crate::forward::Ptr;
use crate::network::{Block, Spec};

/// Batch normalization's per-step numbers, per block (empty for the other blocks).
pub(crate) struct NormBuffers {
    /// The batch's mean and 1/√(σ² + ε).
    pub(crate) stats: Vec<(Vec<f64>, Vec<f64>)>,
    /// The batch's biased variance σ².
    pub(crate) var: Vec<Vec<f64>>,
    /// The batch's Σg (dβ), then its Σg·x̂ (dγ).
    pub(crate) sums: Vec<Vec<f64>>,
    /// Per shard, a slot of [`SLOT`]·features for its share of a sum.
    pub(crate) partial: Vec<Ptr<f64>>,
    /// The storage `partial` points to.
    pub(crate) partial_store: Vec<Vec<f64>>,
}

impl NormBuffers {
    /// Buffers for `spec`'s normalizations, with a slot per shard for up to `shards`.
    pub(crate) fn new(spec: &Spec, shards: usize) -> Result<Self> {
        let sized = |times: usize, what| {
            move |b: &Block| -> Result<Vec<f64>> {
                match b {
                    Block::Norm { features, .. } => alloc::zeros2(times, *features, what),
                    _ => Ok(Vec::new()),
                }
            }
        };
        let blocks = spec.blocks();
        let per_block = |times, what| -> Result<Vec<Vec<f64>>> {
            blocks.iter().map(sized(times, what)).collect()
        };
        let mut partial_store = per_block(SLOT * shards, "batch statistics")?;
        let means = per_block(1, "batch statistics")?;
        let inv_stds = per_block(1, "batch statistics")?;
        Ok(NormBuffers {
            stats: means.into_iter().zip(inv_stds).collect(),
            var: per_block(1, "batch statistics")?,
            sums: per_block(2, "gradient sums")?,
            partial: partial_store.iter_mut().map(|v| Ptr::of(v)).collect(),
            partial_store,
        })
    }
}

/// A shard's slot of partial sums holds this many values per feature: its column sums, its
/// mean and its squared deviations from that mean (forward), or its Σg and Σg·x̂ (backward).
pub(crate) const SLOT: usize = 3;

/// The batch's mean and biased variance from the first `count` shards' slots (column sums,
/// shard mean, squared deviations from it), combined in shard order: the mean is the sum of
/// the sums over `n`, and the squared deviations from it are each shard's plus its rows times
/// its mean's squared distance from the batch's (Chan, Golub and LeVeque's update).
pub(crate) fn combine_stats(
    partial: &[f64],
    features: usize,
    n: usize,
    count: usize,
    (mean, var): (&mut [f64], &mut [f64]),
) {
    reduce(partial, SLOT * features, count, mean);
    mean.iter_mut().for_each(|v| *v /= n as f64);
    var.fill(0.0);
    for (s, slot) in partial
        .chunks_exact(SLOT * features)
        .take(count)
        .enumerate()
    {
        let (lo, hi) = crate::step::shard_range(n, s, count);
        let rows = (hi - lo) as f64;
        let (shard_mean, squares) = slot[features..].split_at(features);
        for (((v, &sq), &sm), &m) in var.iter_mut().zip(squares).zip(shard_mean).zip(&*mean) {
            let d = sm - m;
            *v += sq + rows * d * d;
        }
    }
    var.iter_mut().for_each(|v| *v /= n as f64);
}

/// Adds up the first `out.len()` values of the first `count` slots (`slot` long each, in
/// shard order) of `partial` into `out`.
pub(crate) fn reduce(partial: &[f64], slot: usize, count: usize, out: &mut [f64]) {
    out.fill(0.0);
    for part in partial.chunks_exact(slot).take(count) {
        for (o, &v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batchnorm::{add_centered_squares, add_column_sums};

    /// Shards' sums and own-mean squared deviations, combined, give the whole batch's mean
    /// and two-pass variance, for any cut (large means included, where Σx² − n·μ² would not).
    #[test]
    fn combined_shards_give_the_batch_statistics() {
        let (n, c) = (37, 3);
        let x: Vec<f64> = (0..n * c)
            .map(|i| 1e6 + ((i * 7919) % 101) as f64 * 0.37 - (i % c) as f64 * 1e3)
            .collect();
        let mut mean = vec![0.0; c];
        add_column_sums(&x, c, &mut mean);
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0; c];
        add_centered_squares(&x, c, &mean, &mut var);
        var.iter_mut().for_each(|v| *v /= n as f64);
        for count in [1, 2, 3, 5] {
            let mut partial = vec![0.0; SLOT * c * count];
            for (s, slot) in partial.chunks_exact_mut(SLOT * c).enumerate() {
                let (lo, hi) = crate::step::shard_range(n, s, count);
                let rows = &x[lo * c..hi * c];
                let (sums, rest) = slot.split_at_mut(c);
                let (own, squares) = rest.split_at_mut(c);
                add_column_sums(rows, c, sums);
                for (o, &v) in own.iter_mut().zip(&*sums) {
                    *o = v / (hi - lo) as f64;
                }
                add_centered_squares(rows, c, own, squares);
            }
            let (mut m, mut v) = (vec![0.0; c], vec![0.0; c]);
            combine_stats(&partial, c, n, count, (&mut m, &mut v));
            for j in 0..c {
                assert!(
                    (m[j] - mean[j]).abs() <= 1e-15 * mean[j].abs(),
                    "{count} shards"
                );
                // Means of 1e6 and variances of about 100: each shard mean's rounding (1e-10)
                // enters through its distance to the batch's, a few 1e-10 in all, where
                // Σx²/n − μ² would lose everything below 1e12·1e-16 = 1e-4.
                assert!(
                    (v[j] - var[j]).abs() <= 1e-11 * var[j],
                    "{count} shards: {v:?} {var:?}"
                );
            }
        }
    }
}
