//! Everything training changes besides the parameters, kept from one fit to the next.
//!
//! A [`Session`] belongs to one model. It holds:
//!
//! - the random generator that draws a fit's shuffling seed when none is given;
//! - the last fit's optimizer state (moments, step count, hyperparameters) and its learning
//!   rate schedule ([`Rate`]: the starting rate, the schedule, and the rate the next epoch
//!   would use), which a fit with `resume` continues;
//! - the stopping rule's state ([`Watch`]: the best figure, the epochs without improvement,
//!   and, with validation data, the best weights);
//! - the samples trained on and the [`History`] of every epoch of every fit.
//!
//! A fit without `resume` starts the optimizer, the schedule and the stopping rule afresh;
//! the samples seen and the history go on.

use crate::config::{FitConfig, Schedule};
use crate::error::Result;
use crate::float::Float;
use crate::network::{Owned, ParamsMut};
use crate::optim::OptimState;
use crate::persist::{Reader, Writer, corrupt};
use crate::rng::Rng;

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Mean training loss of the epoch (with the L2 term when weight decay is on).
    pub loss: f64,
    /// Mean validation loss, when validation data was given.
    pub val_loss: Option<f64>,
    /// Validation accuracy (R² for regression losses), when validation data was given.
    pub val_metric: Option<f64>,
    /// Learning rate of the epoch.
    pub lr: f64,
}

/// Every epoch of every fit of a session, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The epochs.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// The training losses of epochs `from..`.
    pub fn losses(&self, from: usize) -> Vec<f64> {
        self.epochs[from..].iter().map(|e| e.loss).collect()
    }

    /// The validation losses and metrics of those of epochs `from..` that had validation.
    pub fn validation(&self, from: usize) -> (Vec<f64>, Vec<f64>) {
        self.epochs[from..]
            .iter()
            .filter_map(|e| Some((e.val_loss?, e.val_metric?)))
            .unzip()
    }
}

/// The learning rate and how it moves, fixed when a fit starts afresh.
///
/// Epoch e (counted from 0 since the fit that started afresh) trains at
///
/// ```text
/// lr_e = warm(e) · base_e,   warm(e) = (e + 1)/(W + 1) for e < W, else 1
/// ```
///
/// W the warm-up epochs, and base_e the schedule's rate: for "constant" and "adaptive",
/// lr · lr_decay^e (the adaptive schedule dividing it by 5 where it would stop); for
/// "invscaling", lr · lr_decay^e / (t + 1)^power_t, t the samples seen; for "cosine",
/// PyTorch's `CosineAnnealingLR` from lr to `lr_min` over the T − W epochs after the warm-up,
/// T the fit's epochs, and lr before it. In PyTorch's terms the warm-up is
/// `LinearLR(start_factor=1/(W+1), end_factor=1, total_iters=W)`, followed by the cosine
/// through `SequentialLR(milestones=[W])`, or chained (`ChainedScheduler`) with `lr_decay`'s
/// `ExponentialLR`.
///
/// A rate set from outside ([`Rate::set`]) takes over: the epochs after use it, `lr_decay`
/// and the adaptive schedule go on from it, and the formulas of the epoch count (warm-up,
/// invscaling, cosine), which would overwrite it, end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// The starting rate.
    lr0: f64,
    lr_decay: f64,
    schedule: Schedule,
    power_t: f64,
    /// Epochs run since the start.
    epochs: u32,
    /// The rate the next epoch uses.
    pub(crate) now: f64,
    /// The schedule's rate without the warm-up (the cosine's starting rate).
    base: f64,
    /// Epochs of warm-up.
    warmup: u32,
    /// Where the cosine ends.
    lr_min: f64,
    /// The epochs the cosine (and warm-up) spans: the fit's.
    span: u32,
}

impl Rate {
    fn new(cfg: &FitConfig) -> Self {
        let mut rate = Rate {
            lr0: cfg.lr,
            lr_decay: cfg.lr_decay,
            schedule: cfg.schedule,
            power_t: cfg.power_t,
            epochs: 0,
            now: cfg.lr,
            base: cfg.lr,
            warmup: cfg.warmup(),
            lr_min: cfg.lr_min,
            span: u32::try_from(cfg.counts().0).unwrap_or(u32::MAX),
        };
        rate.now = rate.at(0);
        rate
    }

