//! The batch-normalization layer: its parameters (γ, β), running statistics and gradients,
//! with a forward (training or evaluation) and a backward built on the kernels of
//! [`crate::batchnorm`].
//!
//! The layer owns no cache: [`BatchNorm::forward`] returns what its backward needs (x̂ and
//! the inverse standard deviations used) as a [`Saved`], which the caller keeps — the
//! stand-alone Python layer keeps one, a training step would keep one per layer, as with
//! [`crate::Linear`], whose caller keeps its input.

use crate::alloc;
use crate::batchnorm::{
    add_centered_squares, add_column_sums, add_grad_sums, backward_rows, inverse_std,
    normalize_eval_rows, normalize_rows, update_running,
};
use crate::error::{Error, Result, fmt_num, fmt_shape};
use crate::float::Float;
use crate::linear::{check_buffer, check_matrix};
use crate::matrix::MatRef;

/// What `momentum` accepts.
pub const MOMENTUM_EXPECTED: &str = "a number in [0, 1]";
/// What `eps` accepts.
pub const EPS_EXPECTED: &str = "a finite number > 0";

/// Checks the running statistics' momentum and the variance's ε.
pub fn check_settings(momentum: f64, eps: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::value(
            "momentum",
            MOMENTUM_EXPECTED,
            fmt_num(&momentum),
        ));
    }
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::value("eps", EPS_EXPECTED, fmt_num(&eps)));
    }
    Ok(())
}

/// A batch-normalization layer over `features` columns (PyTorch's `BatchNorm1d`).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm<T> {
    /// Columns normalized.
    pub features: usize,
    /// γ, the scale (features,), 1 at first.
    pub weight: Vec<T>,
    /// β, the shift (features,), 0 at first.
    pub bias: Vec<T>,
    /// The running mean, then the running (unbiased) variance (features each), as a
    /// network keeps them (its block's state); see [`BatchNorm::running_mean`].
    pub running: Vec<T>,
    /// dL/dγ from the last backward.
    pub grad_weight: Vec<T>,
    /// dL/dβ from the last backward.
    pub grad_bias: Vec<T>,
    /// Weight of a batch's statistics in the running ones.
    pub momentum: f64,
    /// Added to the variance before its square root.
    pub eps: f64,
}

/// What a forward leaves for its backward.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved<T> {
    /// Rows of the forward's input.
    pub rows: usize,
    /// x̂, the normalized input (rows × features).
    pub xhat: Vec<T>,
    /// 1/√(σ² + ε) per feature: the batch's in training, the running one in evaluation.
    pub inv_std: Vec<f64>,
    /// Whether the forward normalized by the batch's statistics (training) or the running
    /// ones (evaluation, where they are constants the backward does not differentiate).
    pub training: bool,
}

impl<T: Float> BatchNorm<T> {
    /// A layer with γ = 1, β = 0, running mean 0 and running variance 1; an error for bad
    /// settings (see [`check_settings`]) or memory the allocator refuses.
    pub fn new(features: usize, momentum: f64, eps: f64) -> Result<Self> {
        check_settings(momentum, eps)?;
        let ones = |what| -> Result<Vec<T>> {
            let mut v = alloc::zeros(features, what)?;
            v.fill(T::ONE);
            Ok(v)
        };
        Ok(BatchNorm {
            features,
            weight: ones("batch-norm weights")?,
            bias: alloc::zeros(features, "batch-norm biases")?,
            running: {
                let mut r = alloc::zeros2(2, features, "running statistics")?;
                r[features..].fill(T::ONE);
                r
            },
            grad_weight: alloc::zeros(features, "weight gradients")?,
            grad_bias: alloc::zeros(features, "bias gradients")?,
            momentum,
            eps,
        })
    }

    /// The running mean used in evaluation, 0 at first.
    pub fn running_mean(&self) -> &[T] {
        &self.running[..self.features]
    }

