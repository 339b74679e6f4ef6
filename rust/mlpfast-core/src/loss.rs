//! Losses: the value and the gradient with respect to the scores, in one pass per row.
//!
//! For scores s (N, C) and integer labels y:
//!
//! ```text
//! softmax  L_i = −log(e^{s_{y_i}} / Σ_j e^{s_j})            ds_j = p_j − [j = y_i]
//! svm      L_i = Σ_{j≠y_i} max(0, s_j − s_{y_i} + Δ)        ds_j = [margin_j > 0], ds_{y_i} = −count
//! ```
//!
//! For predictions (N, K) and real targets t: `mse = (p − t)²` per element, `dp = 2(p − t)`;
//! `half_squared_error = ½ Σ_k (p − t)²` per row, `dp = p − t` (scikit-learn's training loss).
//! For logits z (N, K) and 0/1 targets: `bce = max(z, 0) − z·t + log(1 + e^{−|z|})`, which is
//! sigmoid cross-entropy written so that it never overflows, `dz = σ(z) − t`.
//!
//! The robust and count losses, per element with d = p − t (PyTorch's `HuberLoss`, `L1Loss`
//! and `PoissonNLLLoss(log_input=True, full=False)`):
//!
//! ```text
//! huber    ½d² if |d| ≤ δ, else δ(|d| − ½δ)                dp = d, else δ·sign(d)
//! mae      |d|                                              dp = sign(d) (0 at d = 0)
//! poisson  e^f − t·f   (f the log of the predicted mean)    df = e^f − t;  predict gives e^f
//! ```
//!
//! `half_poisson_deviance` is scikit-learn's Poisson loss for `MLPRegressor`: the same
//! gradient, plus the constant `t·ln t − t` in the value (half the Poisson deviance, 0 at a
//! perfect fit), summed over a row's outputs and averaged over rows.
//!
//! The loss is the mean over the N rows (summing the K outputs of a row), except MSE, huber,
//! mae and poisson, which are means over all N·K elements; the gradient is that of the mean.
//! With per-row weights w (scikit-learn's and Keras' `sample_weight`) it is the weighted mean
//! `Σ w_i L_i / Σ w_i` (÷ K for the elementwise losses): weights of 1 give the plain mean's
//! bits, and weight 2 counts a row as if it were there twice. Softmax subtracts the row
//! maximum before exponentiating, so no score overflows.

use crate::activation::sigmoid_given;
use crate::error::{Error, Result, fmt_shape};
use crate::float::{Float, all_finite};
use crate::matrix::MatRef;

/// A loss function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Softmax cross-entropy over C classes.
    Softmax,
    /// Multiclass SVM (hinge) loss with the given margin Δ.
    Svm {
        /// Δ, the margin the correct class must win by.
        margin: f64,
    },
    /// Mean squared error.
    Mse,
    /// Half the squared error summed over a row's outputs, mean over rows (scikit-learn's
    /// squared loss for training: its gradient is `p − t` per row).
    HalfSquared,
    /// Sigmoid (binary) cross-entropy on logits.
    Bce,
    /// Huber loss with threshold δ (PyTorch's `HuberLoss`; δ = 1 by name).
    Huber {
        /// δ > 0, where the quadratic part meets the linear one.
        delta: f64,
    },
    /// Mean absolute error (PyTorch's `L1Loss`).
    Mae,
    /// Poisson negative log-likelihood with a log link: the scores are log means.
    Poisson,
    /// Half the Poisson deviance with a log link, summed over a row's outputs (scikit-learn's
    /// `MLPRegressor(loss="poisson")`).
    HalfPoisson,
}

/// The names [`Loss::from_name`] accepts.
pub const LOSS_NAMES: &str =
    "softmax, svm, mse, bce, half_squared_error, huber, mae, poisson, half_poisson_deviance";

/// What the scores are compared with.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a, T> {
    /// One class index per row (softmax, svm).
    Classes(&'a [u32]),
    /// A value per score (mse: real numbers, bce: 0 or 1).
    Values(MatRef<'a, T>),
}

impl<T: Copy> Targets<'_, T> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Targets::Classes(y) => y.len(),
            Targets::Values(v) => v.rows(),
        }
    }
}

