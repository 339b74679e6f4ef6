//! `MLP.fit`: its keyword arguments as a core `FitConfig`, the bridge from the core's training
//! loop back to Python (signals, progress, callbacks), and the run itself.
//!
//! **What a fit does to the model.** It trains on a working copy of the parameters and
//! publishes them into the model's layers at epoch ends — at every one when there are
//! callbacks, before they run; otherwise at the first one 10 ms after the last — and when it
//! ends (also by an error or Ctrl-C). So while a fit runs, the model — `layers[i].weight`,
//! `predict`, `score`, `mlpfast.save`, pickle — shows, in a callback, the epoch just
//! completed, and from another thread a completed epoch at most about 10 ms older than the
//! last. Meanwhile `weight` and `bias` are read-only copies taken under the layers' locks
//! (a view could show a publication half done); writes through views taken before do not
//! change the fit (the next publication overwrites them). The session (samples seen,
//! history) is published with the weights.
//!
//! Training runs on a worker thread with the GIL released; the calling thread, which Python
//! delivers signals to, polls for them a few times a second and raises a stop flag that the
//! loop checks between work items.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mlpfast_core::config::{OptimizerKind, Schedule};
use mlpfast_core::network::Owned;
use mlpfast_core::train::{self, EpochReport, Examples, Monitor};
use mlpfast_core::{FitConfig, MatRef, ParamsMut, Session, Spec, pool};
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args;
use crate::convert::{self, DType, Elem, for_dtype};
use crate::error::{IntoPyResult, to_py};
use crate::state::Model;
use crate::targets::{history_dict, metric_name, owned_targets, with_targets};

/// How often the main thread looks for signals while a fit runs.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// How stale the model may be, for readers in other threads, while a fit without callbacks
/// runs: it receives the working copy at the first epoch end this long after the last.
const PUBLISH_EVERY: Duration = Duration::from_millis(10);

