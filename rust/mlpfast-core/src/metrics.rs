//! How good a network's scores are: accuracy for classification, R² for regression.
//!
//! ```text
//! accuracy = share of rows whose largest score is the true class
//!            (sigmoid outputs: whose every output is on the right side of 0)
//! R²       = mean over outputs of 1 − Σ(t − p)² / Σ(t − mean t)²
//! ```
//!
//! With per-row weights w, as scikit-learn's `sample_weight`: accuracy is Σ w·right / Σ w, and
//! R² weighs every squared term (and the mean) by its row's weight.

use crate::float::Float;
use crate::loss::{Loss, Targets};
use crate::matrix::MatRef;

/// The metric of a loss: accuracy for classification (for several 0/1 outputs, the share of
/// rows with every output right), R² averaged over outputs for regression (of the predicted
/// means e^f for poisson).
pub fn score<T: Float>(
    loss: Loss,
    scores: MatRef<'_, T>,
    targets: &Targets<'_, T>,
    weights: Option<&[T]>,
) -> f64 {
    let n = scores.rows();
    if n == 0 {
        return f64::NAN;
    }
    let weight = |i: usize| weights.map_or(1.0, |w| w[i].to_f64());
    // The weighted share of rows that `right` says are right.
    let share = |right: &dyn Fn(usize) -> bool| {
        let hits: f64 = (0..n).filter(|&i| right(i)).map(weight).sum();
        hits / crate::loss::mass(weights, n)
    };
    match (loss, targets) {
        (l, Targets::Values(t)) if l.is_log_link() => r2_score(scores, *t, weights, |f| f.exp()),
        (l, Targets::Values(t)) if l.is_regression() => r2_score(scores, *t, weights, |p| p),
        (Loss::Bce, Targets::Values(t)) => share(&|i| {
            scores
                .row(i)
                .iter()
                .zip(t.row(i))
                .all(|(&z, &t)| (z > T::ZERO) == (t == T::ONE))
        }),
        (_, Targets::Classes(y)) => share(&|i| argmax(scores.row(i)) == y[i] as usize),
        _ => f64::NAN,
    }
}

/// Index of the first largest value.
pub fn argmax<T: Float>(row: &[T]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] {
            best = j;
        }
    }
    best
}

/// Coefficient of determination of the predictions `predict(score)`, averaged over columns;
/// a constant column scores 1 when predicted exactly and 0 otherwise.
fn r2_score<T: Float>(
    pred: MatRef<'_, T>,
    truth: MatRef<'_, T>,
    weights: Option<&[T]>,
    predict: impl Fn(T) -> T,
) -> f64 {
    let (n, k) = (pred.rows(), pred.cols());
    let weight = |i: usize| weights.map_or(1.0, |w| w[i].to_f64());
    let mass = crate::loss::mass(weights, n);
    let mut total = 0.0;
    for j in 0..k {
        let mean = match weights {
            Some(_) => {
                (0..n)
                    .map(|i| weight(i) * truth.at(i, j).to_f64())
                    .sum::<f64>()
                    / mass
            }
            None => (0..n).map(|i| truth.at(i, j).to_f64()).sum::<f64>() / n as f64,
        };
        let (mut res, mut tot) = (0.0, 0.0);
        for i in 0..n {
            let t = truth.at(i, j).to_f64();
            res += weight(i) * (t - predict(pred.at(i, j)).to_f64()).powi(2);
            tot += weight(i) * (t - mean).powi(2);
        }
        total += match (tot == 0.0, res == 0.0) {
            (false, _) => 1.0 - res / tot,
            (true, true) => 1.0,
            (true, false) => 0.0,
        };
    }
    total / k as f64
}