/// A loss needs at least one column: its mean over none is 0/0, and no label has a class.
pub fn check_columns(arg: &str, cols: usize) -> Result<()> {
    if cols == 0 {
        return Err(Error::value(arg, "at least one column", "0 columns"));
    }
    Ok(())
}

impl Loss {
    /// Parses a name from [`LOSS_NAMES`] (svm with margin 1).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "softmax" => Loss::Softmax,
            "svm" => Loss::Svm { margin: 1.0 },
            "mse" => Loss::Mse,
            "bce" => Loss::Bce,
            "half_squared_error" => Loss::HalfSquared,
            "huber" => Loss::Huber { delta: 1.0 },
            "mae" => Loss::Mae,
            "poisson" => Loss::Poisson,
            "half_poisson_deviance" => Loss::HalfPoisson,
            _ => {
                return Err(Error::value(
                    "loss",
                    format!("one of {LOSS_NAMES}"),
                    format!("{name:?}"),
                ));
            }
        })
    }

    /// The name [`Loss::from_name`] accepts.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Softmax => "softmax",
            Loss::Svm { .. } => "svm",
            Loss::Mse => "mse",
            Loss::Bce => "bce",
            Loss::HalfSquared => "half_squared_error",
            Loss::Huber { .. } => "huber",
            Loss::Mae => "mae",
            Loss::Poisson => "poisson",
            Loss::HalfPoisson => "half_poisson_deviance",
        }
    }

    /// True for the losses of regression: real-valued targets, R² as the metric, and the
    /// scores (through [`Loss::predict_inplace`]) as the predictions.
    pub fn is_regression(self) -> bool {
        matches!(
            self,
            Loss::Mse
                | Loss::HalfSquared
                | Loss::Huber { .. }
                | Loss::Mae
                | Loss::Poisson
                | Loss::HalfPoisson
        )
    }

    /// True for the log-link count losses: scores are log means, targets counts (>= 0).
    pub fn is_log_link(self) -> bool {
        matches!(self, Loss::Poisson | Loss::HalfPoisson)
    }

    /// Turns a regression loss's scores into its predictions: e^f for poisson (its scores
    /// are log means), the scores themselves otherwise.
    pub fn predict_inplace<T: Float>(self, scores: &mut [T]) {
        if self.is_log_link() {
            crate::simd::wide(
                #[inline(always)]
                || scores.iter_mut().for_each(|v| *v = v.exp()),
            )
        }
    }

    /// True when the targets are class indices.
    pub fn takes_classes(self) -> bool {
        matches!(self, Loss::Softmax | Loss::Svm { .. })
    }

    /// What the summed loss of rows of K scores is divided by to give the mean: `mass` is
    /// the number of rows, or the sum of their weights.
    pub fn normalizer(self, mass: f64, cols: usize) -> f64 {
        match self {
            Loss::Mse | Loss::Huber { .. } | Loss::Mae | Loss::Poisson => mass * cols as f64,
            _ => mass,
        }
    }

    /// Checks that `targets` (argument `arg`) fit scores of shape (n, k): shapes, label range,
    /// 0/1 values, finite values.
    pub fn check_targets<T: Float>(
        self,
        arg: &str,
        n: usize,
        k: usize,
        targets: &Targets<'_, T>,
    ) -> Result<()> {
        match (self.takes_classes(), targets) {
            (true, Targets::Classes(y)) => {
                if y.len() != n {
                    return Err(Error::shape(arg, fmt_shape(&[n]), fmt_shape(&[y.len()])));
                }
                check_labels(arg, y, k)
            }
            (false, Targets::Values(t)) => {
                if t.rows() != n || t.cols() != k {
                    return Err(Error::shape(
                        arg,
                        fmt_shape(&[n, k]),
                        fmt_shape(&[t.rows(), t.cols()]),
                    ));
                }
                if self == Loss::Bce {
                    check_binary(arg, *t)?;
                }
                if self.is_log_link() {
                    check_counts(arg, *t)?;
                }
                check_finite(arg, *t)
            }
            (true, _) => Err(Error::value(
                arg,
                format!("integer class labels for the {} loss", self.name()),
                "real-valued targets",
            )),
            (false, _) => Err(Error::value(
                arg,
                format!("real-valued targets for the {} loss", self.name()),
                "class labels",
            )),
        }
    }

    /// Mean loss of `scores` against `targets` (weighted by `weights`, one per row, when
    /// given); writes its gradient into `grad` (same shape as `scores`) when given.
    pub fn mean_and_grad<T: Float>(
        self,
        scores: MatRef<'_, T>,
        targets: &Targets<'_, T>,
        weights: Option<&[T]>,
        grad: Option<&mut [T]>,
    ) -> Result<f64> {
        check_columns("scores", scores.cols())?;
        self.check_targets("y", scores.rows(), scores.cols(), targets)?;
        check_finite("scores", scores)?;
        if scores.rows() == 0 {
            return Err(Error::value("scores", "at least one row", "0 rows"));
        }
        if let Some(w) = weights {
            check_weights("sample_weight", w, scores.rows())?;
        }
        let norm = self.normalizer(mass(weights, scores.rows()), scores.cols());
        let sum = self.sum_rows(scores, targets, weights, grad, T::from_f64(1.0 / norm));
        Ok(sum / norm)
    }

    /// The loss summed over rows, each times its weight when `weights` are given (no
    /// validation: the training loop checks once, up front). When `grad` is given it receives
    /// `scale ·` the gradient of that sum.
    pub(crate) fn sum_rows<T: Float>(
        self,
        scores: MatRef<'_, T>,
        targets: &Targets<'_, T>,
        weights: Option<&[T]>,
        grad: Option<&mut [T]>,
        scale: T,
    ) -> f64 {
        crate::simd::wide(
            #[inline(always)]
            || self.sum_rows_narrow(scores, targets, weights, grad, scale),
        )
    }

    #[inline(always)]
    fn sum_rows_narrow<T: Float>(
        self,
        scores: MatRef<'_, T>,
        targets: &Targets<'_, T>,
        weights: Option<&[T]>,
        mut grad: Option<&mut [T]>,
        scale: T,
    ) -> f64 {
        let k = scores.cols();
        let mut total = 0.0f64;
        for i in 0..scores.rows() {
            let s = scores.row(i);
            let g = grad.as_deref_mut().map(|g| &mut g[i * k..(i + 1) * k]);
            // A row's weight scales its gradient and its loss (by exactly 1 when unweighted).
            let (weight, scale) = match weights {
                Some(w) => (w[i].to_f64(), scale * w[i]),
                None => (1.0, scale),
            };
            total += weight
                * match (self, targets) {
                    (Loss::Softmax, Targets::Classes(y)) => softmax_row(s, y[i] as usize, g, scale),
                    (Loss::Svm { margin }, Targets::Classes(y)) => {
                        svm_row(s, y[i] as usize, T::from_f64(margin), g, scale)
                    }
                    (Loss::Mse, Targets::Values(t)) => mse_row(s, t.row(i), g, scale + scale),
                    (Loss::HalfSquared, Targets::Values(t)) => 0.5 * mse_row(s, t.row(i), g, scale),
                    (Loss::Bce, Targets::Values(t)) => bce_row(s, t.row(i), g, scale),
                    (Loss::Huber { delta }, Targets::Values(t)) => {
                        huber_row(s, t.row(i), T::from_f64(delta), g, scale)
                    }
                    (Loss::Mae, Targets::Values(t)) => mae_row(s, t.row(i), g, scale),
                    (Loss::Poisson, Targets::Values(t)) => poisson_row(s, t.row(i), g, scale),
                    (Loss::HalfPoisson, Targets::Values(t)) => {
                        half_poisson_row(s, t.row(i), g, scale)
                    }
                    _ => unreachable!("targets are checked against the loss before training"),
                };
        }
        total
    }
}

