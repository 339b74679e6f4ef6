//! `MLP.fit`: its keyword arguments, the bridge from the core's training loop back to
//! Python (signals, progress, callbacks), and the run itself.
//!
//! Training runs on a worker thread with the GIL released; the calling thread, which Python
//! delivers signals to, polls for them a few times a second and raises a stop flag that the
//! loop checks after every step. After every epoch the worker briefly takes the GIL to call
//! the progress printer (`verbose=True`) and the user's callbacks.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mlpfast_core::train::{self, EpochReport, FitConfig, Monitor, Schedule, Stopping};
use mlpfast_core::{MatRef, OptimState, Optimizer, pool};
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{self, DType, Elem};
use crate::error::{IntoPyResult, to_py};
use crate::layers::Typed;
use crate::model::{MutGuard, PyMLP, metric_name, owned_targets, with_targets};

/// How often the main thread looks for signals while a fit runs.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

thread_local! {
    /// The interrupt flag of the fit whose callbacks this thread is running, if any: a fit
    /// started from such a callback stops too when the outer one is interrupted (Python
    /// hears of Ctrl-C on the main thread only, which polls for the outer fit).
    static OUTER_STOP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// `fit`'s numeric and named settings, as given.
pub(crate) struct Args<'a> {
    pub epochs: i64,
    pub batch_size: i64,
    pub optimizer: &'a str,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub lr_decay: f64,
    pub shuffle: bool,
    pub betas: (f64, f64),
    pub eps: f64,
    pub schedule: &'a str,
    pub power_t: f64,
    pub tol: f64,
    pub n_iter_no_change: Option<i64>,
    pub l2_per_sample: bool,
}

/// `fit`'s settings, checked.
pub(crate) struct Checked {
    cfg: FitConfig,
    optimizer: Optimizer,
}

impl Args<'_> {
    /// Checks every setting, before any work: a refused call changes nothing.
    pub(crate) fn check(self) -> PyResult<Checked> {
        if self.epochs < 0 {
            return Err(PyValueError::new_err(format!(
                "epochs: expected an integer >= 0, got {}",
                self.epochs
            )));
        }
        if self.batch_size < 1 {
            return Err(PyValueError::new_err(format!(
                "batch_size: expected an integer >= 1, got {}",
                self.batch_size
            )));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(PyValueError::new_err(format!(
                "momentum: expected a number in [0, 1), got {}",
                self.momentum
            )));
        }
        let optimizer = match self.optimizer {
            "sgd" => Optimizer::Sgd {
                momentum: self.momentum,
                nesterov: self.nesterov,
            },
            "adam" => Optimizer::Adam {
                beta1: self.betas.0,
                beta2: self.betas.1,
                eps: self.eps,
            },
            other => {
                return Err(PyValueError::new_err(format!(
                    "optimizer: expected one of {}, got {other:?}",
                    mlpfast_core::optim::OPTIMIZER_NAMES
                )));
            }
        };
        optimizer.validate().py()?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(PyValueError::new_err(format!(
                "lr: expected a positive finite number, got {}",
                self.lr
            )));
        }
        let schedule = match self.schedule {
            "constant" => Schedule::Constant,
            "invscaling" => Schedule::InvScaling {
                power_t: self.power_t,
            },
            "adaptive" => Schedule::Adaptive,
            other => {
                return Err(PyValueError::new_err(format!(
                    "schedule: expected one of constant, invscaling, adaptive, got {other:?}"
                )));
            }
        };
        let stopping = match self.n_iter_no_change {
            None => None,
            Some(n) if n < 1 => {
                return Err(PyValueError::new_err(format!(
                    "n_iter_no_change: expected an integer >= 1 or None, got {n}"
                )));
            }
            Some(n) => Some(Stopping {
                tol: self.tol,
                n_iter_no_change: n as usize,
                restore_best: true,
            }),
        };
        let mut cfg = FitConfig::new(self.epochs as usize, self.batch_size as usize, self.lr);
        cfg.weight_decay = self.weight_decay;
        cfg.lr_decay = self.lr_decay;
        cfg.shuffle = self.shuffle;
        cfg.l2_per_sample = self.l2_per_sample;
        cfg.schedule = schedule;
        cfg.stopping = stopping;
        cfg.validate().py()?;
        Ok(Checked { cfg, optimizer })
    }
}

/// The `callbacks` argument as a list of callables.
pub(crate) fn callbacks(obj: Option<Bound<'_, PyAny>>) -> PyResult<Vec<Py<PyAny>>> {
    let Some(obj) = obj else {
        return Ok(Vec::new());
    };
    let items: Vec<Bound<'_, PyAny>> = if obj.is_callable() {
        vec![obj]
    } else {
        obj.try_iter()
            .map_err(|_| {
                PyTypeError::new_err("callbacks: expected a callable or a list of callables")
            })?
            .collect::<PyResult<_>>()?
    };
    items
        .into_iter()
        .map(|c| {
            if c.is_callable() {
                Ok(c.unbind())
            } else {
                Err(PyTypeError::new_err(format!(
                    "callbacks: expected callables, got {}",
                    c.get_type().name()?
                )))
            }
        })
        .collect()
}

