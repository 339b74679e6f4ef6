//! The training loop: shuffle, gather a batch, forward, loss, backward, optimizer step.
//!
//! One call trains for all epochs. Every per-batch buffer is allocated once, before the first
//! step; when the data is not shuffled the batches are views of `x`, not copies. The epoch
//! loss is the mean over all samples of each batch's loss (plus the L2 term when weight decay
//! is on), i.e. batch losses weighted by batch size. A [`Monitor`] hears about every step
//! and every epoch and may stop training between steps, leaving the weights of the last
//! completed step.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::Targets;
use crate::matrix::MatRef;
use crate::metrics::score;
use crate::network::{Params, ParamsMut, Spec, check_values, non_finite};
use crate::optim::OptimState;
use crate::pace::{Pacer, helpers_worth};
use crate::rng::Rng;
use crate::step::{Batch, Gather, Rows, Stepped, Trainer, shard_count, step_flops};
use crate::team::{Kind, Team};

/// How the learning rate moves between epochs (besides `lr_decay`), as scikit-learn's
/// `learning_rate` option.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Schedule {
    /// Unchanged.
    #[default]
    Constant,
    /// After every epoch, `lr = lr₀ / (t + 1)^power_t`, t the samples seen so far.
    InvScaling {
        /// The exponent.
        power_t: f64,
    },
    /// Divided by 5 each time the stopping rule fires, instead of stopping (until it falls
    /// to 1e-6 or below).
    Adaptive,
}

/// When training stops before its last epoch, as scikit-learn decides it: when the watched
/// figure has not improved by more than `tol` for more than `n_iter_no_change` epochs in a
/// row. The figure is the validation score (higher is better) when validation data is given,
/// the training loss otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopping {
    /// The improvement that counts.
    pub tol: f64,
    /// Epochs without improvement tolerated.
    pub n_iter_no_change: usize,
    /// With validation data: end with the weights of the best validation score.
    pub restore_best: bool,
}

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
    /// When true, `weight_decay` is scikit-learn's `alpha`: the penalty of a batch of n rows
    /// is ½(α/n)‖W‖².
    pub l2_per_sample: bool,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Early stopping, if any.
    pub stopping: Option<Stopping>,
    /// Samples seen before this run (for the inverse-scaling schedule).
    pub samples_seen: u64,
}