    /// The rate of epoch `e` (see the type's notes), from `base`.
    fn at(&self, e: u32) -> f64 {
        let plain = match self.schedule {
            Schedule::Cosine => {
                let t_max = self.span.saturating_sub(self.warmup);
                let t = e.saturating_sub(self.warmup).min(t_max);
                // The cosine's first epoch (and the warm-up's) train at the base rate itself.
                if t_max == 0 || t == 0 {
                    self.base
                } else {
                    let angle = std::f64::consts::PI * f64::from(t) / f64::from(t_max);
                    self.lr_min + (self.base - self.lr_min) * (1.0 + angle.cos()) / 2.0
                }
            }
            _ => self.base,
        };
        if e < self.warmup {
            plain * (f64::from(e) + 1.0) / (f64::from(self.warmup) + 1.0)
        } else {
            plain
        }
    }

    fn write(&self, w: &mut Writer) {
        w.f64(self.lr0);
        w.f64(self.lr_decay);
        w.u64(match self.schedule {
            Schedule::Constant => 0,
            Schedule::InvScaling => 1,
            Schedule::Adaptive => 2,
            Schedule::Cosine => 3,
        });
        w.f64(self.power_t);
        w.u64(u64::from(self.epochs));
        w.f64(self.now);
        // Since version 2.
        w.f64(self.base);
        w.u64(u64::from(self.warmup));
        w.f64(self.lr_min);
        w.u64(u64::from(self.span));
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let count = |v: u64| u32::try_from(v).map_err(|_| corrupt("an epoch count out of range"));
        let mut rate = Rate {
            lr0: r.f64()?,
            lr_decay: r.f64()?,
            schedule: match r.u64()? {
                0 => Schedule::Constant,
                1 => Schedule::InvScaling,
                2 => Schedule::Adaptive,
                3 => Schedule::Cosine,
                _ => return Err(corrupt("an unknown schedule")),
            },
            power_t: r.f64()?,
            epochs: count(r.u64()?)?,
            now: r.f64()?,
            base: 0.0,
            warmup: 0,
            lr_min: 0.0,
            span: 0,
        };
        if r.version() >= 2 {
            rate.base = r.f64()?;
            rate.warmup = count(r.u64()?)?;
            rate.lr_min = r.f64()?;
            rate.span = count(r.u64()?)?;
        } else {
            // Version 1 had no warm-up and no cosine: its rate was the schedule's.
            rate.base = rate.now;
        }
        Ok(rate)
    }

    /// After an epoch, `seen` the samples seen so far.
    pub(crate) fn epoch_done(&mut self, seen: u64) {
        self.epochs = self.epochs.saturating_add(1);
        self.base *= self.lr_decay;
        if self.schedule == Schedule::InvScaling {
            let decay = self.lr_decay.powi(self.epochs.min(i32::MAX as u32) as i32);
            self.base = self.lr0 * decay / ((seen + 1) as f64).powf(self.power_t);
        }
        self.now = self.at(self.epochs);
    }

    /// When the stopping rule fires: true to stop; the adaptive schedule divides the rate
    /// by 5 instead (while it is above 1e-6).
    pub(crate) fn should_stop(&mut self) -> bool {
        if self.schedule == Schedule::Adaptive && self.now > 1e-6 {
            self.base /= 5.0;
            self.now = self.at(self.epochs);
            false
        } else {
            true
        }
    }

    /// Sets the rate of the next epochs to `lr` (see the type's notes).
    pub(crate) fn set(&mut self, lr: f64) {
        if matches!(self.schedule, Schedule::InvScaling | Schedule::Cosine) {
            self.schedule = Schedule::Constant;
        }
        self.warmup = 0;
        self.base = lr;
        self.now = lr;
    }
}

/// The stopping rule's state, as scikit-learn keeps it: training stops when the watched
/// figure has not improved by more than `tol` for more than `n_iter_no_change` epochs in a
/// row. The figure is the validation score (higher is better) with validation data, the
/// training loss otherwise.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Watch<T> {
    on_validation: bool,
    best: f64,
    count: usize,
    /// With validation data: the parameters (and running statistics) of the best score so
    /// far.
    best_params: Vec<Owned<T>>,
}

