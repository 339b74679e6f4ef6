//! The training loop: shuffle, gather a batch, forward, loss, backward, optimizer step.
//!
//! One call trains for all epochs. Every per-batch buffer is allocated once, before the first
//! step; when the data is not shuffled the batches are views of `x`, not copies. The epoch
//! loss is the mean over all samples of each batch's loss (plus the L2 term when weight decay
//! is on), i.e. batch losses weighted by batch size. A [`Monitor`] hears about every step
//! and every epoch and may stop training between steps, leaving the weights of the last
//! completed step.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::{Loss, Targets};
use crate::matrix::MatRef;
use crate::network::{Params, ParamsMut, Spec};
use crate::optim::OptimState;
use crate::rng::Rng;
use crate::step::{Batch, Gather, Rows, Trainer};
use crate::team::{Team, with_team};
use crate::threads;

/// The settings of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Rows per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Learning rate of the first epoch.
    pub lr: f64,
    /// L2 penalty λ: adds ½λ‖W‖² over weights (not biases) to the loss.
    pub weight_decay: f64,
    /// Factor applied to the learning rate after every epoch.
    pub lr_decay: f64,
    /// Reshuffle the rows before every epoch.
    pub shuffle: bool,
    /// Seed of the shuffling.
    pub seed: u64,
}

impl FitConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size < 1 {
            return Err(Error::value(
                "batch_size",
                "an integer >= 1",
                self.batch_size,
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::value("lr", "a positive finite number", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::value(
                "weight_decay",
                "a finite number >= 0",
                self.weight_decay,
            ));
        }
        if !(self.lr_decay.is_finite() && self.lr_decay > 0.0) {
            return Err(Error::value(
                "lr_decay",
                "a positive finite number",
                self.lr_decay,
            ));
        }
        Ok(())
    }
}

/// What one epoch achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Epochs requested.
    pub epochs: usize,
    /// Mean training loss of the epoch.
    pub loss: f64,
    /// Mean validation loss, when validation data was given.
    pub val_loss: Option<f64>,
    /// Validation accuracy (R² for MSE), when validation data was given.
    pub val_metric: Option<f64>,
    /// Training samples seen this epoch.
    pub samples: usize,
    /// Seconds since training started.
    pub elapsed: f64,
}

/// Hears about training as it goes; returning `false` stops it.
pub trait Monitor {
    /// After every optimizer step. `false` stops training with [`Error::Interrupted`].
    fn after_step(&mut self) -> bool {
        true
    }
    /// After every epoch. `false` ends training normally, keeping the history so far.
    fn after_epoch(&mut self, _report: &EpochReport) -> bool {
        true
    }
}

/// A monitor that never stops training.
pub struct Silent;
impl Monitor for Silent {}

/// Per-epoch figures of a training run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Mean training loss per epoch.
    pub loss: Vec<f64>,
    /// Validation loss per epoch (empty without validation data).
    pub val_loss: Vec<f64>,
    /// Validation accuracy or R² per epoch (empty without validation data).
    pub val_metric: Vec<f64>,
}