impl FitConfig {
    /// A configuration with the given essentials and everything else off.
    pub fn new(epochs: usize, batch_size: usize, lr: f64) -> Self {
        FitConfig {
            epochs,
            batch_size,
            lr,
            weight_decay: 0.0,
            lr_decay: 1.0,
            shuffle: true,
            seed: 0,
            l2_per_sample: false,
            schedule: Schedule::Constant,
            stopping: None,
            samples_seen: 0,
        }
    }

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
        if let Schedule::InvScaling { power_t } = self.schedule {
            if !power_t.is_finite() {
                return Err(Error::value("power_t", "a finite number", power_t));
            }
        }
        if let Some(st) = self.stopping {
            if !(st.tol.is_finite() && st.tol >= 0.0) {
                return Err(Error::value("tol", "a finite number >= 0", st.tol));
            }
            if st.n_iter_no_change < 1 {
                return Err(Error::value(
                    "n_iter_no_change",
                    "an integer >= 1",
                    st.n_iter_no_change,
                ));
            }
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
    /// Validation accuracy (R² for regression losses), when validation data was given.
    pub val_metric: Option<f64>,
    /// Learning rate of the epoch just done.
    pub lr: f64,
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
    /// A flag that, once raised from any thread, stops training with [`Error::Interrupted`]
    /// within one work item, even in the middle of a long step (whose weights it leaves
    /// untouched); `None` when only [`Monitor::after_step`] may stop it.
    fn interrupt(&self) -> Option<Arc<AtomicBool>> {
        None
    }
    /// When epoch `epoch` (1-based) has taken its last step, before its validation pass: from
    /// here on its samples count as seen, even if an interrupt stops the validation.
    fn epoch_trained(&mut self, _epoch: usize) {}
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
    /// True when the stopping rule ended training before its last epoch.
    pub stopped_early: bool,
    /// The learning rate the next epoch would have used.
    pub next_lr: f64,
    /// Samples seen, this run's included.
    pub samples_seen: u64,
}

/// The stopping rule's bookkeeping, and the best weights when they are to be restored.
struct Watch<T> {
    rule: Option<Stopping>,
    on_validation: bool,
    best: f64,
    count: usize,
    best_params: Vec<(Vec<T>, Vec<T>)>,
    have_best: bool,
}

impl<T: Float> Watch<T> {
    fn new(rule: Option<Stopping>, on_validation: bool, params: &[ParamsMut<'_, T>]) -> Self {
        let keep = rule.is_some_and(|r| r.restore_best) && on_validation;
        Watch {
            rule,
            on_validation,
            best: if on_validation {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            count: 0,
            best_params: if keep {
                params
                    .iter()
                    .map(|p| (p.weight.to_vec(), p.bias.to_vec()))
                    .collect()
            } else {
                Vec::new()
            },
            have_best: false,
        }
    }

    /// Updates the count after an epoch; true when it went past the rule's patience.
    fn no_improvement(&mut self, report: &EpochReport, params: &[ParamsMut<'_, T>]) -> bool {
        let Some(rule) = self.rule else {
            return false;
        };
        if self.on_validation {
            let score = report.val_metric.unwrap_or(f64::NAN);
            self.count = if score < self.best + rule.tol {
                self.count + 1
            } else {
                0
            };
            if score > self.best {
                self.best = score;
                if !self.best_params.is_empty() {
                    for ((w, b), p) in self.best_params.iter_mut().zip(params) {
                        w.copy_from_slice(p.weight);
                        b.copy_from_slice(p.bias);
                    }
                    self.have_best = true;
                }
            }
        } else {
            self.count = if report.loss > self.best - rule.tol {
                self.count + 1
            } else {
                0
            };
            self.best = self.best.min(report.loss);
        }
        self.count > rule.n_iter_no_change
    }

    fn reset_count(&mut self) {
        self.count = 0;
    }

    fn restore_best(&self, params: &mut [ParamsMut<'_, T>]) {
        if self.have_best {
            for ((w, b), p) in self.best_params.iter().zip(params) {
                p.weight.copy_from_slice(w);
                p.bias.copy_from_slice(b);
            }
        }
    }
}

/// Mean loss and [`score`] of the network on `x` against validated `targets`.
pub fn evaluate<T: Float>(
    spec: &Spec,
    params: &[impl Params<T> + Sync],
    x: MatRef<'_, T>,
    targets: &Targets<'_, T>,
) -> Result<(f64, f64)> {
    match spec.predict_helpers(x.rows()) {
        0 => evaluate_on(None, spec, params, x, targets),
        want => evaluate_on(Some(&Team::for_call(want)), spec, params, x, targets),
    }
}

/// [`evaluate`] on `team` (a fit's, whose interrupt flag stops it).
fn evaluate_on<T: Float>(
    team: Option<&Team<'_>>,
    spec: &Spec,
    params: &[impl Params<T> + Sync],
    x: MatRef<'_, T>,
    targets: &Targets<'_, T>,
) -> Result<(f64, f64)> {
    let k = spec.outputs();
    let mut scores = vec![T::ZERO; x.rows() * k];
    spec.predict_on(team, params, x, &mut scores)?;
    let s = MatRef::new(&scores, x.rows(), k);
    let norm = spec.loss().normalizer(x.rows(), k);
    let sum = spec.loss().sum_rows(s, targets, None, T::ONE);
    Ok((sum / norm as f64, score(spec.loss(), s, targets)))
}

/// Trains the network whose parameters are `params` on (`x`, `y`), in place.
///
/// Everything is validated before the first step, except the finiteness of a large `x`,
/// which the first epoch checks as it reads the rows: on any input error the parameters and
/// `optim` are as they were before the call.
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
    spec.check_shape("X", x)?;
    // A large X is checked for NaN and infinity as the first epoch gathers it (every row
    // passes once, in cache), rather than by a pass of its own; if one turns up, the weights
    // and optimizer state go back to where they were. Otherwise: one scan, up front.
    let kept: usize = params.iter().map(|p| p.weight.len() + p.bias.len()).sum();
    let lazy = cfg.epochs > 0
        && x.as_row_major().is_some()
        && x.rows() * x.cols() >= (1 << 22).max(8 * kept);
    if !lazy {
        check_values("X", x)?;
    }
    let (n, k) = (x.rows(), spec.outputs());
    spec.loss().check_targets("y", n, k, y)?;
    if let Some((xv, yv)) = &validation {
        spec.check_input("validation_data X", *xv)?;
        spec.loss()
            .check_targets("validation_data y", xv.rows(), k, yv)?;
    }

    let flag = monitor.interrupt();
    let mut team = Team::new(Kind::Fit, flag.as_deref());
    train_loop(
        &mut team, spec, params, x, y, validation, cfg, optim, monitor, lazy,
    )
}

#[allow(clippy::too_many_arguments)]
fn train_loop<T: Float>(
    team: &mut Team<'_>,
    spec: &Spec,
    params: &mut [ParamsMut<'_, T>],
    x: MatRef<'_, T>,
    y: &Targets<'_, T>,
    validation: Option<(MatRef<'_, T>, Targets<'_, T>)>,
    cfg: &FitConfig,
    optim: &mut OptimState<T>,
    monitor: &mut (dyn Monitor + Send),
    check_x: bool,
) -> Result<History> {
    let n = x.rows();
    // What to go back to if the first epoch finds NaN or infinity in X.
    let mut undo = check_x.then(|| {
        let weights: Vec<(Vec<T>, Vec<T>)> = params
            .iter()
            .map(|p| (p.weight.to_vec(), p.bias.to_vec()))
            .collect();
        (weights, optim.clone())
    });
    let b = cfg.batch_size.min(n);
    let gather = match (cfg.shuffle, y) {
        (false, _) => Gather::No,
        (true, Targets::Classes(_)) => Gather::Classes,
        (true, Targets::Values(_)) => Gather::Values,
    };
    let mut trainer = Trainer::new(spec, b, gather);
    let flops = step_flops(spec, b);
    let shards = shard_count(b, crate::step::row_flops(spec));
    let mut pacer = Pacer::new(helpers_worth(flops, shards), flops);
    pacer.prepare(team);
    let mut rng = Rng::new(cfg.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut lr = cfg.lr;
    let mut history = History::default();
    let mut seen = cfg.samples_seen;
    let mut watch = Watch::new(cfg.stopping, validation.is_some(), params);
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
            let decay = if cfg.l2_per_sample {
                cfg.weight_decay / (hi - lo) as f64
            } else {
                cfg.weight_decay
            };
            let check = undo.is_some();
            // The pacer hears of this step's jobs alone (not of a validation pass before it).
            team.take_stats();
            let start = Instant::now();
            let loss = match trainer.step(team, spec, params, batch, optim, lr, decay, check) {
                Stepped::Loss(loss) => loss,
                Stepped::Interrupted => return Err(Error::Interrupted),
                Stepped::NonFinite => {
                    let (weights, state) = undo.take().expect("checked only while undo is kept");
                    for (p, (w, b)) in params.iter_mut().zip(weights) {
                        p.weight.copy_from_slice(&w);
                        p.bias.copy_from_slice(&b);
                    }
                    *optim = state;
                    return Err(non_finite("X"));
                }
            };
            let wall = start.elapsed().as_secs_f64();
            pacer.record(wall, team.take_stats(), team.helpers(), hi - lo == b);
            pacer.prepare(team);
            epoch_loss += loss * (hi - lo) as f64;
            if !monitor.after_step() || team.interrupted() {
                return Err(Error::Interrupted);
            }
        }
        seen += n as u64;
        monitor.epoch_trained(epoch);
        // Every row has been seen once: X is finite.
        undo = None;
        let mut report = EpochReport {
            epoch,
            epochs: cfg.epochs,
            loss: epoch_loss / n as f64,
            val_loss: None,
            val_metric: None,
            lr,
            samples: n,
            elapsed: 0.0,
        };
        history.loss.push(report.loss);
        if let Some((xv, yv)) = &validation {
            let (vl, vm) = evaluate_on(Some(team), spec, params, *xv, yv)?;
            history.val_loss.push(vl);
            history.val_metric.push(vm);
            report.val_loss = Some(vl);
            report.val_metric = Some(vm);
        }
        lr *= cfg.lr_decay;
        if let Schedule::InvScaling { power_t } = cfg.schedule {
            lr = cfg.lr * cfg.lr_decay.powi(epoch as i32) / ((seen + 1) as f64).powf(power_t);
        }
        let mut stop = false;
        if watch.no_improvement(&report, params) {
            if cfg.schedule == Schedule::Adaptive && lr > 1e-6 {
                lr /= 5.0;
                watch.reset_count();
            } else {
                stop = true;
            }
        }
        report.elapsed = start.elapsed().as_secs_f64();
        if !monitor.after_epoch(&report) || stop {
            history.stopped_early = stop;
            break;
        }
    }
    watch.restore_best(params);
    history.next_lr = lr;
    history.samples_seen = seen;
    Ok(history)
}
