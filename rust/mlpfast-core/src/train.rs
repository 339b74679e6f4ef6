//! The training loop: shuffle, gather a batch, forward, loss, backward, optimizer step.
//!
//! One call trains for all epochs. Every per-batch buffer is allocated once, before the first
//! step; when the data is not shuffled the batches are views of `x`, not copies. The epoch
//! loss is the mean over all samples of each batch's loss (plus the L2 term when weight decay
//! is on), i.e. batch losses weighted by batch size. What a fit changes besides the
//! parameters — optimizer state, learning rate, stopping rule, samples seen, history — is
//! the [`Session`]'s. A [`Monitor`] hears about every step and every epoch and may stop
//! training between steps, leaving the weights of the last completed step.
//!
//! **Divergence.** A step whose loss is infinite or NaN ends the fit with
//! [`Error::Diverged`] before it changes anything, so the parameters are those of the step
//! before. A step whose update leaves a parameter infinite or NaN (its loss was finite) has
//! already written them; the fit then runs again from its start, silently and with the same
//! seed — results are bit-identical however often they are computed — up to the step before,
//! and ends with the same error. The check is part of the update loop (each value is tested
//! as it is written); going back costs one copy of the parameters per fit, kept from its
//! start. Finite validation data whose outputs overflow under an epoch's weights end the fit
//! the same way, after that epoch (recorded without its validation figures).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::alloc;
use crate::config::FitConfig;
use crate::error::{Error, Result};
use crate::float::{Float, all_finite};
use crate::loss::{Targets, check_weights, mass};
use crate::matrix::MatRef;
use crate::metrics::score;
use crate::network::{Dropping, Owned, Params, ParamsMut, Spec, check_values, non_finite};
use crate::pace::{Pacer, helpers_worth};
use crate::rng::Rng;
use crate::session::{EpochRecord, Run, Session};
use crate::step::{Batch, Gather, Rows, Stepped, Trainer, shard_count, step_flops};
use crate::team::{Kind, Team};

/// What one epoch achieved, as a monitor hears it.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number, within this fit.
    pub epoch: usize,
    /// Epochs requested.
    pub epochs: usize,
    /// The epoch's figures, as the session's history records them.
    pub record: EpochRecord,
    /// Training samples seen this epoch.
    pub samples: usize,
    /// Seconds since training started.
    pub elapsed: f64,
}

/// Hears about training as it goes; returning `false` stops it.
pub trait Monitor<T> {
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
    /// After every epoch, with the parameters and the session as the epoch left them (the
    /// epoch is in the session's history). `false` ends training normally.
    fn after_epoch(
        &mut self,
        _report: &EpochReport,
        _params: &[ParamsMut<'_, T>],
        _session: &Session<T>,
    ) -> bool {
        true
    }
    /// Right after [`Monitor::after_epoch`]: a learning rate for the epochs after (checked
    /// by the monitor with [`crate::config::check_rate`]), which takes over from the
    /// schedule (see `session::Rate`), or `None` to keep it.
    fn lr_request(&mut self) -> Option<f64> {
        None
    }
}

/// A monitor that never stops training.
pub struct Silent;
impl<T> Monitor<T> for Silent {}

/// Mean loss and [`score`] of the network on `x` against validated `targets` (weighted by
/// validated `weights`, when given).
pub fn evaluate<T: Float>(
    spec: &Spec,
    params: &[impl Params<T> + Sync],
    x: MatRef<'_, T>,
    targets: &Targets<'_, T>,
    weights: Option<&[T]>,
) -> Result<(f64, f64)> {
    match spec.predict_helpers(x.rows()) {
        0 => evaluate_on(None, spec, params, x, targets, weights),
        want => evaluate_on(
            Some(&Team::for_call(want)),
            spec,
            params,
            x,
            targets,
            weights,
        ),
    }
}

/// [`evaluate`] on `team` (a fit's, whose interrupt flag stops it).
fn evaluate_on<T: Float>(
    team: Option<&Team<'_>>,
    spec: &Spec,
    params: &[impl Params<T> + Sync],
    x: MatRef<'_, T>,
    targets: &Targets<'_, T>,
    weights: Option<&[T]>,
) -> Result<(f64, f64)> {
    let k = spec.outputs();
    let mut scores = alloc::zeros2(x.rows(), k, "scores")?;
    spec.predict_on(team, params, x, &mut scores)?;
    let s = MatRef::new(&scores, x.rows(), k);
    let norm = spec.loss().normalizer(mass(weights, x.rows()), k);
    let sum = spec.loss().sum_rows(s, targets, weights, None, T::ONE);
    Ok((sum / norm, score(spec.loss(), s, targets, weights)))
}

/// A data set as [`fit`] takes it: inputs, targets and, optionally, one weight per row
/// (scikit-learn's `sample_weight`: each row's loss counts that many times).
#[derive(Clone, Copy)]
pub struct Examples<'a, T> {
    /// Inputs (N, features).
    pub x: MatRef<'a, T>,
    /// Targets for the N rows.
    pub y: &'a Targets<'a, T>,
    /// N weights, finite and >= 0, not all zero; `None` weighs every row 1.
    pub weights: Option<&'a [T]>,
}

