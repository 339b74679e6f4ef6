//! Batch normalization over the rows of a row-major (N × C) matrix: PyTorch's `BatchNorm1d`.
//!
//! ```text
//! training:   μ = mean over rows, σ² = biased variance over rows
//!             x̂ = (x − μ) / √(σ² + ε),   y = γ·x̂ + β
//!             running_mean ← (1 − m)·running_mean + m·μ
//!             running_var  ← (1 − m)·running_var  + m·σ²·N/(N − 1)   (unbiased)
//! evaluation: y = γ·(x − running_mean)/√(running_var + ε) + β
//! backward:   dβ = Σ g,  dγ = Σ g·x̂,  dx = γ/√(σ² + ε) · (g − dβ/N − x̂·dγ/N)
//! ```
//!
//! The kernels take row blocks, so that a training step can cut a batch into shards: each
//! shard adds its rows' sums into its own f64 accumulators ([`add_column_sums`],
//! [`add_centered_squares`], [`add_grad_sums`]), the caller adds the shards' accumulators in
//! shard order (a fixed order, which the thread count does not change), and each shard then
//! normalizes or back-propagates its rows ([`normalize_rows`], [`backward_rows`]). Sums are
//! taken in f64 and the variance in two passes (mean, then squared deviations), so float32
//! batches of any size keep their statistics to float32's precision.

use crate::float::Float;

/// Adds each column's sum over the rows of `x` (`cols` wide) into `sums`.
pub fn add_column_sums<T: Float>(x: &[T], cols: usize, sums: &mut [f64]) {
    crate::simd::wide(
        #[inline(always)]
        || {
            for row in x.chunks_exact(cols.max(1)) {
                for (s, &v) in sums.iter_mut().zip(row) {
                    *s += v.to_f64();
                }
            }
        },
    )
}

/// Adds each column's Σ (x − mean)² over the rows of `x` into `sums`.
pub fn add_centered_squares<T: Float>(x: &[T], cols: usize, mean: &[f64], sums: &mut [f64]) {
    crate::simd::wide(
        #[inline(always)]
        || {
            for row in x.chunks_exact(cols.max(1)) {
                for ((s, &v), &m) in sums.iter_mut().zip(row).zip(mean) {
                    let d = v.to_f64() - m;
                    *s += d * d;
                }
            }
        },
    )
}

/// 1/√(var + ε) per column.
pub fn inverse_std(var: &[f64], eps: f64) -> Vec<f64> {
    var.iter().map(|&v| 1.0 / (v + eps).sqrt()).collect()
}

/// Normalizes the rows of `x` in place, `x ← γ·(x − mean)·inv_std + β`, writing x̂ into
/// `xhat` (same shape) when given.
pub fn normalize_rows<T: Float>(
    x: &mut [T],
    cols: usize,
    (mean, inv_std): (&[f64], &[f64]),
    (gamma, beta): (&[T], &[T]),
    xhat: Option<&mut [T]>,
) {
    let cols = cols.max(1);
    crate::simd::wide(
        #[inline(always)]
        || match xhat {
            Some(xhat) => {
                for (row, hat_row) in x.chunks_exact_mut(cols).zip(xhat.chunks_exact_mut(cols)) {
                    let params = mean.iter().zip(inv_std).zip(gamma.iter().zip(beta));
                    for ((v, hat), ((&m, &inv), (&g, &b))) in
                        row.iter_mut().zip(hat_row.iter_mut()).zip(params)
                    {
                        let h = T::from_f64((v.to_f64() - m) * inv);
                        *hat = h;
                        *v = g * h + b;
                    }
                }
            }
            None => {
                for row in x.chunks_exact_mut(cols) {
                    let params = mean.iter().zip(inv_std).zip(gamma.iter().zip(beta));
                    for (v, ((&m, &inv), (&g, &b))) in row.iter_mut().zip(params) {
                        let h = T::from_f64((v.to_f64() - m) * inv);
                        *v = g * h + b;
                    }
                }
            }
        },
    )
}