impl<T: Float> Watch<T> {
    fn new(on_validation: bool) -> Self {
        Watch {
            on_validation,
            best: if on_validation {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            count: 0,
            best_params: Vec::new(),
        }
    }

    /// Hears of an epoch's figures; true when the count went past `patience`.
    pub(crate) fn no_improvement(
        &mut self,
        tol: f64,
        patience: usize,
        record: &EpochRecord,
        keep_best: bool,
        params: &[ParamsMut<'_, T>],
    ) -> Result<bool> {
        if self.on_validation {
            let score = record.val_metric.unwrap_or(f64::NAN);
            self.count = if score < self.best + tol {
                self.count + 1
            } else {
                0
            };
            if score > self.best {
                self.best = score;
                if keep_best {
                    self.keep(params)?;
                }
            }
        } else {
            self.count = if record.loss > self.best - tol {
                self.count + 1
            } else {
                0
            };
            self.best = self.best.min(record.loss);
        }
        Ok(self.count > patience)
    }

    /// Copies `params` as the best ones, into buffers allocated the first time.
    fn keep(&mut self, params: &[ParamsMut<'_, T>]) -> Result<()> {
        if self.best_params.len() != params.len() {
            self.best_params = params.iter().map(Owned::copy_of).collect::<Result<_>>()?;
        } else {
            for (kept, p) in self.best_params.iter_mut().zip(params) {
                kept.copy_from(p);
            }
        }
        Ok(())
    }

    fn write(&self, w: &mut Writer) {
        w.bool(self.on_validation);
        w.f64(self.best);
        w.u64(self.count as u64);
        w.u64(self.best_params.len() as u64);
        for p in &self.best_params {
            w.floats(&p.weight);
            w.floats(&p.bias);
            // Only batch normalization keeps state: records without it read as before.
            if !p.state.is_empty() {
                w.floats(&p.state);
            }
        }
    }

    /// A stopping rule from a record; best weights, when kept, of the lengths `lens`.
    fn read(r: &mut Reader<'_>, lens: &[(usize, usize, usize)]) -> Result<Self> {
        let on_validation = r.bool()?;
        let best = r.f64()?;
        let count = usize::try_from(r.u64()?).map_err(|_| corrupt("a count out of range"))?;
        let kept = r.u64()?;
        let best_params = if kept == 0 {
            Vec::new()
        } else if kept == lens.len() as u64 {
            let mut all = Vec::with_capacity(lens.len());
            for &(wl, bl, sl) in lens {
                let (weight, bias) = (r.floats()?, r.floats()?);
                let state = if sl > 0 { r.floats()? } else { Vec::new() };
                if (weight.len(), bias.len(), state.len()) != (wl, bl, sl) {
                    return Err(corrupt("best weights of other layer sizes"));
                }
                all.push(Owned {
                    weight,
                    bias,
                    state,
                });
            }
            all
        } else {
            return Err(corrupt("best weights for another number of layers"));
        };
        Ok(Watch {
            on_validation,
            best,
            count,
            best_params,
        })
    }

    /// Starts the count over (the adaptive schedule lowered the rate instead of stopping).
    pub(crate) fn reset_count(&mut self) {
        self.count = 0;
    }

    /// Puts the best weights back, when some were kept.
    pub(crate) fn restore_best(&self, params: &mut [ParamsMut<'_, T>]) {
        if self.best_params.len() == params.len() {
            for (kept, p) in self.best_params.iter().zip(params) {
                kept.copy_into(p);
            }
        }
    }
}

/// What one fit needs of the session while it runs, taken out at its start.
#[derive(Clone)]
pub(crate) struct Run<T> {
    pub(crate) optim: OptimState<T>,
    pub(crate) rate: Rate,
    pub(crate) watch: Watch<T>,
    /// Continued from the session (rather than started afresh).
    resumed: bool,
}

impl<T: Float> Run<T> {
    /// A run started afresh for `params`: zeroed optimizer state, the configured rate, an
    /// empty stopping rule.
    pub(crate) fn fresh(
        cfg: &FitConfig,
        on_validation: bool,
        params: &[ParamsMut<'_, T>],
    ) -> Result<Self> {
        Ok(Run {
            optim: OptimState::for_params(cfg.optimizer(), params)?,
            rate: Rate::new(cfg),
            watch: Watch::new(on_validation),
            resumed: false,
        })
    }

    /// Continued from the session's last fit.
    pub(crate) fn resumed(&self) -> bool {
        self.resumed
    }
}

/// Everything training changes besides the parameters (see the module's notes).
#[derive(Debug, Clone)]
pub struct Session<T> {
    rng: Rng,
    optim: Option<OptimState<T>>,
    rate: Option<Rate>,
    watch: Option<Watch<T>>,
    samples_seen: u64,
    history: History,
    stopped_early: bool,
}

impl<T: Float> Session<T> {
    /// A session whose fits draw their shuffling seeds from `rng`.
    pub fn new(rng: Rng) -> Self {
        Session {
            rng,
            optim: None,
            rate: None,
            watch: None,
            samples_seen: 0,
            history: History::default(),
            stopped_early: false,
        }
    }

    /// Appends every field to a record (see `persist`).
    pub(crate) fn write(&self, w: &mut Writer) {
        self.rng.write(w);
        w.u64(self.samples_seen);
        w.bool(self.stopped_early);
        w.u64(self.history.epochs.len() as u64);
        for e in &self.history.epochs {
            w.f64(e.loss);
            w.opt_f64(e.val_loss);
            w.opt_f64(e.val_metric);
            w.f64(e.lr);
        }
        w.bool(self.optim.is_some());
        if let Some(o) = &self.optim {
            o.write(w);
        }
        w.bool(self.rate.is_some());
        if let Some(rate) = &self.rate {
            rate.write(w);
        }
        w.bool(self.watch.is_some());
        if let Some(watch) = &self.watch {
            watch.write(w);
        }
    }

    /// A session from a record, for parameter tensors of the lengths `lens` (weights,
    /// biases, state per block).
    pub(crate) fn read(r: &mut Reader<'_>, lens: &[(usize, usize, usize)]) -> Result<Self> {
        let rng = Rng::read(r)?;
        let samples_seen = r.u64()?;
        let stopped_early = r.bool()?;
        // An epoch's record is 8 + 9 + 9 + 8 bytes.
        let n = r.count(34)?;
        let mut epochs = Vec::with_capacity(n);
        for _ in 0..n {
            epochs.push(EpochRecord {
                loss: r.f64()?,
                val_loss: r.opt_f64()?,
                val_metric: r.opt_f64()?,
                lr: r.f64()?,
            });
        }
        let optim = if r.bool()? {
            let pairs: Vec<(usize, usize)> = lens.iter().map(|&(w, b, _)| (w, b)).collect();
            Some(OptimState::read(r, &pairs)?)
        } else {
            None
        };
        let rate = if r.bool()? {
            Some(Rate::read(r)?)
        } else {
            None
        };
        let watch = if r.bool()? {
            Some(Watch::read(r, lens)?)
        } else {
            None
        };
        Ok(Session {
            rng,
            optim,
            rate,
            watch,
            samples_seen,
            history: History { epochs },
            stopped_early,
        })
    }

    /// Samples trained on, over all fits.
    pub fn samples_seen(&self) -> u64 {
        self.samples_seen
    }

    /// Every epoch of every fit so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The learning rate the next epoch of the last fit would have used.
    pub fn next_lr(&self) -> Option<f64> {
        self.rate.map(|r| r.now)
    }

    /// Sets the learning rate a fit that resumes this session continues with (validated by
    /// the caller: [`crate::config::check_rate`]); false when there is no fit to resume.
    pub fn set_lr(&mut self, lr: f64) -> bool {
        self.rate.as_mut().map(|r| r.set(lr)).is_some()
    }

    /// True when the stopping rule ended the last fit before its last epoch.
    pub fn stopped_early(&self) -> bool {
        self.stopped_early
    }

    /// The generator that draws shuffling seeds (also what a model's initialization uses).
    pub fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// A copy without the optimizer's buffers and the best weights: what a reader of the
    /// session needs while a fit runs on the session itself.
    pub fn snapshot(&self) -> Self {
        Session {
            rng: self.rng.clone(),
            optim: None,
            rate: self.rate,
            watch: None,
            samples_seen: self.samples_seen,
            history: self.history.clone(),
            stopped_early: self.stopped_early,
        }
    }

    /// Brings `snapshot` (an earlier [`Session::snapshot`] of this session) up to date. It
    /// copies the last epoch it has again (validation figures may have joined it) and the
    /// epochs it lacks, so that refreshing after every epoch costs a record, not a history.
    pub fn refresh(&self, snapshot: &mut Self) {
        let epochs = &self.history.epochs;
        let keep = snapshot
            .history
            .epochs
            .len()
            .min(epochs.len())
            .saturating_sub(1);
        snapshot.history.epochs.truncate(keep);
        snapshot.history.epochs.extend_from_slice(&epochs[keep..]);
        snapshot.rng = self.rng.clone();
        snapshot.rate = self.rate;
        snapshot.samples_seen = self.samples_seen;
        snapshot.stopped_early = self.stopped_early;
    }

    /// The seed a fit with `cfg` shuffles with, and the generator as it will be once that
    /// fit has run (left unchanged until then: a refused fit changes nothing).
    pub(crate) fn seed_for(&self, cfg: &FitConfig) -> (u64, Rng) {
        let mut rng = self.rng.clone();
        let seed = cfg.seed.unwrap_or_else(|| rng.next_u64());
        (seed, rng)
    }

    /// Starts a fit: the optimizer, rate and stopping rule it continues (`cfg.resume`, when
    /// the session has them and the optimizer state fits `params`) or starts afresh.
    pub(crate) fn begin(
        &mut self,
        cfg: &FitConfig,
        on_validation: bool,
        params: &[ParamsMut<'_, T>],
    ) -> Result<Run<T>> {
        let resumed = cfg.resume
            && self.optim.as_ref().is_some_and(|o| o.fits(params))
            && self.rate.is_some();
        Ok(if resumed {
            Run {
                optim: self.optim.take().expect("checked above"),
                rate: self.rate.expect("checked above"),
                watch: self
                    .watch
                    .take()
                    .filter(|w| w.on_validation == on_validation)
                    .unwrap_or_else(|| Watch::new(on_validation)),
                resumed,
            }
        } else {
            Run::fresh(cfg, on_validation, params)?
        })
    }

    /// Shows `rate` as the session's, while a fit runs (where [`Session::end`] will leave it).
    pub(crate) fn set_rate(&mut self, rate: Rate) {
        self.rate = Some(rate);
    }

    /// Adds the validation figures to the last epoch of the history.
    pub(crate) fn set_last_validation(&mut self, loss: f64, metric: f64) {
        if let Some(last) = self.history.epochs.last_mut() {
            last.val_loss = Some(loss);
            last.val_metric = Some(metric);
        }
    }

    /// Gives back, unchanged, what a refused fit took (`run` as [`Session::begin`] gave it).
    pub(crate) fn cancel(&mut self, run: Run<T>) {
        if run.resumed {
            self.optim = Some(run.optim);
            self.rate = Some(run.rate);
            self.watch = Some(run.watch);
        }
    }

    /// Records an epoch that trained on `n` samples.
    pub(crate) fn epoch_done(&mut self, record: EpochRecord, n: usize) {
        self.samples_seen += n as u64;
        self.history.epochs.push(record);
    }

    /// Ends a fit: keeps what a later fit may resume, and the generator's new state.
    pub(crate) fn end(&mut self, run: Run<T>, rng: Rng, stopped_early: bool) {
        self.optim = Some(run.optim);
        self.rate = Some(run.rate);
        self.watch = Some(run.watch);
        self.rng = rng;
        self.stopped_early = stopped_early;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(loss: f64) -> EpochRecord {
        EpochRecord {
            loss,
            val_loss: None,
            val_metric: None,
            lr: 0.1,
        }
    }

    #[test]
    fn a_refreshed_snapshot_reads_as_the_session() {
        let mut session = Session::<f64>::new(Rng::new(3));
        session.epoch_done(record(1.0), 10);
        let mut snap = session.snapshot();
        for loss in [0.9, 0.8] {
            session.epoch_done(record(loss), 10);
            session.set_last_validation(loss + 0.05, 0.5);
            session.refresh(&mut snap);
            assert_eq!(snap.history(), session.history());
            assert_eq!(snap.samples_seen(), session.samples_seen());
        }
        // Validation figures that join the last epoch after a refresh reach the snapshot.
        session.set_last_validation(0.7, 0.75);
        session.refresh(&mut snap);
        assert_eq!(snap.history(), session.history());
        assert_eq!(snap.history().epochs.len(), 3);
        assert!(snap.optim.is_none() && snap.watch.is_none());
    }
}