    /// The running (unbiased) variance used in evaluation, 1 at first.
    pub fn running_var(&self) -> &[T] {
        &self.running[self.features..]
    }

    /// `out = γ·x̂ + β` for x (N, features). In training, x̂ uses the batch's mean and biased
    /// variance and the running statistics move towards the batch's (N ≥ 2: one row has no
    /// variance, and PyTorch refuses it too); in evaluation, x̂ uses the running statistics.
    pub fn forward(&mut self, x: MatRef<'_, T>, out: &mut [T], training: bool) -> Result<Saved<T>> {
        let c = self.features;
        check_matrix("x", x, None, c)?;
        let n = x.rows();
        check_buffer("out", out, n, c)?;
        if training && n < 2 {
            return Err(Error::shape(
                "x",
                format!(
                    "(N, {c}) with N >= 2 in training mode (a batch of one row has no \
                     variance to normalize by)"
                ),
                fmt_shape(&[n, c]),
            ));
        }
        let mut xhat = alloc::zeros2(n, c, "normalized inputs")?;
        let params = (&self.weight[..], &self.bias[..]);
        copy_rows(x, out);
        let inv_std = if training {
            let mut sums = alloc::zeros(c, "column sums")?;
            add_column_sums(out, c, &mut sums);
            let mean: Vec<f64> = sums.iter().map(|s| s / n as f64).collect();
            let mut squares = alloc::zeros(c, "column sums")?;
            add_centered_squares(out, c, &mean, &mut squares);
            let var: Vec<f64> = squares.iter().map(|s| s / n as f64).collect();
            let inv_std = inverse_std(&var, self.eps);
            normalize_rows(out, c, (&mean, &inv_std), params, Some(&mut xhat));
            update_running(
                self.running.split_at_mut(c),
                (&mean, &var),
                n,
                self.momentum,
            );
            inv_std
        } else {
            let mean: Vec<f64> = self.running_mean().iter().map(|v| v.to_f64()).collect();
            let var: Vec<f64> = self.running_var().iter().map(|v| v.to_f64()).collect();
            let inv_std = inverse_std(&var, self.eps);
            // x̂ for the backward pass; the output itself comes from the evaluation kernel,
            // so that it is bit for bit what a network's prediction computes.
            normalize_rows(out, c, (&mean, &inv_std), params, Some(&mut xhat));
            copy_rows(x, out);
            let running = self.running.split_at(c);
            normalize_eval_rows(out, c, running, self.eps, params);
            inv_std
        };
        Ok(Saved {
            rows: n,
            xhat,
            inv_std,
            training,
        })
    }

    /// Fills `grad_weight` (Σ dy·x̂) and `grad_bias` (Σ dy) and writes dL/dx into `dx`, from
    /// the upstream gradient `dy` (N, features) and what the forward `saved`.
    pub fn backward(&mut self, saved: &Saved<T>, dy: MatRef<'_, T>, dx: &mut [T]) -> Result<()> {
        let c = self.features;
        check_matrix("dout", dy, Some(saved.rows), c)?;
        check_buffer("dx", dx, saved.rows, c)?;
        copy_rows(dy, dx);
        let mut dbeta = alloc::zeros(c, "gradient sums")?;
        let mut dgamma = alloc::zeros(c, "gradient sums")?;
        add_grad_sums(dx, &saved.xhat, c, &mut dbeta, &mut dgamma);
        for j in 0..c {
            self.grad_bias[j] = T::from_f64(dbeta[j]);
            self.grad_weight[j] = T::from_f64(dgamma[j]);
        }
        if !saved.training {
            // In evaluation the statistics are constants, so dx = γ/√(var + ε)·dy: the
            // training formula without its two batch terms, i.e. with zero sums.
            dbeta.fill(0.0);
            dgamma.fill(0.0);
        }
        let gamma_inv = (&self.weight[..], &saved.inv_std[..]);
        backward_rows(dx, &saved.xhat, c, saved.rows, gamma_inv, (&dbeta, &dgamma));
        Ok(())
    }
}