/// Adds each column's Σ g (dβ) and Σ g·x̂ (dγ) over the rows of `g` and `xhat`.
pub fn add_grad_sums<T: Float>(
    g: &[T],
    xhat: &[T],
    cols: usize,
    dbeta: &mut [f64],
    dgamma: &mut [f64],
) {
    let cols = cols.max(1);
    crate::simd::wide(
        #[inline(always)]
        || {
            for (grow, hrow) in g.chunks_exact(cols).zip(xhat.chunks_exact(cols)) {
                let sums = dbeta.iter_mut().zip(dgamma.iter_mut());
                for ((db, dg), (&gv, &h)) in sums.zip(grow.iter().zip(hrow)) {
                    let gv = gv.to_f64();
                    *db += gv;
                    *dg += gv * h.to_f64();
                }
            }
        },
    )
}

/// Turns `g` (dL/dy for some rows of a batch of `n` rows) into dL/dx in place, given the
/// batch's dβ and dγ (summed over all its rows).
pub fn backward_rows<T: Float>(
    g: &mut [T],
    xhat: &[T],
    cols: usize,
    n: usize,
    (gamma, inv_std): (&[T], &[f64]),
    (dbeta, dgamma): (&[f64], &[f64]),
) {
    let inv_n = 1.0 / n as f64;
    let cols = cols.max(1);
    crate::simd::wide(
        #[inline(always)]
        || {
            for (grow, hrow) in g.chunks_exact_mut(cols).zip(xhat.chunks_exact(cols)) {
                let scale = gamma.iter().zip(inv_std);
                let sums = dbeta.iter().zip(dgamma);
                for ((gv, &h), ((&gm, &inv), (&db, &dg))) in
                    grow.iter_mut().zip(hrow).zip(scale.zip(sums))
                {
                    let centered = gv.to_f64() - db * inv_n - h.to_f64() * dg * inv_n;
                    *gv = T::from_f64(gm.to_f64() * inv * centered);
                }
            }
        },
    )
}

/// Moves the running statistics towards a batch's: `mean` and the biased `var` of `n` rows
/// (n ≥ 2: the unbiased variance divides by n − 1).
pub fn update_running<T: Float>(
    (running_mean, running_var): (&mut [T], &mut [T]),
    (mean, var): (&[f64], &[f64]),
    n: usize,
    momentum: f64,
) {
    debug_assert!(n >= 2, "the unbiased variance of {n} rows");
    let unbias = n as f64 / (n - 1) as f64;
    for j in 0..mean.len() {
        let rm = running_mean[j].to_f64();
        let rv = running_var[j].to_f64();
        running_mean[j] = T::from_f64((1.0 - momentum) * rm + momentum * mean[j]);
        running_var[j] = T::from_f64((1.0 - momentum) * rv + momentum * var[j] * unbias);
    }
}