thread_local! {
    /// The interrupt flag of the fit whose callbacks this thread is running, if any: a fit
    /// started from such a callback stops too when the outer one is interrupted (Python
    /// hears of Ctrl-C on the main thread only, which polls for the outer fit).
    static OUTER_STOP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// `fit`'s settings from its keyword arguments: the defaults of [`FitConfig`], each given
/// keyword set by [`set`], then the core's one validation. The estimators' private
/// `_l2_per_sample` flag comes this way too, so `MLP.fit` does not show it.
pub(crate) fn settings(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<FitConfig> {
    let mut cfg = FitConfig::default();
    if let Some(kwargs) = kwargs {
        for (key, value) in kwargs.iter() {
            set(&mut cfg, &key.extract::<String>()?, &value)?;
        }
    }
    cfg.validate().py()?;
    Ok(cfg)
}

/// The binding's one list of fit settings: sets the one named `key` (a keyword of `fit`).
/// A new setting is a field of [`FitConfig`] (with its default and its check in
/// `FitConfig::validate`), one line here, and its place in `fit`'s text signature.
fn set(cfg: &mut FitConfig, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
    // A value Python cannot convert names the argument: a TypeError for the wrong type, a
    // ValueError for an int out of range (a negative seed, an epoch count past i64).
    macro_rules! get {
        ($ty:ty) => {
            value.extract::<$ty>().map_err(|e| {
                let msg = format!("fit() argument '{key}': {}", e.value(value.py()));
                if e.is_instance_of::<PyTypeError>(value.py()) {
                    PyTypeError::new_err(msg)
                } else {
                    PyValueError::new_err(msg)
                }
            })?
        };
    }
    match key {
        "epochs" => cfg.epochs = args::int(value, key, "an int in [0, 2**63)")?,
        "batch_size" => cfg.batch_size = args::int(value, key, "an int in [1, 2**63)")?,
        "optimizer" => cfg.optimizer = OptimizerKind::from_name(&get!(String)).py()?,
        "lr" => cfg.lr = get!(f64),
        "momentum" => cfg.momentum = get!(f64),
        "nesterov" => cfg.nesterov = get!(bool),
        "weight_decay" => cfg.weight_decay = get!(f64),
        "lr_decay" => cfg.lr_decay = get!(f64),
        "shuffle" => cfg.shuffle = get!(bool),
        "seed" => cfg.seed = args::seed(Some(value))?,
        "betas" => cfg.betas = get!((f64, f64)),
        "eps" => cfg.eps = get!(f64),
        "alpha" => cfg.alpha = get!(f64),
        "clip_grad_norm" if value.is_none() => cfg.clip_grad_norm = None,
        "clip_grad_norm" => cfg.clip_grad_norm = Some(get!(f64)),
        "lr_min" => cfg.lr_min = get!(f64),
        "warmup_epochs" => cfg.warmup_epochs = args::int(value, key, "an int in [0, 2**63)")?,
        "schedule" => cfg.schedule = Schedule::from_name(&get!(String)).py()?,
        "power_t" => cfg.power_t = get!(f64),
        "tol" => cfg.tol = get!(f64),
        "n_iter_no_change" if value.is_none() => cfg.n_iter_no_change = None,
        "n_iter_no_change" => {
            cfg.n_iter_no_change = Some(args::int(value, key, "an int in [1, 2**63) or None")?);
        }
        "resume" => cfg.resume = get!(bool),
        // scikit-learn's alpha: a batch of n rows adds ½(λ/n)‖W‖² (the estimators').
        "_l2_per_sample" => cfg.l2_per_sample = value.is_truthy()?,
        // scikit-learn's regressor reports its loss averaged over the outputs.
        "_reported_data_scale" => cfg.reported_data_scale = get!(f64),
        other => {
            return Err(PyTypeError::new_err(format!(
                "fit() got an unexpected keyword argument '{other}'"
            )));
        }
    }
    Ok(())
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
struct PyMonitor<'a, T> {
    model: &'a Model<T>,
    /// The Python MLP, for the callbacks' `info["model"]`.
    obj: Py<PyAny>,
    metric: &'static str,
    /// `mlpfast._progress.Progress` when verbose, then the user's callbacks.
    listeners: Vec<Py<PyAny>>,
    stop: Arc<AtomicBool>,
    error: &'a Mutex<Option<PyErr>>,
    /// When the model last received the working copy.
    published: Instant,
}

impl<T> PyMonitor<'_, T> {
    fn fail(&self, e: PyErr) -> bool {
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
        self.stop.store(true, Ordering::Relaxed);
        false
    }

    /// The epoch's figures as the listeners receive them.
    fn info<'py>(&self, py: Python<'py>, r: &EpochReport) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let rate = r.samples as f64 * r.epoch as f64 / r.elapsed.max(1e-9);
        d.set_item("epoch", r.epoch)?;
        d.set_item("epochs", r.epochs)?;
        d.set_item("loss", r.record.loss)?;
        if let (Some(vl), Some(vm)) = (r.record.val_loss, r.record.val_metric) {
            d.set_item("val_loss", vl)?;
            d.set_item(self.metric, vm)?;
        }
        d.set_item("lr", r.record.lr)?;
        d.set_item("elapsed", r.elapsed)?;
        d.set_item("samples_per_second", rate)?;
        let remaining = r.elapsed / r.epoch as f64 * (r.epochs - r.epoch) as f64;
        d.set_item("remaining", remaining)?;
        d.set_item("model", self.obj.bind(py))?;
        Ok(d)
    }
}