/// Hears the core's training loop on the worker thread.
struct PyMonitor<'a> {
    metric: &'static str,
    /// Epochs completed, so that an interrupted fit still counts the samples it trained on.
    epochs_done: usize,
    /// `mlpfast._progress.Progress` when verbose, then the user's callbacks.
    listeners: Vec<Py<PyAny>>,
    stop: Arc<AtomicBool>,
    error: &'a Mutex<Option<PyErr>>,
}

impl PyMonitor<'_> {
    fn fail(&self, e: PyErr) -> bool {
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
        self.stop.store(true, Ordering::Relaxed);
        false
    }

    /// The epoch's figures as the dict listeners receive.
    fn info<'py>(&self, py: Python<'py>, r: &EpochReport) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let rate = r.samples as f64 * r.epoch as f64 / r.elapsed.max(1e-9);
        d.set_item("epoch", r.epoch)?;
        d.set_item("epochs", r.epochs)?;
        d.set_item("loss", r.loss)?;
        if let (Some(vl), Some(vm)) = (r.val_loss, r.val_metric) {
            d.set_item("val_loss", vl)?;
            d.set_item(self.metric, vm)?;
        }
        d.set_item("lr", r.lr)?;
        d.set_item("elapsed", r.elapsed)?;
        d.set_item("samples_per_second", rate)?;
        let remaining = r.elapsed / r.epoch as f64 * (r.epochs - r.epoch) as f64;
        d.set_item("remaining", remaining)?;
        Ok(d)
    }
}

impl Monitor for PyMonitor<'_> {
    fn after_step(&mut self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn interrupt(&self) -> Option<Arc<AtomicBool>> {
        Some(Arc::clone(&self.stop))
    }

    fn epoch_trained(&mut self, epoch: usize) {
        self.epochs_done = epoch;
    }

    fn after_epoch(&mut self, r: &EpochReport) -> bool {
        if !self.listeners.is_empty() {
            let outer = OUTER_STOP.with(|o| o.replace(Some(Arc::clone(&self.stop))));
            let heard = Python::attach(|py| -> PyResult<bool> {
                let info = self.info(py, r)?;
                let mut go_on = true;
                for f in &self.listeners {
                    // Exactly False stops; None (a function without return) goes on.
                    let answer = f.bind(py).call1((&info,))?;
                    if answer.is_instance_of::<pyo3::types::PyBool>()
                        && !answer.extract::<bool>()?
                    {
                        go_on = false;
                    }
                }
                Ok(go_on)
            });
            OUTER_STOP.with(|o| o.replace(outer));
            match heard {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => return self.fail(e),
            }
        }
        !self.stop.load(Ordering::Relaxed)
    }
}

/// Runs `fit` on `model` and returns the history dict.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit<'py>(
    model: &mut PyMLP,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    seed: Option<u64>,
    validation: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    mut args: Checked,
    verbose: bool,
    callbacks: Vec<Py<PyAny>>,
    continue_optimizer: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let py = x.py();
    let metric = metric_name(model.spec.loss());
    let mut listeners = Vec::new();
    let progress = if verbose {
        let progress = py
            .import("mlpfast._progress")?
            .getattr("Progress")?
            .call1((args.cfg.epochs, metric))?;
        listeners.push(progress.clone().unbind());
        Some(progress)
    } else {
        None
    };
    listeners.extend(callbacks);
    // The model's generator moves on only once training has run, so a refused call leaves
    // the model exactly as it was.
    let drawn = seed.is_none();
    args.cfg.seed = seed.unwrap_or_else(|| model.rng.clone().next_u64());
    args.cfg.samples_seen = model.samples_seen;
    let has_validation = validation.is_some();
    let history = match model.dtype {
        DType::F32 => fit_typed::<f32>(
            model,
            x,
            y,
            validation,
            &args,
            listeners,
            continue_optimizer,
        ),
        DType::F64 => fit_typed::<f64>(
            model,
            x,
            y,
            validation,
            &args,
            listeners,
            continue_optimizer,
        ),
    };
    // The progress bar ends with training, also when it stopped early or failed.
    if let Some(p) = progress {
        p.call_method0("close")?;
    }
    let history = history?;
    if drawn {
        model.rng.next_u64();
    }
    model.next_lr = Some(history.next_lr);
    model.stopped_early = history.stopped_early;
    let out = PyDict::new(py);
    out.set_item("loss", PyList::new(py, &history.loss)?)?;
    if has_validation {
        out.set_item("val_loss", PyList::new(py, &history.val_loss)?)?;
        out.set_item(metric, PyList::new(py, &history.val_metric)?)?;
    }
    Ok(out)
}