/// Evaluation mode: `x ← γ·(x − running_mean)/√(running_var + ε) + β`, in place.
pub fn normalize_eval_rows<T: Float>(
    x: &mut [T],
    cols: usize,
    (running_mean, running_var): (&[T], &[T]),
    eps: f64,
    (gamma, beta): (&[T], &[T]),
) {
    let inv_std: Vec<f64> = running_var
        .iter()
        .map(|v| 1.0 / (v.to_f64() + eps).sqrt())
        .collect();
    crate::simd::wide(
        #[inline(always)]
        || {
            for row in x.chunks_exact_mut(cols.max(1)) {
                let params = running_mean
                    .iter()
                    .zip(&inv_std)
                    .zip(gamma.iter().zip(beta));
                for (v, ((&m, &inv), (&g, &b))) in row.iter_mut().zip(params) {
                    let h = (v.to_f64() - m.to_f64()) * inv;
                    *v = T::from_f64(g.to_f64() * h + b.to_f64());
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A training-mode forward of the whole batch, cut into `shards` row blocks.
    fn forward(x: &[f64], cols: usize, shards: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = x.len() / cols;
        let cut = |s: usize| (n * s / shards, n * (s + 1) / shards);
        let mut sums = vec![0.0; cols];
        for s in 0..shards {
            let (lo, hi) = cut(s);
            add_column_sums(&x[lo * cols..hi * cols], cols, &mut sums);
        }
        let mean: Vec<f64> = sums.iter().map(|s| s / n as f64).collect();
        let mut sq = vec![0.0; cols];
        for s in 0..shards {
            let (lo, hi) = cut(s);
            add_centered_squares(&x[lo * cols..hi * cols], cols, &mean, &mut sq);
        }
        let var: Vec<f64> = sq.iter().map(|s| s / n as f64).collect();
        (mean, var, sums)
    }

    #[test]
    fn shards_give_the_whole_batchs_statistics() {
        let x: Vec<f64> = (0..7 * 3)
            .map(|i| ((i * 37 % 11) as f64 - 4.0) * 0.3)
            .collect();
        let (mean, var, _) = forward(&x, 3, 1);
        let (mean3, var3, _) = forward(&x, 3, 3);
        for j in 0..3 {
            let col: Vec<f64> = (0..7).map(|i| x[i * 3 + j]).collect();
            let m = col.iter().sum::<f64>() / 7.0;
            let v = col.iter().map(|c| (c - m) * (c - m)).sum::<f64>() / 7.0;
            assert!((mean[j] - m).abs() < 1e-15 && (var[j] - v).abs() < 1e-15);
            assert!((mean3[j] - m).abs() < 1e-15 && (var3[j] - v).abs() < 1e-15);
        }
    }

    #[test]
    fn backward_matches_centered_differences() {
        // L = Σ w ⊙ y for fixed w: dL/dy = w, checked against (L(x + h) − L(x − h)) / 2h.
        let (n, c) = (5, 3);
        let x: Vec<f64> = (0..n * c)
            .map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.41 + 0.03 * i as f64)
            .collect();
        let w: Vec<f64> = (0..n * c).map(|i| (i as f64 * 0.7).sin()).collect();
        let gamma = [1.5, -0.5, 0.8];
        let beta = [0.1, 0.2, -0.3];
        let eps = 1e-5;
        let loss = |x: &[f64]| {
            let (mean, var, _) = forward(x, c, 1);
            let inv = inverse_std(&var, eps);
            let mut y = x.to_vec();
            normalize_rows(&mut y, c, (&mean, &inv), (&gamma, &beta), None);
            y.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
        };
        let (mean, var, _) = forward(&x, c, 1);
        let inv = inverse_std(&var, eps);
        let mut y = x.clone();
        let mut xhat = vec![0.0; n * c];
        normalize_rows(&mut y, c, (&mean, &inv), (&gamma, &beta), Some(&mut xhat));
        let (mut db, mut dg) = (vec![0.0; c], vec![0.0; c]);
        add_grad_sums(&w, &xhat, c, &mut db, &mut dg);
        let mut dx = w.clone();
        backward_rows(&mut dx, &xhat, c, n, (&gamma, &inv), (&db, &dg));
        let h = 1e-6;
        for i in 0..n * c {
            let (mut p, mut m) = (x.clone(), x.clone());
            p[i] += h;
            m[i] -= h;
            let num = (loss(&p) - loss(&m)) / (2.0 * h);
            assert!((num - dx[i]).abs() < 1e-7, "dx[{i}]: {} vs {num}", dx[i]);
        }
        // dβ = Σ w over rows; dγ = Σ w·x̂.
        for j in 0..c {
            let sw: f64 = (0..n).map(|i| w[i * c + j]).sum();
            assert!((db[j] - sw).abs() < 1e-14);
        }
    }

    #[test]
    fn running_statistics_use_the_unbiased_variance() {
        let (mut rm, mut rv) = (vec![0.0f64; 2], vec![1.0f64; 2]);
        update_running((&mut rm, &mut rv), (&[2.0, -1.0], &[3.0, 0.5]), 4, 0.1);
        assert_eq!(rm, vec![0.2, -0.1]);
        assert!((rv[0] - (0.9 + 0.1 * 3.0 * 4.0 / 3.0)).abs() < 1e-15);
        assert!((rv[1] - (0.9 + 0.1 * 0.5 * 4.0 / 3.0)).abs() < 1e-15);
        let mut x = vec![3.0f64, -1.0];
        normalize_eval_rows(&mut x, 2, (&rm, &rv), 0.0, (&[2.0, 1.0], &[0.5, 0.0]));
        assert!((x[0] - (2.0 * (3.0 - 0.2) / rv[0].sqrt() + 0.5)).abs() < 1e-15);
    }
}