impl<T: Elem> Monitor<T> for PyMonitor<'_, T> {
    fn after_step(&mut self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn interrupt(&self) -> Option<Arc<AtomicBool>> {
        Some(Arc::clone(&self.stop))
    }

    fn lr_request(&mut self) -> Option<f64> {
        self.model.take_lr_request()
    }

    fn after_epoch(
        &mut self,
        r: &EpochReport,
        params: &[ParamsMut<'_, T>],
        session: &Session<T>,
    ) -> bool {
        // The epoch's weights and figures go into the model before the callbacks look; for
        // readers in other threads, at most every PUBLISH_EVERY (a copy of every parameter
        // after each of many one-step epochs would cost a few percent of the fit).
        if !self.listeners.is_empty() || self.published.elapsed() >= PUBLISH_EVERY {
            self.model.publish(params);
            session.refresh(&mut self.model.session());
            self.published = Instant::now();
        }
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

/// The `validation_data` argument: `(X, y)` or `(X, y, sample_weight)`, as Keras takes it.
pub(crate) type Validation<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
);

/// `validation_data` split into its parts.
pub(crate) fn validation_parts<'py>(
    obj: Option<Bound<'py, PyAny>>,
) -> PyResult<Option<Validation<'py>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let bad = || {
        PyTypeError::new_err(format!(
            "validation_data: expected a tuple (X, y) or (X, y, sample_weight), got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    };
    if !(obj.is_instance_of::<pyo3::types::PyTuple>()
        || obj.is_instance_of::<pyo3::types::PyList>())
    {
        return Err(bad());
    }
    let parts: Vec<Bound<'py, PyAny>> = obj.try_iter()?.collect::<PyResult<_>>()?;
    match <[_; 2]>::try_from(parts) {
        Ok([x, y]) => Ok(Some((x, y, None))),
        Err(parts) => match <[_; 3]>::try_from(parts) {
            Ok([x, y, w]) => Ok(Some((x, y, Some(w).filter(|w| !w.is_none())))),
            Err(_) => Err(bad()),
        },
    }
}

/// Runs `fit` on `model` (of architecture `spec`, the Python object `obj`) and returns this
/// fit's history dict.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit<'py, T: Elem>(
    obj: &Bound<'py, PyAny>,
    spec: &Spec,
    model: &Model<T>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    sample_weight: Option<&Bound<'py, PyAny>>,
    validation: Option<Validation<'py>>,
    cfg: FitConfig,
    verbose: bool,
    callbacks: Vec<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let py = x.py();
    let (d, k, loss) = (spec.inputs(), spec.outputs(), spec.loss());
    let metric = metric_name(loss);
    let Some(_training) = model.begin_fit() else {
        return Err(PyRuntimeError::new_err(
            "fit: this model is training already (in another thread, or this is its own \
             callback); wait for that fit to end",
        ));
    };
    let xa = convert::matrix::<T>(x, "X", Some(d))?;
    let n = xa.shape()[0];
    let targets = owned_targets::<T>(loss, y, "y", n, k)?;
    let weights = convert::weights::<T>(sample_weight, "sample_weight", n)?;
    let val = match &validation {
        Some((xv, yv, wv)) => {
            let xva = convert::matrix::<T>(xv, "validation_data X", Some(d))?;
            let nv = xva.shape()[0];
            let tv = owned_targets::<T>(loss, yv, "validation_data y", nv, k)?;
            let wva = convert::weights::<T>(wv.as_ref(), "validation_data sample_weight", nv)?;
            Some((xva, tv, wva))
        }
        None => None,
    };
    let mut listeners = Vec::new();
    let progress = if verbose {
        let progress = py
            .import("mlpfast._progress")?
            .getattr("Progress")?
            .call1((cfg.epochs.max(0), metric))?;
        listeners.push(progress.clone().unbind());
        Some(progress)
    } else {
        None
    };
    listeners.extend(callbacks);
    let xr = xa.readonly();
    let xm = MatRef::new(xr.as_slice()?, n, d);
    let wr = weights.as_ref().map(|w| w.readonly());
    let w = wr.as_ref().map(|w| w.as_slice()).transpose()?;

    // The working copy, and the session taken out of the model (which keeps a snapshot).
    let mut work = py.detach(|| model.copy_params()).py()?;
    let mut session = model.begin_session();
    let before = session.history().epochs.len();
    let stop = Arc::new(AtomicBool::new(false));
    let error = Mutex::new(None);
    let mut monitor = PyMonitor {
        model,
        obj: obj.clone().unbind(),
        metric,
        listeners,
        stop: Arc::clone(&stop),
        error: &error,
        published: Instant::now(),
    };
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
        let data = Examples { x: xm, y: &t, weights: w };
        match &val {
            Some((xva, tv, wva)) => {
                let xvr = xva.readonly();
                let xvm = MatRef::new(xvr.as_slice()?, xva.shape()[0], d);
                let wvr = wva.as_ref().map(|w| w.readonly());
                let wv = wvr.as_ref().map(|w| w.as_slice()).transpose()?;
                with_targets!(tv, vt => py.detach(|| pool::run_polling(
                    || {
                        let mut params = mutable(&mut work);
                        let v = Some(Examples { x: xvm, y: &vt, weights: wv });
                        train::fit(spec, &mut params, data, v, &cfg, &mut session, &mut monitor)
                    },
                    poll,
                    SIGNAL_POLL,
                )))
            }
            None => py.detach(|| pool::run_polling(
                || {
                    let mut params = mutable(&mut work);
                    train::fit(spec, &mut params, data, None, &cfg, &mut session, &mut monitor)
                },
                poll,
                SIGNAL_POLL,
            )),
        }
    });
    // The weights as training left them (a refused fit left them as they were), and the
    // session back in the model.
    py.detach(|| model.publish(&mutable(&mut work)));
    let history = history_dict(
        py,
        session.history(),
        before,
        metric,
        (false, val.is_some()),
    )?;
    model.end_fit(session);
    // The progress bar ends with training, also when it stopped early or failed.
    if let Some(p) = progress {
        p.call_method0("close")?;
    }
    // A signal (or a failing callback) seen at an epoch boundary ends training "normally" as
    // far as the core knows; it is still the caller's exception.
    if let Some(e) = error.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(e);
    }
    result.map_err(to_py)?;
    Ok(history)
}