/// The optimizer state to train with: the last fit's when asked to continue it and it was
/// made for the same optimizer, fresh otherwise.
fn take_optim<T: Elem>(
    model: &mut PyMLP,
    kind: Optimizer,
    sizes: &[(usize, usize)],
    continue_optimizer: bool,
) -> OptimState<T> {
    let kept = model.optim.take().and_then(|t| match t {
        Typed::F32(s) => (Box::new(s) as Box<dyn std::any::Any>)
            .downcast::<OptimState<T>>()
            .ok(),
        Typed::F64(s) => (Box::new(s) as Box<dyn std::any::Any>)
            .downcast::<OptimState<T>>()
            .ok(),
    });
    match kept {
        Some(state) if continue_optimizer && state.kind() == kind => *state,
        _ => OptimState::new(kind, sizes),
    }
}

fn keep_optim<T: Elem>(model: &mut PyMLP, state: OptimState<T>) {
    let any: Box<dyn std::any::Any> = Box::new(state);
    model.optim = match any.downcast::<OptimState<f32>>() {
        Ok(s) => Some(Typed::F32(*s)),
        Err(any) => any
            .downcast::<OptimState<f64>>()
            .ok()
            .map(|s| Typed::F64(*s)),
    };
}

fn fit_typed<'py, T: Elem>(
    model: &mut PyMLP,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    validation: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    args: &Checked,
    listeners: Vec<Py<PyAny>>,
    continue_optimizer: bool,
) -> PyResult<train::History> {
    let py = x.py();
    let (d, k, loss) = (model.spec.inputs(), model.spec.outputs(), model.spec.loss());
    let xa = convert::matrix::<T>(x, "X", Some(d))?;
    let n = xa.shape()[0];
    let targets = owned_targets::<T>(loss, y, "y", n, k)?;
    let val = match &validation {
        Some((xv, yv)) => {
            let xva = convert::matrix::<T>(xv, "validation_data X", Some(d))?;
            let nv = xva.shape()[0];
            let tv = owned_targets::<T>(loss, yv, "validation_data y", nv, k)?;
            Some((xva, tv))
        }
        None => None,
    };
    let xr = xa.readonly();
    let xm = MatRef::new(xr.as_slice()?, n, d);
    let mut guards = model.mut_guards(py)?;
    let mut params = guards
        .iter_mut()
        .map(MutGuard::params::<T>)
        .collect::<PyResult<Vec<_>>>()?;
    let sizes: Vec<(usize, usize)> = params
        .iter()
        .map(|p| (p.weight.len(), p.bias.len()))
        .collect();
    let mut optim = take_optim::<T>(model, args.optimizer, &sizes, continue_optimizer);
    let stop = Arc::new(AtomicBool::new(false));
    let error = Mutex::new(None);
    let mut monitor = PyMonitor {
        metric: metric_name(loss),
        epochs_done: 0,
        listeners,
        stop: Arc::clone(&stop),
        error: &error,
    };
    let spec = &model.spec;
    let cfg = &args.cfg;
    let outer = OUTER_STOP.with(|o| o.borrow().clone());
    let poll = || {
        if outer.as_ref().is_some_and(|o| o.load(Ordering::Relaxed)) {
            stop.store(true, Ordering::Relaxed);
        } else if let Err(e) = Python::attach(|py| py.check_signals()) {
            *error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
            stop.store(true, Ordering::Relaxed);
        }
    };
    let result = with_targets!(&targets, t => {
        match &val {
            Some((xva, tv)) => {
                let xvr = xva.readonly();
                let xvm = MatRef::new(xvr.as_slice()?, xva.shape()[0], d);
                with_targets!(tv, vt => py.detach(|| pool::run_polling(
                    || train::fit(spec, &mut params, xm, &t, Some((xvm, vt)), cfg, &mut optim, &mut monitor),
                    poll,
                    SIGNAL_POLL,
                )))
            }
            None => py.detach(|| pool::run_polling(
                || train::fit(spec, &mut params, xm, &t, None, cfg, &mut optim, &mut monitor),
                poll,
                SIGNAL_POLL,
            )),
        }
    });
    drop(params);
    drop(guards);
    keep_optim(model, optim);
    model.samples_seen = match &result {
        Ok(history) => history.samples_seen,
        // Interrupted: the completed epochs still trained on their samples.
        Err(_) => model.samples_seen + (monitor.epochs_done * n) as u64,
    };
    // A signal (or a failing callback) seen at an epoch boundary ends training "normally" as
    // far as the core knows; it is still the caller's exception.
    if let Some(e) = error.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(e);
    }
    result.map_err(to_py)
}