/// Turns each row of a row-major (rows × `cols`) score matrix into softmax probabilities.
pub fn softmax_rows<T: Float>(m: &mut [T], cols: usize) {
    for row in m.chunks_exact_mut(cols.max(1)) {
        let max = row.iter().fold(row[0], |a, &v| a.max(v));
        let mut sum = T::ZERO;
        row.iter_mut().for_each(|v| {
            *v = (*v - max).exp();
            sum += *v;
        });
        let inv = T::ONE / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Checks class labels lie in [0, classes).
pub fn check_labels(arg: &str, y: &[u32], classes: usize) -> Result<()> {
    if let Some(&bad) = y.iter().find(|&&v| v as usize >= classes) {
        return Err(Error::value(
            arg,
            format!("class labels in [0, {}]", classes.saturating_sub(1)),
            bad,
        ));
    }
    Ok(())
}

/// Σ of the weights (in order, in f64), or the row count when unweighted: what a weighted
/// mean divides by.
pub fn mass<T: Float>(weights: Option<&[T]>, rows: usize) -> f64 {
    match weights {
        Some(w) => w.iter().map(|v| v.to_f64()).sum(),
        None => rows as f64,
    }
}

/// Checks per-row weights: one per row, finite, non-negative, not all zero.
pub fn check_weights<T: Float>(arg: &str, w: &[T], rows: usize) -> Result<()> {
    if w.len() != rows {
        return Err(Error::shape(arg, fmt_shape(&[rows]), fmt_shape(&[w.len()])));
    }
    if let Some(&bad) = w.iter().find(|v| !v.is_finite() || **v < T::ZERO) {
        return Err(Error::value(arg, "finite values >= 0", bad));
    }
    if w.iter().all(|&v| v == T::ZERO) {
        return Err(Error::value(arg, "at least one weight > 0", "all zeros"));
    }
    Ok(())
}

/// Checks a matrix holds no NaN or infinity.
pub fn check_finite<T: Float>(arg: &str, m: MatRef<'_, T>) -> Result<()> {
    let finite = match m.as_row_major() {
        Some(all) => all_finite(all),
        None => (0..m.rows()).all(|i| (0..m.cols()).all(|j| m.at(i, j).is_finite())),
    };
    if finite {
        Ok(())
    } else {
        Err(Error::value(arg, "finite values", "NaN or infinity"))
    }
}

/// Checks every target is exactly 0 or 1.
pub fn check_binary<T: Float>(arg: &str, t: MatRef<'_, T>) -> Result<()> {
    for i in 0..t.rows() {
        if let Some(&bad) = t.row(i).iter().find(|&&v| v != T::ZERO && v != T::ONE) {
            return Err(Error::value(arg, "binary targets (0 or 1)", bad));
        }
    }
    Ok(())
}

#[inline(always)]
fn softmax_row<T: Float>(s: &[T], y: usize, grad: Option<&mut [T]>, scale: T) -> f64 {
    let max = s.iter().fold(s[0], |m, &v| m.max(v));
    let loss_of = |sum: T| (sum.ln() - (s[y] - max)).to_f64();
    match grad {
        Some(g) => {
            // e^(s - max) once, into the gradient row; then normalize in place.
            g.iter_mut().zip(s).for_each(|(g, &v)| *g = (v - max).exp());
            let sum: T = g.iter().copied().sum();
            let inv = scale / sum;
            g.iter_mut().for_each(|g| *g *= inv);
            g[y] -= scale;
            loss_of(sum)
        }
        None => loss_of(s.iter().map(|&v| (v - max).exp()).sum()),
    }
}

#[inline(always)]
fn svm_row<T: Float>(s: &[T], y: usize, margin: T, grad: Option<&mut [T]>, scale: T) -> f64 {
    let sy = s[y];
    let mut loss = T::ZERO;
    let mut active = T::ZERO;
    match grad {
        Some(g) => {
            for (j, (g, &v)) in g.iter_mut().zip(s).enumerate() {
                let m = v - sy + margin;
                *g = if j != y && m > T::ZERO {
                    loss += m;
                    active += T::ONE;
                    scale
                } else {
                    T::ZERO
                };
            }
            g[y] = -active * scale;
        }
        None => {
            for (j, &v) in s.iter().enumerate() {
                let m = v - sy + margin;
                if j != y && m > T::ZERO {
                    loss += m;
                }
            }
        }
    }
    loss.to_f64()
}

#[inline(always)]
/// Σ (p − t)² over the row; gradient `scale · (p − t)`.
fn mse_row<T: Float>(p: &[T], t: &[T], grad: Option<&mut [T]>, scale: T) -> f64 {
    match grad {
        Some(g) => p
            .iter()
            .zip(t)
            .zip(g.iter_mut())
            .map(|((&p, &t), g)| {
                let d = p - t;
                *g = scale * d;
                (d * d).to_f64()
            })
            .sum(),
        None => p
            .iter()
            .zip(t)
            .map(|(&p, &t)| ((p - t) * (p - t)).to_f64())
            .sum(),
    }
}

#[inline(always)]
fn bce_row<T: Float>(z: &[T], t: &[T], grad: Option<&mut [T]>, scale: T) -> f64 {
    let mut loss = 0.0f64;
    let mut g = grad;
    for (j, (&z, &t)) in z.iter().zip(t).enumerate() {
        let e = (-z.abs()).exp();
        loss += (z.max(T::ZERO) - z * t + e.ln_1p()).to_f64();
        if let Some(g) = g.as_deref_mut() {
            g[j] = (sigmoid_given(z, e) - t) * scale;
        }
    }
    loss
}

/// Σ over the row of a loss that treats each output alone: `f(p, t)` gives an element's
/// value and slope, and `grad` receives `scale · slope`.
#[inline(always)]
fn elementwise_row<T: Float>(
    p: &[T],
    t: &[T],
    grad: Option<&mut [T]>,
    scale: T,
    f: impl Fn(T, T) -> (T, T),
) -> f64 {
    let mut loss = 0.0f64;
    match grad {
        Some(g) => {
            for ((&p, &t), g) in p.iter().zip(t).zip(g.iter_mut()) {
                let (value, slope) = f(p, t);
                loss += value.to_f64();
                *g = scale * slope;
            }
        }
        None => p
            .iter()
            .zip(t)
            .for_each(|(&p, &t)| loss += f(p, t).0.to_f64()),
    }
    loss
}

/// Σ over the row of ½d² (|d| ≤ δ) or δ(|d| − ½δ), d = p − t; gradient `scale ·` d clipped
/// to [−δ, δ].
#[inline(always)]
fn huber_row<T: Float>(p: &[T], t: &[T], delta: T, grad: Option<&mut [T]>, scale: T) -> f64 {
    let half = T::from_f64(0.5);
    elementwise_row(p, t, grad, scale, |p, t| {
        let d = p - t;
        let a = d.abs();
        if a <= delta {
            (half * d * d, d)
        } else {
            (
                delta * (a - half * delta),
                if d > T::ZERO { delta } else { -delta },
            )
        }
    })
}

/// Σ |p − t| over the row; gradient `scale · sign(p − t)`, 0 where p = t (as PyTorch).
#[inline(always)]
fn mae_row<T: Float>(p: &[T], t: &[T], grad: Option<&mut [T]>, scale: T) -> f64 {
    elementwise_row(p, t, grad, scale, |p, t| {
        let d = p - t;
        let sign = if d > T::ZERO {
            T::ONE
        } else if d < T::ZERO {
            -T::ONE
        } else {
            T::ZERO
        };
        (d.abs(), sign)
    })
}

/// Σ e^f − t·f over the row (f the log mean); gradient `scale · (e^f − t)`.
#[inline(always)]
fn poisson_row<T: Float>(f: &[T], t: &[T], grad: Option<&mut [T]>, scale: T) -> f64 {
    elementwise_row(f, t, grad, scale, |f, t| {
        let e = f.exp();
        (e - t * f, e - t)
    })
}

/// Σ e^f − t·f + t·ln t − t over the row (half the Poisson deviance; t·ln t is 0 at t = 0);
/// gradient `scale · (e^f − t)`.
#[inline(always)]
fn half_poisson_row<T: Float>(f: &[T], t: &[T], grad: Option<&mut [T]>, scale: T) -> f64 {
    elementwise_row(f, t, grad, scale, |f, t| {
        let e = f.exp();
        let t_ln_t = if t > T::ZERO { t * t.ln() } else { T::ZERO };
        (e - t * f + (t_ln_t - t), e - t)
    })
}

/// Checks that the targets of a count loss are ≥ 0.
pub fn check_counts<T: Float>(arg: &str, t: MatRef<'_, T>) -> Result<()> {
    for i in 0..t.rows() {
        if let Some(&bad) = t.row(i).iter().find(|&&v| v < T::ZERO) {
            return Err(Error::value(arg, "targets >= 0 for the poisson loss", bad));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_grad(
        loss: Loss,
        s: &[f64],
        n: usize,
        k: usize,
        targets: &Targets<'_, f64>,
        weights: Option<&[f64]>,
    ) -> Vec<f64> {
        let h = 1e-6;
        (0..s.len())
            .map(|i| {
                let mut p = s.to_vec();
                p[i] += h;
                let mut m = s.to_vec();
                m[i] -= h;
                let fp = loss
                    .mean_and_grad(MatRef::new(&p, n, k), targets, weights, None)
                    .unwrap();
                let fm = loss
                    .mean_and_grad(MatRef::new(&m, n, k), targets, weights, None)
                    .unwrap();
                (fp - fm) / (2.0 * h)
            })
            .collect()
    }

    #[test]
    fn every_loss_gradient_matches_centered_difference() {
        let s: Vec<f64> = (0..12)
            .map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.37 + 0.01 * i as f64)
            .collect();
        let y = [0u32, 2, 1, 3];
        let t: Vec<f64> = (0..12).map(|i| (i as f64 * 0.3).cos()).collect();
        let b: Vec<f64> = (0..12).map(|i| (i % 2) as f64).collect();
        let counts: Vec<f64> = (0..12).map(|i| (i % 4) as f64).collect();
        let cases: [(Loss, Targets<'_, f64>); 7] = [
            (Loss::Softmax, Targets::Classes(&y[..3])),
            (Loss::Svm { margin: 1.0 }, Targets::Classes(&y[..3])),
            (Loss::Mse, Targets::Values(MatRef::new(&t, 3, 4))),
            (Loss::HalfSquared, Targets::Values(MatRef::new(&t, 3, 4))),
            (Loss::Bce, Targets::Values(MatRef::new(&b, 3, 4))),
            (Loss::Poisson, Targets::Values(MatRef::new(&counts, 3, 4))),
            (
                Loss::HalfPoisson,
                Targets::Values(MatRef::new(&counts, 3, 4)),
            ),
        ];
        let w = [0.5, 0.0, 2.25];
        for (loss, targets) in cases {
            for weights in [None, Some(&w[..])] {
                let mut g = vec![0.0; 12];
                let s = MatRef::new(&s, 3, 4);
                loss.mean_and_grad(s, &targets, weights, Some(&mut g))
                    .unwrap();
                let num = numeric_grad(loss, s.as_row_major().unwrap(), 3, 4, &targets, weights);
                for (a, b) in g.iter().zip(&num) {
                    assert!((a - b).abs() < 1e-8, "{loss:?} {weights:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn softmax_is_stable_and_uniform_scores_give_log_c() {
        let s = [1000.0f64, 1000.0, 1000.0];
        let l = Loss::Softmax
            .mean_and_grad(MatRef::new(&s, 1, 3), &Targets::Classes(&[1]), None, None)
            .unwrap();
        assert!((l - 3f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn svm_matches_a_hand_computed_row() {
        // s = [3.2, 5.1, -1.7], y = 0: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9
        let s = [3.2f64, 5.1, -1.7];
        let mut g = [0.0; 3];
        let l = Loss::Svm { margin: 1.0 }
            .mean_and_grad(
                MatRef::new(&s, 1, 3),
                &Targets::Classes(&[0]),
                None,
                Some(&mut g),
            )
            .unwrap();
        assert!((l - 2.9).abs() < 1e-12);
        assert_eq!(g, [-1.0, 1.0, 0.0]);
    }

    #[test]
    fn bad_targets_are_errors() {
        let s = [0.0f32; 6];
        let sm = MatRef::new(&s, 2, 3);
        let e = Loss::Softmax
            .mean_and_grad(sm, &Targets::Classes(&[0, 3]), None, None)
            .unwrap_err();
        assert_eq!(e.to_string(), "y: expected class labels in [0, 2], got 3");
        let e = Loss::Softmax
            .mean_and_grad(sm, &Targets::Classes(&[0]), None, None)
            .unwrap_err();
        assert_eq!(e.to_string(), "y: expected shape (2,), got (1,)");
        let t = [0.0f32, 1.0, 0.5, 0.0, 1.0, 1.0];
        let e = Loss::Bce
            .mean_and_grad(sm, &Targets::Values(MatRef::new(&t, 2, 3)), None, None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "y: expected binary targets (0 or 1), got 0.5"
        );
    }
}