/// The working copy as the core's mutable parameter views.
fn mutable<T: Elem>(work: &mut [Owned<T>]) -> Vec<ParamsMut<'_, T>> {
    work.iter_mut().map(Owned::view_mut).collect()
}

/// `fit`'s defaults as a dict of its keyword arguments (those [`set`] takes, bar the private
/// ones), for the test that `fit`'s text signature states them truly.
#[pyfunction]
pub(crate) fn _fit_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = FitConfig::default();
    let out = PyDict::new(py);
    out.set_item("epochs", d.epochs)?;
    out.set_item("batch_size", d.batch_size)?;
    out.set_item("optimizer", d.optimizer.name())?;
    out.set_item("lr", d.lr)?;
    out.set_item("momentum", d.momentum)?;
    out.set_item("nesterov", d.nesterov)?;
    out.set_item("weight_decay", d.weight_decay)?;
    out.set_item("lr_decay", d.lr_decay)?;
    out.set_item("shuffle", d.shuffle)?;
    out.set_item("seed", d.seed)?;
    out.set_item("betas", d.betas)?;
    out.set_item("eps", d.eps)?;
    out.set_item("alpha", d.alpha)?;
    out.set_item("clip_grad_norm", d.clip_grad_norm)?;
    out.set_item("lr_min", d.lr_min)?;
    out.set_item("warmup_epochs", d.warmup_epochs)?;
    out.set_item("schedule", d.schedule.name())?;
    out.set_item("power_t", d.power_t)?;
    out.set_item("tol", d.tol)?;
    out.set_item("n_iter_no_change", d.n_iter_no_change)?;
    out.set_item("resume", d.resume)?;
    Ok(out)
}

/// Checks fit settings given as a dict of `fit`'s keyword arguments (the rest keep their
/// defaults) for a model of `dtype`, without fitting: the estimators call it before they
/// build a network. Raises the error `fit` would raise (a ValueError with its `arg`
/// attribute).
#[pyfunction]
pub(crate) fn _check_fit_settings(settings: &Bound<'_, PyDict>, dtype: DType) -> PyResult<()> {
    let cfg = self::settings(Some(settings))?;
    for_dtype!(dtype, T => cfg.validate_for::<T>()).py()
}