/// Copies the rows of `m` into the row-major `out` (sized by the caller).
fn copy_rows<T: Float>(m: MatRef<'_, T>, out: &mut [T]) {
    for (i, row) in out.chunks_exact_mut(m.cols().max(1)).enumerate() {
        row.copy_from_slice(m.row(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(v: &[f64], c: usize, j: usize) -> Vec<f64> {
        v.iter().skip(j).step_by(c).copied().collect()
    }

    #[test]
    fn training_forward_normalizes_and_updates_the_running_statistics() {
        let (n, c) = (4, 2);
        let x = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 6.0, 60.0];
        let mut bn = BatchNorm::<f64>::new(c, 0.1, 1e-5).unwrap();
        bn.weight = vec![2.0, 1.0];
        bn.bias = vec![0.5, 0.0];
        let mut out = vec![0.0; n * c];
        let saved = bn.forward(MatRef::new(&x, n, c), &mut out, true).unwrap();
        for j in 0..c {
            let col = column(&x, c, j);
            let m = col.iter().sum::<f64>() / n as f64;
            let v = col.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / n as f64;
            for i in 0..n {
                let want = bn.weight[j] * (col[i] - m) / (v + 1e-5).sqrt() + bn.bias[j];
                assert!((out[i * c + j] - want).abs() < 1e-13);
            }
            assert!((bn.running_mean()[j] - 0.1 * m).abs() < 1e-14);
            let rv = 0.9 + 0.1 * v * n as f64 / (n - 1) as f64;
            assert!((bn.running_var()[j] - rv).abs() < 1e-13);
        }
        assert!(saved.training && saved.rows == n);
    }

    #[test]
    fn evaluation_uses_the_running_statistics_and_differentiates_through_them_as_constants() {
        let mut bn = BatchNorm::<f64>::new(1, 0.1, 1e-5).unwrap();
        bn.running = vec![2.0, 4.0];
        bn.weight = vec![3.0];
        let x = [2.0, 4.0];
        let mut out = [0.0; 2];
        let saved = bn.forward(MatRef::new(&x, 2, 1), &mut out, false).unwrap();
        let inv = 1.0 / (4.0f64 + 1e-5).sqrt();
        assert_eq!(out, [0.0, 3.0 * 2.0 * inv]);
        assert_eq!((bn.running_mean()[0], bn.running_var()[0]), (2.0, 4.0));
        let mut dx = [0.0; 2];
        bn.backward(&saved, MatRef::new(&[1.0, -2.0], 2, 1), &mut dx)
            .unwrap();
        assert_eq!(dx, [3.0 * inv, -6.0 * inv]);
        assert_eq!(bn.grad_bias, [-1.0]);
        assert!((bn.grad_weight[0] - (-2.0 * 2.0 * inv)).abs() < 1e-15);
    }

    #[test]
    fn bad_shapes_and_settings_are_errors() {
        let mut bn = BatchNorm::<f32>::new(3, 0.1, 1e-5).unwrap();
        let mut out = [0.0f32; 3];
        let err = bn
            .forward(MatRef::new(&[1.0; 3], 1, 3), &mut out, true)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x: expected shape (N, 3) with N >= 2")
        );
        assert!(
            bn.forward(MatRef::new(&[1.0; 3], 1, 3), &mut out, false)
                .is_ok()
        );
        let err = bn
            .forward(MatRef::new(&[1.0; 4], 2, 2), &mut [0.0; 4], true)
            .unwrap_err();
        assert_eq!(err.to_string(), "x: expected shape (N, 3), got (2, 2)");
        assert!(BatchNorm::<f32>::new(2, 1.5, 1e-5).is_err());
        assert!(BatchNorm::<f32>::new(2, 0.1, 0.0).is_err());
        assert!(BatchNorm::<f32>::new(2, f64::NAN, 1e-5).is_err());
    }
}