/// Trains the network whose parameters are `params` on `data`, in place, continuing
/// `session`; returns the number of epochs run. A batch's loss is the weighted mean over its
/// rows; a batch whose rows all weigh 0 is skipped.
///
/// Everything is validated before the first step, except the finiteness of a large `x`,
/// which the first epoch checks as it reads the rows: on any input error the parameters and
/// the session are as they were before the call.
#[allow(clippy::too_many_arguments)]
pub fn fit<T: Float>(
    spec: &Spec,
    params: &mut [ParamsMut<'_, T>],
    data: Examples<'_, T>,
    validation: Option<Examples<'_, T>>,
    cfg: &FitConfig,
    session: &mut Session<T>,
    monitor: &mut (dyn Monitor<T> + Send),
) -> Result<usize> {
    let (x, y) = (data.x, data.y);
    cfg.validate_for::<T>()?;
    spec.check_params(params)?;
    spec.check_shape("X", x)?;
    // A large X is checked for NaN and infinity as the first epoch gathers it (every row
    // passes once, in cache), rather than by a pass of its own; if one turns up, the weights
    // and the session go back to where they were. Otherwise: one scan, up front.
    let kept: usize = params.iter().map(|p| p.weight.len() + p.bias.len()).sum();
    // (A batch of weight 0 is skipped unread: with zero weights, X is scanned up front.)
    let lazy = cfg.epochs > 0
        && x.as_row_major().is_some()
        && x.rows() * x.cols() >= (1 << 22).max(8 * kept)
        && data.weights.is_none_or(|w| !w.contains(&T::ZERO));
    if !lazy {
        check_values("X", x)?;
    }
    let (n, k) = (x.rows(), spec.outputs());
    if spec.normalizes() {
        // A batch of one row has no variance to normalize by (PyTorch refuses it too).
        if n < 2 {
            return Err(Error::value(
                "X",
                "at least 2 samples to train a network with batch_norm (one sample has no \
                 variance to normalize by)",
                format!("{n} sample"),
            ));
        }
        if cfg.counts().1 < 2 {
            return Err(Error::value(
                "batch_size",
                ">= 2 for a network with batch_norm (a batch of one row has no variance to \
                 normalize by)",
                cfg.batch_size,
            ));
        }
    }
    spec.loss().check_targets("y", n, k, y)?;
    if let Some(w) = data.weights {
        check_weights("sample_weight", w, n)?;
    }
    if let Some(v) = &validation {
        spec.check_input("validation_data X", v.x)?;
        spec.loss()
            .check_targets("validation_data y", v.x.rows(), k, v.y)?;
        if let Some(w) = v.weights {
            check_weights("validation_data sample_weight", w, v.x.rows())?;
        }
    }

    let (seed, rng) = session.seed_for(cfg);
    let on_validation = validation.is_some();
    let run = session.begin(cfg, on_validation, params)?;
    // Where the fit started (see the module's notes).
    let origin = match Origin::of(params, &run, session) {
        Ok(origin) => origin,
        Err(e) => {
            session.cancel(run);
            return Err(e);
        }
    };
    let flag = monitor.interrupt();
    let mut team = Team::new(Kind::Fit, flag.as_deref());
    let mut state = State::new(run, seed, lazy, None);
    let result = train_loop(
        &mut team,
        spec,
        params,
        data,
        &validation,
        cfg,
        session,
        monitor,
        &mut state,
    );
    match result {
        Err(Error::Value { .. }) if state.x_unchecked => {
            // NaN in X, found by the first epoch: as if the call had never happened.
            origin.restore(params);
            session.cancel(origin.run.unwrap_or(state.run));
            result.map(|()| 0)
        }
        Err(Error::Diverged { step, .. }) if state.unusable => {
            // The failing step wrote non-finite parameters: recompute the ones before it,
            // with the rates the monitor set on the way.
            origin.restore(params);
            let start = match origin.run {
                Some(run) => run,
                None => Run::fresh(cfg, on_validation, params)?,
            };
            let mut again = State::new(start, seed, false, Some(step - 1));
            again.lr_sets = std::mem::take(&mut state.lr_sets);
            let mut scratch = origin.session;
            let replayed = train_loop(
                &mut team,
                spec,
                params,
                data,
                &validation,
                cfg,
                &mut scratch,
                &mut Silent,
                &mut again,
            );
            session.end(again.run, rng, false);
            replayed.and(result).map(|()| state.epochs)
        }
        _ => {
            session.end(state.run, rng, state.stopped_early);
            result.map(|()| state.epochs)
        }
    }
}

/// Every block's parameters and state, copied.
type Weights<T> = Vec<Owned<T>>;

/// Where a fit started: what a refused fit goes back to, and what a fit whose step wrote
/// non-finite parameters runs again from.
struct Origin<T> {
    weights: Weights<T>,
    /// The run as the session gave it, when it continued the session's (a fresh one is
    /// made again rather than copied).
    run: Option<Run<T>>,
    /// The session without its optimizer state: samples seen (which the schedule reads).
    session: Session<T>,
}

impl<T: Float> Origin<T> {
    fn of(params: &[ParamsMut<'_, T>], run: &Run<T>, session: &Session<T>) -> Result<Self> {
        // Training from NaN would look like divergence at the first step; it is bad input.
        if !params
            .iter()
            .all(|p| all_finite(p.weight) && all_finite(p.bias) && all_finite(p.state))
        {
            return Err(Error::value(
                "the model's parameters",
                "finite values to train from",
                "NaN or infinity (written into a weight, bias or running statistics view?)",
            ));
        }
        let weights = params.iter().map(Owned::copy_of).collect::<Result<_>>()?;
        Ok(Origin {
            weights,
            run: run.resumed().then(|| run.clone()),
            session: session.snapshot(),
        })
    }

    fn restore(&self, params: &mut [ParamsMut<'_, T>]) {
        for (p, kept) in params.iter_mut().zip(&self.weights) {
            kept.copy_into(p);
        }
    }
}

/// A fit's running state.
struct State<T> {
    run: Run<T>,
    seed: u64,
    /// X is not yet known to be finite (the first epoch checks it as it goes).
    x_unchecked: bool,
    /// Stop before this step (counted from 1 over the fit): a run again after divergence.
    until: Option<usize>,
    /// Steps done.
    steps: usize,
    /// The last step wrote non-finite parameters.
    unusable: bool,
    stopped_early: bool,
    epochs: usize,
    /// The rates the monitor set, with the epoch after which it did (a run again after
    /// divergence sets them at the same points).
    lr_sets: Vec<(usize, f64)>,
}

impl<T> State<T> {
    fn new(run: Run<T>, seed: u64, x_unchecked: bool, until: Option<usize>) -> Self {
        State {
            run,
            seed,
            x_unchecked,
            until,
            steps: 0,
            unusable: false,
            stopped_early: false,
            epochs: 0,
            lr_sets: Vec::new(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn train_loop<T: Float>(
    team: &mut Team<'_>,
    spec: &Spec,
    params: &mut [ParamsMut<'_, T>],
    data: Examples<'_, T>,
    validation: &Option<Examples<'_, T>>,
    cfg: &FitConfig,
    session: &mut Session<T>,
    monitor: &mut (dyn Monitor<T> + Send),
    state: &mut State<T>,
) -> Result<()> {
    let (x, y) = (data.x, data.y);
    let n = x.rows();
    let (epochs, batch_size) = cfg.counts();
    let b = batch_size.min(n);
    let gather = match (cfg.shuffle, y) {
        (false, _) => Gather::No,
        (true, Targets::Classes(_)) => Gather::Classes,
        (true, Targets::Values(_)) => Gather::Values,
    };
    // With batch normalization a last batch of one row joins the one before it.
    let merge_tail = spec.normalizes() && n > b && n % b == 1;
    let capacity = if merge_tail { b + 1 } else { b };
    let mut trainer = Trainer::new(spec, capacity, gather, data.weights.is_some())?;
    let flops = step_flops(spec, b);
    let shards = shard_count(b, crate::step::row_flops(spec));
    let mut pacer = Pacer::new(helpers_worth(flops, shards), flops);
    pacer.prepare(team);
    let mut rng = Rng::new(state.seed);
    let mut order = alloc::range(n, "the shuffled order")?;
    let keep_best = cfg.restore_best && validation.is_some();
    let start = Instant::now();

    for epoch in 1..=epochs {
        if cfg.shuffle {
            rng.shuffle(&mut order);
        }
        let lr = state.run.rate.now;
        let mut epoch_loss = 0.0;
        for lo in (0..n).step_by(b) {
            if state.until == Some(state.steps) {
                return Ok(());
            }
            if merge_tail && lo + 1 == n {
                break; // trained with the batch before
            }
            let hi = if merge_tail && lo + b + 1 == n {
                n
            } else {
                (lo + b).min(n)
            };
            let (rows, next) = if cfg.shuffle {
                (Rows::Picked(&order[lo..hi]), &order[hi..(hi + b).min(n)])
            } else {
                (Rows::Range(lo, hi), &order[..0])
            };
            let batch = Batch {
                x,
                y,
                w: data.weights,
                rows,
                next,
                // Masks by (the fit's seed, its step, row, column): the same on any thread.
                drop: (spec.dropout() > 0.0).then_some(Dropping {
                    p: spec.dropout(),
                    seed: state.seed,
                    step: state.steps as u64,
                }),
            };
            // scikit-learn's alpha is divided by the batch's row count, or its weight sum.
            let decay = |mass: f64| {
                if cfg.l2_per_sample {
                    cfg.weight_decay / mass
                } else {
                    cfg.weight_decay
                }
            };
            let check = state.x_unchecked;
            // The pacer hears of this step's jobs alone (not of a validation pass before it).
            team.take_stats();
            let started = Instant::now();
            let optim = &mut state.run.optim;
            let step = state.steps + 1;
            let diverged = |what: String| Error::Diverged {
                epoch,
                step,
                what,
                lr,
            };
            let clip = cfg.clip_grad_norm;
            let loss = match trainer.step(team, spec, params, batch, optim, lr, decay, clip, check)
            {
                Stepped::Loss { data, reg } => data * cfg.reported_data_scale + reg,
                Stepped::NoWeight => 0.0,
                Stepped::Interrupted => return Err(Error::Interrupted),
                Stepped::NonFinite => return Err(non_finite("X")),
                Stepped::LossNotFinite(loss) => {
                    return Err(diverged(format!("the training loss is {loss}")));
                }
                Stepped::UpdateNotFinite => {
                    state.unusable = true;
                    let what = if spec.normalizes() {
                        "a weight or a running statistic"
                    } else {
                        "a weight"
                    };
                    return Err(diverged(format!("an update made {what} infinite or NaN")));
                }
            };
            state.steps = step;
            let wall = started.elapsed().as_secs_f64();
            pacer.record(wall, team.take_stats(), team.helpers(), hi - lo == b);
            pacer.prepare(team);
            epoch_loss += loss * (hi - lo) as f64;
            if !monitor.after_step() || team.interrupted() {
                return Err(Error::Interrupted);
            }
        }
        // Every row has been seen once: X is finite, and the epoch counts, even if an
        // interrupt stops its validation pass.
        state.x_unchecked = false;
        let mut record = EpochRecord {
            loss: epoch_loss / n as f64,
            val_loss: None,
            val_metric: None,
            lr,
        };
        state.epochs = epoch;
        session.epoch_done(record.clone(), n);
        if let Some(v) = validation {
            // Finite validation data whose outputs overflow under the weights this epoch
            // reached: the fit has diverged (it keeps them, and the epoch without validation).
            let evaluated = evaluate_on(Some(team), spec, params, v.x, v.y, v.weights);
            let (vl, vm) = evaluated.map_err(|e| match e {
                Error::State(_) => Error::Diverged {
                    epoch,
                    step: state.steps,
                    what: "the outputs for the validation data are NaN or infinite".into(),
                    lr,
                },
                e => e,
            })?;
            let vl = vl * cfg.reported_data_scale;
            record.val_loss = Some(vl);
            record.val_metric = Some(vm);
            session.set_last_validation(vl, vm);
        }
        state.run.rate.epoch_done(session.samples_seen());
        let mut stop = false;
        if let Some(patience) = cfg.patience() {
            let watch = &mut state.run.watch;
            if watch.no_improvement(cfg.tol, patience, &record, keep_best, params)? {
                if state.run.rate.should_stop() {
                    stop = true;
                } else {
                    watch.reset_count();
                }
            }
        }
        let report = EpochReport {
            epoch,
            epochs,
            record,
            samples: n,
            elapsed: start.elapsed().as_secs_f64(),
        };
        // The monitor reads the rate of the next epoch off the session.
        session.set_rate(state.run.rate);
        let go_on = monitor.after_epoch(&report, params, session);
        if let Some(lr) = monitor.lr_request() {
            state.lr_sets.push((epoch, lr));
        }
        if let Some(&(_, lr)) = state.lr_sets.iter().rfind(|&&(e, _)| e == epoch) {
            // Also when training ends here: a fit that resumes goes on with it.
            state.run.rate.set(lr);
            session.set_rate(state.run.rate);
        }
        if !go_on || stop {
            state.stopped_early = stop;
            break;
        }
    }
    if keep_best {
        state.run.watch.restore_best(params);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::config::{OptimizerKind, Schedule};
    use crate::loss::Loss;
    use crate::network::Hidden;

    /// A small classification problem and a network for it.
    fn problem(n: usize) -> (Spec, Weights<f64>, Vec<f64>, Vec<u32>) {
        let spec = Spec::new(
            &[4, 6, 3],
            Hidden::Activation(Activation::Tanh),
            Loss::Softmax,
        )
        .expect("valid sizes");
        let mut rng = Rng::new(3);
        let params = spec.init_params(None, &mut rng).unwrap();
        let x: Vec<f64> = (0..n * 4).map(|_| rng.normal()).collect();
        let y: Vec<u32> = (0..n)
            .map(|i| (x[4 * i] > 0.0) as u32 + (x[4 * i + 1] > 0.5) as u32)
            .collect();
        (spec, params, x, y)
    }

    fn train(
        spec: &Spec,
        params: &mut [crate::network::Owned<f64>],
        x: &[f64],
        y: &[u32],
        cfg: &FitConfig,
        session: &mut Session<f64>,
    ) -> Result<usize> {
        let mut pm: Vec<ParamsMut<'_, f64>> = params.iter_mut().map(|p| p.view_mut()).collect();
        let n = y.len();
        let targets = Targets::Classes(y);
        fit(
            spec,
            &mut pm,
            Examples {
                x: MatRef::new(x, n, 4),
                y: &targets,
                weights: None,
            },
            None,
            cfg,
            session,
            &mut Silent,
        )
    }

    #[test]
    fn training_stops_once_the_loss_stops_improving() {
        let (spec, mut params, x, y) = problem(64);
        let mut session = Session::new(Rng::new(0));
        // A rate so small that the loss cannot improve by tol: epoch 1 sets the best, epochs
        // 2, 3 and 4 count, and the count passes 2 at epoch 4.
        let cfg = FitConfig {
            epochs: 50,
            lr: 1e-12,
            tol: 1e-4,
            n_iter_no_change: Some(2),
            ..FitConfig::default()
        };
        assert_eq!(
            train(&spec, &mut params, &x, &y, &cfg, &mut session).unwrap(),
            4
        );
        assert!(session.stopped_early());
        assert_eq!(session.history().epochs.len(), 4);
        assert_eq!(session.samples_seen(), 4 * 64);
        // The adaptive schedule divides the rate by 5 instead, until it falls to 1e-6.
        let mut session = Session::new(Rng::new(0));
        let adaptive = FitConfig {
            schedule: Schedule::Adaptive,
            lr: 1e-5,
            ..cfg.clone()
        };
        let epochs = train(&spec, &mut params, &x, &y, &adaptive, &mut session).unwrap();
        let lrs: Vec<f64> = session.history().epochs.iter().map(|e| e.lr).collect();
        // It fires at epochs 4 (2e-6), 7 (4e-7, at most 1e-6) and 10, which stops.
        assert_eq!(epochs, 10, "{lrs:?}");
        assert_eq!(lrs[0], 1e-5);
        assert!((lrs[epochs - 1] - 1e-5 / 25.0).abs() < 1e-18, "{lrs:?}");
        assert!(session.next_lr().unwrap() <= 1e-6);
    }

    #[test]
    fn schedules_follow_their_formulas() {
        let (spec, mut params, x, y) = problem(50);
        let mut session = Session::new(Rng::new(0));
        let cfg = FitConfig {
            epochs: 3,
            lr: 0.1,
            lr_decay: 0.5,
            schedule: Schedule::InvScaling,
            power_t: 0.25,
            ..FitConfig::default()
        };
        train(&spec, &mut params, &x, &y, &cfg, &mut session).unwrap();
        let lrs: Vec<f64> = session.history().epochs.iter().map(|e| e.lr).collect();
        // Epoch e (from 0) after t = 50 e samples: lr₀ · decay^e / (t + 1)^power_t.
        let expect = |e: i32| 0.1 * 0.5f64.powi(e) / (50.0 * e as f64 + 1.0).powf(0.25);
        for (e, lr) in lrs.iter().enumerate() {
            assert!((lr - expect(e as i32)).abs() < 1e-15, "{lrs:?}");
        }
        assert!((session.next_lr().unwrap() - expect(3)).abs() < 1e-15);
        // A constant rate with lr_decay is geometric.
        let mut session = Session::new(Rng::new(0));
        let geometric = FitConfig {
            schedule: Schedule::Constant,
            ..cfg
        };
        train(&spec, &mut params, &x, &y, &geometric, &mut session).unwrap();
        let lrs: Vec<f64> = session.history().epochs.iter().map(|e| e.lr).collect();
        assert_eq!(lrs, vec![0.1, 0.05, 0.025]);
    }

    fn lrs(session: &Session<f64>) -> Vec<f64> {
        session.history().epochs.iter().map(|e| e.lr).collect()
    }

    #[test]
    fn warm_up_and_cosine_follow_their_formulas() {
        let (spec, mut params, x, y) = problem(30);
        let mut session = Session::new(Rng::new(0));
        let cfg = FitConfig {
            epochs: 6,
            lr: 0.1,
            lr_min: 0.01,
            warmup_epochs: 2,
            schedule: Schedule::Cosine,
            ..FitConfig::default()
        };
        train(&spec, &mut params, &x, &y, &cfg, &mut session).unwrap();
        // Epoch e < 2: 0.1 (e + 1)/3; then the cosine over the 4 epochs left.
        let cosine = |t: f64| 0.01 + 0.09 * (1.0 + (std::f64::consts::PI * t / 4.0).cos()) / 2.0;
        let expect = [
            0.1 / 3.0,
            0.2 / 3.0,
            0.1,
            cosine(1.0),
            cosine(2.0),
            cosine(3.0),
        ];
        for (got, want) in lrs(&session).iter().zip(expect) {
            assert!((got - want).abs() < 1e-16, "{:?}", lrs(&session));
        }
        // A fit that resumes goes on at lr_min, the cosine's end.
        assert!((session.next_lr().unwrap() - 0.01).abs() < 1e-17);
        let resume = FitConfig {
            epochs: 2,
            warmup_epochs: 0,
            resume: true,
            ..cfg.clone()
        };
        train(&spec, &mut params, &x, &y, &resume, &mut session).unwrap();
        assert_eq!(&lrs(&session)[6..], &[session.next_lr().unwrap(); 2]);
        // A warm-up multiplies lr_decay's rate.
        let mut session = Session::new(Rng::new(0));
        let decayed = FitConfig {
            epochs: 4,
            lr: 0.1,
            lr_decay: 0.5,
            warmup_epochs: 3,
            ..FitConfig::default()
        };
        train(&spec, &mut params, &x, &y, &decayed, &mut session).unwrap();
        let expect = [0.1 / 4.0, 0.05 * 2.0 / 4.0, 0.025 * 3.0 / 4.0, 0.0125];
        for (got, want) in lrs(&session).iter().zip(expect) {
            assert!((got - want).abs() < 1e-17, "{:?}", lrs(&session));
        }
    }

    /// A monitor that sets the rate after given epochs.
    struct Setter(Vec<(usize, f64)>, usize);
    impl<T> Monitor<T> for Setter {
        fn after_epoch(&mut self, r: &EpochReport, _: &[ParamsMut<'_, T>], _: &Session<T>) -> bool {
            self.1 = r.epoch;
            true
        }
        fn lr_request(&mut self) -> Option<f64> {
            self.0
                .iter()
                .find(|&&(e, _)| e == self.1)
                .map(|&(_, lr)| lr)
        }
    }

    #[test]
    fn a_rate_set_by_the_monitor_takes_over_from_the_schedule() {
        let (spec, start, x, y) = problem(30);
        let run = |cfg: &FitConfig, sets: Vec<(usize, f64)>| {
            let mut params = start.clone();
            let mut pm: Vec<ParamsMut<'_, f64>> = params.iter_mut().map(|p| p.view_mut()).collect();
            let mut session = Session::new(Rng::new(0));
            let targets = Targets::Classes(&y);
            let data = Examples {
                x: MatRef::new(&x, y.len(), 4),
                y: &targets,
                weights: None,
            };
            let mut monitor = Setter(sets, 0);
            fit(&spec, &mut pm, data, None, cfg, &mut session, &mut monitor).unwrap();
            lrs(&session)
        };
        // lr_decay goes on from the rate set.
        let decayed = FitConfig {
            epochs: 4,
            lr: 0.1,
            lr_decay: 0.5,
            ..FitConfig::default()
        };
        assert_eq!(run(&decayed, vec![(2, 0.5)]), [0.1, 0.05, 0.5, 0.25]);
        // The cosine and the warm-up end.
        let cosine = FitConfig {
            epochs: 5,
            warmup_epochs: 2,
            schedule: Schedule::Cosine,
            ..FitConfig::default()
        };
        assert_eq!(&run(&cosine, vec![(1, 0.3)])[1..], [0.3; 4]);
    }

    #[test]
    fn resumed_fits_are_one_longer_fit() {
        // Three one-epoch fits that resume equal one three-epoch fit, Adam's moments, the
        // adaptive rate and the stopping count included; fresh fits do not.
        let (spec, start, x, y) = problem(40);
        let cfg = FitConfig {
            epochs: 1,
            optimizer: OptimizerKind::Adam,
            lr: 0.05,
            shuffle: false,
            n_iter_no_change: Some(1),
            tol: 10.0,
            schedule: Schedule::Adaptive,
            ..FitConfig::default()
        };
        let (mut parts, mut session) = (start.clone(), Session::new(Rng::new(0)));
        train(&spec, &mut parts, &x, &y, &cfg, &mut session).unwrap();
        let resume = FitConfig {
            resume: true,
            ..cfg.clone()
        };
        for _ in 0..2 {
            train(&spec, &mut parts, &x, &y, &resume, &mut session).unwrap();
        }
        let (mut whole, mut one) = (start.clone(), Session::new(Rng::new(0)));
        let long = FitConfig {
            epochs: 3,
            ..cfg.clone()
        };
        train(&spec, &mut whole, &x, &y, &long, &mut one).unwrap();
        assert_eq!(parts, whole);
        assert_eq!(session.history(), one.history());
        assert_eq!(session.next_lr(), one.next_lr());
        let (mut fresh, mut again) = (start, Session::new(Rng::new(0)));
        for _ in 0..3 {
            train(&spec, &mut fresh, &x, &y, &cfg, &mut again).unwrap();
        }
        assert_ne!(fresh, whole);
    }

    /// A regression problem whose squared loss a large rate makes explode.
    fn exploding(n: usize) -> (Spec, Weights<f32>, Vec<f32>, Vec<f32>) {
        let spec = Spec::new(&[4, 16, 1], Hidden::Activation(Activation::Relu), Loss::Mse)
            .expect("valid sizes");
        let mut rng = Rng::new(5);
        let params = spec.init_params(None, &mut rng).unwrap();
        let x: Vec<f32> = (0..n * 4).map(|_| rng.normal() as f32).collect();
        let t: Vec<f32> = x.chunks(4).map(|r| r.iter().sum()).collect();
        (spec, params, x, t)
    }

    fn train_values(
        spec: &Spec,
        params: &mut [crate::network::Owned<f32>],
        x: &[f32],
        t: &[f32],
        cfg: &FitConfig,
        session: &mut Session<f32>,
    ) -> Result<usize> {
        let mut pm: Vec<ParamsMut<'_, f32>> = params.iter_mut().map(|p| p.view_mut()).collect();
        let n = t.len();
        let targets = Targets::Values(MatRef::new(t, n, 1));
        let x = MatRef::new(x, n, 4);
        let data = Examples {
            x,
            y: &targets,
            weights: None,
        };
        fit(spec, &mut pm, data, None, cfg, session, &mut Silent)
    }

    #[test]
    fn a_diverging_fit_stops_with_the_weights_of_the_step_before() {
        let (spec, start, x, t) = exploding(64);
        let cfg = FitConfig {
            epochs: 30,
            batch_size: 64,
            lr: 10.0,
            ..FitConfig::default()
        };
        let (mut params, mut session) = (start.clone(), Session::new(Rng::new(0)));
        let e = train_values(&spec, &mut params, &x, &t, &cfg, &mut session).unwrap_err();
        let Error::Diverged { epoch, step, .. } = e else {
            panic!("{e}")
        };
        // One step per epoch: the weights are those after epoch `step - 1`, finite, and
        // the session counts the epochs before the failing one.
        assert_eq!(epoch, step);
        assert!(step > 1, "{e}");
        assert!(params.iter().all(|p| p.all_finite()));
        assert_eq!(session.history().epochs.len(), step - 1);
        let (mut before, mut other) = (start, Session::new(Rng::new(0)));
        let shorter = FitConfig {
            epochs: step as i64 - 1,
            ..cfg
        };
        train_values(&spec, &mut before, &x, &t, &shorter, &mut other).unwrap();
        assert_eq!(params, before);
        assert!(e.to_string().contains("smaller learning rate"), "{e}");
    }

    #[test]
    fn an_update_that_overflows_is_undone_by_running_again() {
        // float32: an epoch at lr = 1e-3, then lr = 3.3e38 (lr_decay), whose first update
        // overflows the weights although the loss before it was finite.
        let (spec, start, x, t) = exploding(64);
        let cfg = FitConfig {
            epochs: 2,
            batch_size: 16,
            lr: 1e-3,
            lr_decay: 3.3e41,
            shuffle: true,
            seed: Some(4),
            ..FitConfig::default()
        };
        let (mut params, mut session) = (start.clone(), Session::new(Rng::new(0)));
        let e = train_values(&spec, &mut params, &x, &t, &cfg, &mut session).unwrap_err();
        let Error::Diverged { epoch, step, .. } = e else {
            panic!("{e}")
        };
        assert_eq!((epoch, step), (2, 5), "{e}");
        assert!(e.to_string().contains("an update"), "{e}");
        // The weights are exactly those after epoch 1 (4 steps), and the session's.
        let (mut one, mut other) = (start, Session::new(Rng::new(0)));
        let first = FitConfig { epochs: 1, ..cfg };
        train_values(&spec, &mut one, &x, &t, &first, &mut other).unwrap();
        assert_eq!(params, one);
        assert_eq!(session.history(), other.history());
        assert_eq!(session.samples_seen(), 64);
    }

    #[test]
    fn an_overflow_after_a_rate_set_by_the_monitor_is_undone_with_that_rate() {
        // As above, the huge rate set by the monitor after epoch 1 instead of by lr_decay:
        // running again from the start sets it at the same point.
        let (spec, start, x, t) = exploding(64);
        let cfg = FitConfig {
            epochs: 2,
            batch_size: 16,
            lr: 1e-3,
            seed: Some(4),
            ..FitConfig::default()
        };
        let (mut params, mut session) = (start.clone(), Session::new(Rng::new(0)));
        let mut pm: Vec<ParamsMut<'_, f32>> = params.iter_mut().map(|p| p.view_mut()).collect();
        let targets = Targets::Values(MatRef::new(&t, 64, 1));
        let data = Examples {
            x: MatRef::new(&x, 64, 4),
            y: &targets,
            weights: None,
        };
        let mut monitor = Setter(vec![(1, 3.3e38)], 0);
        let e = fit(&spec, &mut pm, data, None, &cfg, &mut session, &mut monitor);
        let e = e.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Diverged {
                    epoch: 2,
                    step: 5,
                    ..
                }
            ),
            "{e}"
        );
        drop(pm);
        let (mut one, mut other) = (start, Session::new(Rng::new(0)));
        let first = FitConfig { epochs: 1, ..cfg };
        train_values(&spec, &mut one, &x, &t, &first, &mut other).unwrap();
        assert_eq!(params, one);
        assert_eq!(session.history(), other.history());
        assert_eq!(session.next_lr(), Some(3.3e38));
    }

    #[test]
    fn a_refused_fit_leaves_params_and_session_as_they_were() {
        // A NaN in the last rows of a large X is found by the first epoch, after steps have
        // run: the weights and the session go back.
        let spec = Spec::new(
            &[64, 8, 2],
            Hidden::Activation(Activation::Relu),
            Loss::Softmax,
        )
        .expect("valid sizes");
        let mut rng = Rng::new(1);
        let mut params: Vec<crate::network::Owned<f64>> = spec.init_params(None, &mut rng).unwrap();
        let n = 70_000;
        let mut x: Vec<f64> = (0..n * 64).map(|i| ((i % 13) as f64 - 6.0) / 7.0).collect();
        x[n * 64 - 1] = f64::NAN;
        let y: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
        let mut session = Session::new(Rng::new(9));
        let before = (params.clone(), session.clone());
        let mut pm: Vec<ParamsMut<'_, f64>> = params.iter_mut().map(|p| p.view_mut()).collect();
        let targets = Targets::Classes(&y);
        let cfg = FitConfig {
            epochs: 2,
            ..FitConfig::default()
        };
        let e = fit(
            &spec,
            &mut pm,
            Examples {
                x: MatRef::new(&x, n, 64),
                y: &targets,
                weights: None,
            },
            None,
            &cfg,
            &mut session,
            &mut Silent,
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .starts_with("X: expected finite values")
        );
        drop(pm);
        assert_eq!(params, before.0);
        assert_eq!(session.samples_seen(), 0);
        assert_eq!(
            session.rng_mut().next_u64(),
            before.1.clone().rng_mut().next_u64()
        );
    }
}