/// The metric of a loss: accuracy for classification (for several 0/1 outputs, the share of
/// rows with every output right), R² averaged over outputs for MSE.
pub fn score<T: Float>(loss: Loss, scores: MatRef<'_, T>, targets: &Targets<'_, T>) -> f64 {
    let n = scores.rows();
    if n == 0 {
        return f64::NAN;
    }
    match (loss, targets) {
        (Loss::Mse, Targets::Values(t)) => r2_score(scores, *t),
        (Loss::Bce, Targets::Values(t)) => {
            let right = (0..n)
                .filter(|&i| {
                    scores
                        .row(i)
                        .iter()
                        .zip(t.row(i))
                        .all(|(&z, &t)| (z > T::ZERO) == (t == T::ONE))
                })
                .count();
            right as f64 / n as f64
        }
        (_, Targets::Classes(y)) => {
            let right = (0..n)
                .filter(|&i| argmax(scores.row(i)) == y[i] as usize)
                .count();
            right as f64 / n as f64
        }
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

/// Coefficient of determination, averaged over columns; a constant column scores 1 when
/// predicted exactly and 0 otherwise.
fn r2_score<T: Float>(pred: MatRef<'_, T>, truth: MatRef<'_, T>) -> f64 {
    let (n, k) = (pred.rows(), pred.cols());
    let mut total = 0.0;
    for j in 0..k {
        let mean = (0..n).map(|i| truth.at(i, j).to_f64()).sum::<f64>() / n as f64;
        let (mut res, mut tot) = (0.0, 0.0);
        for i in 0..n {
            let t = truth.at(i, j).to_f64();
            res += (t - pred.at(i, j).to_f64()).powi(2);
            tot += (t - mean).powi(2);
        }
        total += match (tot == 0.0, res == 0.0) {
            (false, _) => 1.0 - res / tot,
            (true, true) => 1.0,
            (true, false) => 0.0,
        };
    }
    total / k as f64
}

/// Mean loss and [`score`] of the network on `x` against validated `targets`.
pub fn evaluate<T: Float>(
    spec: &Spec,
    params: &[impl Params<T> + Sync],
    x: MatRef<'_, T>,
    targets: &Targets<'_, T>,
) -> Result<(f64, f64)> {
    let k = spec.outputs();
    let mut scores = vec![T::ZERO; x.rows() * k];
    spec.predict_scores(params, x, &mut scores)?;
    let s = MatRef::new(&scores, x.rows(), k);
    let norm = spec.loss().normalizer(x.rows(), k);
    let sum = spec.loss().sum_rows(s, targets, None, T::ONE);
    Ok((sum / norm as f64, score(spec.loss(), s, targets)))
}

/// Trains the network whose parameters are `params` on (`x`, `y`), in place.
///
/// Everything is validated before the first step: on error the parameters are untouched.
#[allow(clippy::too_many_arguments)]
pub fn fit<T: Float>(
    spec: &Spec,
    params: &mut [ParamsMut<'_, T>],
    x: MatRef<'_, T>,
    y: &Targets<'_, T>,
    validation: Option<(MatRef<'_, T>, Targets<'_, T>)>,
    cfg: &FitConfig,
    optim: &mut OptimState<T>,
    monitor: &mut (dyn Monitor + Send),
) -> Result<History> {
    cfg.validate()?;
    optim.kind().validate()?;
    spec.check_params(params)?;
    if !optim.fits(params) {
        return Err(Error::State(
            "optimizer state does not match the parameters".into(),
        ));
    }
    spec.check_input("X", x)?;
    let (n, k) = (x.rows(), spec.outputs());
    spec.loss().check_targets("y", n, k, y)?;
    if let Some((xv, yv)) = &validation {
        spec.check_input("validation_data X", *xv)?;
        spec.loss()
            .check_targets("validation_data y", xv.rows(), k, yv)?;
    }

    with_team(threads::num_threads(), |team| {
        train_loop(team, spec, params, x, y, validation, cfg, optim, monitor)
    })
}

#[allow(clippy::too_many_arguments)]
fn train_loop<T: Float>(
    team: &Team<'_>,
    spec: &Spec,
    params: &mut [ParamsMut<'_, T>],
    x: MatRef<'_, T>,
    y: &Targets<'_, T>,
    validation: Option<(MatRef<'_, T>, Targets<'_, T>)>,
    cfg: &FitConfig,
    optim: &mut OptimState<T>,
    monitor: &mut (dyn Monitor + Send),
) -> Result<History> {
    let n = x.rows();
    let b = cfg.batch_size.min(n);
    let gather = match (cfg.shuffle, y) {
        (false, _) => Gather::No,
        (true, Targets::Classes(_)) => Gather::Classes,
        (true, Targets::Values(_)) => Gather::Values,
    };
    let mut trainer = Trainer::new(spec, b, gather);
    let mut rng = Rng::new(cfg.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut lr = cfg.lr;
    let mut history = History::default();
    let start = Instant::now();

    for epoch in 1..=cfg.epochs {
        if cfg.shuffle {
            rng.shuffle(&mut order);
        }
        let mut epoch_loss = 0.0;
        for lo in (0..n).step_by(b) {
            let hi = (lo + b).min(n);
            let (rows, next) = if cfg.shuffle {
                (Rows::Picked(&order[lo..hi]), &order[hi..(hi + b).min(n)])
            } else {
                (Rows::Range(lo, hi), &order[..0])
            };
            let batch = Batch { x, y, rows, next };
            let loss = trainer.step(team, spec, params, batch, optim, lr, cfg.weight_decay);
            epoch_loss += loss * (hi - lo) as f64;
            if !monitor.after_step() {
                return Err(Error::Interrupted);
            }
        }
        lr *= cfg.lr_decay;
        let mut report = EpochReport {
            epoch,
            epochs: cfg.epochs,
            loss: epoch_loss / n as f64,
            val_loss: None,
            val_metric: None,
            samples: n,
            elapsed: 0.0,
        };
        history.loss.push(report.loss);
        if let Some((xv, yv)) = &validation {
            let (vl, vm) = evaluate(spec, params, *xv, yv)?;
            history.val_loss.push(vl);
            history.val_metric.push(vm);
            report.val_loss = Some(vl);
            report.val_metric = Some(vm);
        }
        report.elapsed = start.elapsed().as_secs_f64();
        if !monitor.after_epoch(&report) {
            break;
        }
    }
    Ok(history)
}
