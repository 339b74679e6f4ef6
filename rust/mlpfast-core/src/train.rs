//! The training loop: shuffle, gather a batch, forward, loss, backward, optimizer step.
//!
//! One call trains for all epochs. Every per-batch buffer is allocated once, before the first
//! step; when the data is not shuffled the batches are views of `x`, not copies. The epoch
//! loss is the mean over all samples of each batch's loss (plus the L2 term when weight decay
//! is on), i.e. batch losses weighted by batch size. What a fit changes besides the
//! parameters — optimizer state, learning rate, stopping rule, samples seen, history — is
//! the [`Session`]'s. A [`Monitor`] hears about every step and every epoch and may stop
//! training between steps, leaving the weights of the last completed step.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::config::FitConfig;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::Targets;
use crate::matrix::MatRef;
use crate::metrics::score;
use crate::network::{Params, ParamsMut, Spec, check_values, non_finite};
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
}

/// A monitor that never stops training.
pub struct Silent;
impl<T> Monitor<T> for Silent {}

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

/// Trains the network whose parameters are `params` on (`x`, `y`), in place, continuing
/// `session`; returns the number of epochs run.
///
/// Everything is validated before the first step, except the finiteness of a large `x`,
/// which the first epoch checks as it reads the rows: on any input error the parameters and
/// the session are as they were before the call.
#[allow(clippy::too_many_arguments)]
pub fn fit<T: Float>(
    spec: &Spec,
    params: &mut [ParamsMut<'_, T>],
    x: MatRef<'_, T>,
    y: &Targets<'_, T>,
    validation: Option<(MatRef<'_, T>, Targets<'_, T>)>,
    cfg: &FitConfig,
    session: &mut Session<T>,
    monitor: &mut (dyn Monitor<T> + Send),
) -> Result<usize> {
    cfg.validate()?;
    spec.check_params(params)?;
    spec.check_shape("X", x)?;
    // A large X is checked for NaN and infinity as the first epoch gathers it (every row
    // passes once, in cache), rather than by a pass of its own; if one turns up, the weights
    // and the session go back to where they were. Otherwise: one scan, up front.
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

    let (seed, rng) = session.seed_for(cfg);
    let run = session.begin(cfg, validation.is_some(), params);
    // What to go back to if the first epoch finds NaN or infinity in X.
    let undo = lazy.then(|| {
        let weights: Weights<T> = params
            .iter()
            .map(|p| (p.weight.to_vec(), p.bias.to_vec()))
            .collect();
        (weights, run.clone())
    });
    let flag = monitor.interrupt();
    let mut team = Team::new(Kind::Fit, flag.as_deref());
    let mut state = State {
        run,
        seed,
        undo,
        stopped_early: false,
        epochs: 0,
    };
    let result = train_loop(
        &mut team,
        spec,
        params,
        x,
        y,
        &validation,
        cfg,
        session,
        monitor,
        &mut state,
    );
    match result {
        Err(Error::Value { .. }) if state.undo.is_some() => {
            // NaN in X, found by the first epoch: as if the call had never happened.
            let (weights, run) = state.undo.take().expect("checked by the guard");
            for (p, (w, b)) in params.iter_mut().zip(weights) {
                p.weight.copy_from_slice(&w);
                p.bias.copy_from_slice(&b);
            }
            session.cancel(run);
            result.map(|()| 0)
        }
        _ => {
            session.end(state.run, rng, state.stopped_early);
            result.map(|()| state.epochs)
        }
    }
}

/// Every block's weights and biases, copied.
type Weights<T> = Vec<(Vec<T>, Vec<T>)>;

/// A fit's running state.
struct State<T> {
    run: Run<T>,
    seed: u64,
    /// The weights and the session's run as they were, while X is not known to be finite.
    undo: Option<(Weights<T>, Run<T>)>,
    stopped_early: bool,
    epochs: usize,
}

#[allow(clippy::too_many_arguments)]
fn train_loop<T: Float>(
    team: &mut Team<'_>,
    spec: &Spec,
    params: &mut [ParamsMut<'_, T>],
    x: MatRef<'_, T>,
    y: &Targets<'_, T>,
    validation: &Option<(MatRef<'_, T>, Targets<'_, T>)>,
    cfg: &FitConfig,
    session: &mut Session<T>,
    monitor: &mut (dyn Monitor<T> + Send),
    state: &mut State<T>,
) -> Result<()> {
    let n = x.rows();
    let (epochs, batch_size) = cfg.counts();
    let b = batch_size.min(n);
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
    let mut rng = Rng::new(state.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let keep_best = cfg.restore_best && validation.is_some();
    let start = Instant::now();

    for epoch in 1..=epochs {
        if cfg.shuffle {
            rng.shuffle(&mut order);
        }
        let lr = state.run.rate.now;
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
            let check = state.undo.is_some();
            // The pacer hears of this step's jobs alone (not of a validation pass before it).
            team.take_stats();
            let started = Instant::now();
            let optim = &mut state.run.optim;
            let loss = match trainer.step(team, spec, params, batch, optim, lr, decay, check) {
                Stepped::Loss(loss) => loss,
                Stepped::Interrupted => return Err(Error::Interrupted),
                Stepped::NonFinite => return Err(non_finite("X")),
            };
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
        state.undo = None;
        let mut record = EpochRecord {
            loss: epoch_loss / n as f64,
            val_loss: None,
            val_metric: None,
            lr,
        };
        state.epochs = epoch;
        session.epoch_done(record.clone(), n);
        if let Some((xv, yv)) = validation {
            let (vl, vm) = evaluate_on(Some(team), spec, params, *xv, yv)?;
            record.val_loss = Some(vl);
            record.val_metric = Some(vm);
            session.set_last_validation(vl, vm);
        }
        state.run.rate.epoch_done(session.samples_seen());
        let mut stop = false;
        if let Some(patience) = cfg.patience() {
            let watch = &mut state.run.watch;
            if watch.no_improvement(cfg.tol, patience, &record, keep_best, params) {
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
        if !monitor.after_epoch(&report, params, session) || stop {
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
        let params = spec.init_params(None, &mut rng);
        let x: Vec<f64> = (0..n * 4).map(|_| rng.normal()).collect();
        let y: Vec<u32> = (0..n)
            .map(|i| (x[4 * i] > 0.0) as u32 + (x[4 * i + 1] > 0.5) as u32)
            .collect();
        (spec, params, x, y)
    }

    fn train(
        spec: &Spec,
        params: &mut [(Vec<f64>, Vec<f64>)],
        x: &[f64],
        y: &[u32],
        cfg: &FitConfig,
        session: &mut Session<f64>,
    ) -> Result<usize> {
        let mut pm: Vec<ParamsMut<'_, f64>> = params
            .iter_mut()
            .map(|(w, b)| ParamsMut { weight: w, bias: b })
            .collect();
        let n = y.len();
        let targets = Targets::Classes(y);
        fit(
            spec,
            &mut pm,
            MatRef::new(x, n, 4),
            &targets,
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
        let mut params: Vec<(Vec<f64>, Vec<f64>)> = spec.init_params(None, &mut rng);
        let n = 70_000;
        let mut x: Vec<f64> = (0..n * 64).map(|i| ((i % 13) as f64 - 6.0) / 7.0).collect();
        x[n * 64 - 1] = f64::NAN;
        let y: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
        let mut session = Session::new(Rng::new(9));
        let before = (params.clone(), session.clone());
        let mut pm: Vec<ParamsMut<'_, f64>> = params
            .iter_mut()
            .map(|(w, b)| ParamsMut { weight: w, bias: b })
            .collect();
        let targets = Targets::Classes(&y);
        let cfg = FitConfig {
            epochs: 2,
            ..FitConfig::default()
        };
        let e = fit(
            &spec,
            &mut pm,
            MatRef::new(&x, n, 64),
            &targets,
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
