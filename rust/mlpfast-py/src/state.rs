//! A model's state in its dtype: its parameter layers' storage and its training session.
//!
//! [`Model`] is what `MLP` holds in each arm of its dtype enum. Its layers' storage is shared
//! with the `Linear` / `Maxout` objects (see `layers`); reading it takes every layer's lock in
//! order, and a fit's publication takes them all for writing, so a reader never sees a mix of
//! two epochs. While a fit runs ([`Model::begin_fit`]), the layers hand out copies instead of
//! live views, for the same reason.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLockReadGuard, RwLockWriteGuard};

use mlpfast_core::network::Owned;
use mlpfast_core::{MatRef, Params, ParamsMut, ParamsRef, Rng, Session, Spec, alloc};
use numpy::ndarray::IxDyn;
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::batchnorm::{NormCell, NormState};
use crate::convert::{self, Elem};
use crate::error::IntoPyResult;
use crate::layers::{CellState, LayerCell, Part};

/// One parameter layer's storage, shared with its Python object: a matrix layer's
/// (`Linear`, `Maxout`) or a batch normalization's.
pub(crate) enum Cell<T> {
    Layer(Arc<LayerCell<T>>),
    Norm(Arc<NormCell<T>>),
}

/// A cell's lock, held to read.
pub(crate) enum Held<'a, T> {
    Layer(RwLockReadGuard<'a, CellState<T>>),
    Norm(RwLockReadGuard<'a, NormState<T>>),
}

impl<T: Elem> Held<'_, T> {
    /// The parameters (and state), for the core's network code.
    pub(crate) fn params(&self) -> ParamsRef<'_, T> {
        match self {
            Held::Layer(s) => s.params(),
            Held::Norm(s) => ParamsRef {
                weight: &s.layer.weight,
                bias: &s.layer.bias,
                state: &s.layer.running,
            },
        }
    }

    /// Whether this is a matrix layer's (whose weights weight decay applies to).
    pub(crate) fn is_matrix(&self) -> bool {
        matches!(self, Held::Layer(_))
    }
}

impl<T: Elem> Cell<T> {
    /// The lock, to read (take it with the GIL released).
    pub(crate) fn read(&self) -> Held<'_, T> {
        match self {
            Cell::Layer(c) => Held::Layer(c.read()),
            Cell::Norm(c) => Held::Norm(c.read()),
        }
    }

    fn set_in_fit(&self, on: bool) {
        match self {
            Cell::Layer(c) => c.set_in_fit(on),
            Cell::Norm(c) => c.set_in_fit(on),
        }
    }

    fn shape(&self, which: Part) -> Vec<usize> {
        match self {
            Cell::Layer(c) => c.shape(which),
            Cell::Norm(c) => vec![c.features],
        }
    }
}

/// A cell's lock, held to write.
enum HeldMut<'a, T> {
    Layer(RwLockWriteGuard<'a, CellState<T>>),
    Norm(RwLockWriteGuard<'a, NormState<T>>),
}

impl<T: Elem> HeldMut<'_, T> {
    fn params_mut(&mut self) -> ParamsMut<'_, T> {
        match self {
            HeldMut::Layer(s) => {
                let (weight, bias) = s.params_mut();
                ParamsMut {
                    weight,
                    bias,
                    state: &mut [],
                }
            }
            HeldMut::Norm(s) => {
                let layer = &mut s.layer;
                ParamsMut {
                    weight: &mut layer.weight,
                    bias: &mut layer.bias,
                    state: &mut layer.running,
                }
            }
        }
    }
}

/// A model in its dtype: the parameter layers' storage, and the training session.
pub(crate) struct Model<T> {
    cells: Vec<Cell<T>>,
    session: Mutex<Session<T>>,
    /// A fit is running.
    training: AtomicBool,
    /// A learning rate set while a fit runs, for its next epochs (see [`Model::set_lr`]).
    lr_request: Mutex<Option<f64>>,
}

/// A running fit's hold on its model: while it lives, a second fit is refused and the
/// layers hand out copies of the published epoch (see `layers`).
pub(crate) struct FitGuard<'a, T: Elem>(&'a Model<T>);

impl<T: Elem> Drop for FitGuard<'_, T> {
    fn drop(&mut self) {
        for cell in &self.0.cells {
            cell.set_in_fit(false);
        }
        self.0.training.store(false, Ordering::Release);
    }
}

impl<T: Elem> Model<T> {
    /// Every layer's parameters, read-locked in order, for one consistent read (take them
    /// with the GIL released).
    pub(crate) fn read_all(&self) -> Vec<Held<'_, T>> {
        self.cells.iter().map(|c| c.read()).collect()
    }

    /// Marks the model as training, or `None` when a fit is running already.
    pub(crate) fn begin_fit(&self) -> Option<FitGuard<'_, T>> {
        if self.training.swap(true, Ordering::AcqRel) {
            return None;
        }
        for cell in &self.cells {
            cell.set_in_fit(true);
        }
        Some(FitGuard(self))
    }

    /// Every layer's (weight, bias) as new arrays — (weight, bias, running_mean,
    /// running_var) for a batch normalization — read at one moment (during a fit: one
    /// published epoch), for save and pickle.
    pub(crate) fn param_arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let copies = py.detach(|| self.copy_params()).py()?;
        // What is written must load again, and loading refuses non-finite parameters.
        if let Some(i) = copies.iter().position(|p| !p.all_finite()) {
            return Err(PyValueError::new_err(format!(
                "param_layers[{i}]: expected finite weights, biases and running statistics to save, \
                 got NaN or infinity \
                 (written into a weight, bias or running statistics view?)"
            )));
        }
        // ... and negative running variances.
        let negative_var = |p: &Owned<T>| {
            let var = &p.state[p.state.len() / 2..];
            var.iter().any(|v| v.to_f64() < 0.0)
        };
        if let Some(i) = copies.iter().position(negative_var) {
            return Err(PyValueError::new_err(format!(
                "param_layers[{i}]: expected running variances >= 0 to save, got a negative \
                 one (written into the running_var view?)"
            )));
        }
        let items = self
            .cells
            .iter()
            .zip(copies)
            .map(|(cell, p)| -> PyResult<Bound<'py, PyAny>> {
                let w = convert::new_array(py, IxDyn(&cell.shape(Part::Weight)), p.weight);
                let b = convert::new_array(py, IxDyn(&cell.shape(Part::Bias)), p.bias);
                if p.state.is_empty() {
                    return Ok((w, b).into_pyobject(py)?.into_any());
                }
                let mut state = p.state;
                let var = state.split_off(state.len() / 2);
                let mean = convert::new_array(py, IxDyn(&[var.len()]), state);
                let var = convert::new_array(py, IxDyn(&[var.len()]), var);
                Ok((w, b, mean, var).into_pyobject(py)?.into_any())
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// A copy of every layer's parameters and state.
    pub(crate) fn copy_params(&self) -> mlpfast_core::Result<Vec<Owned<T>>> {
        self.read_all()
            .iter()
            .map(|s| Owned::copy_of(&s.params()))
            .collect()
    }

    /// Copies `params` into the layers, all layers write-locked in order so that no reader
    /// sees a mix of two epochs (take it with the GIL released).
    pub(crate) fn publish(&self, params: &[impl Params<T>]) {
        let mut held: Vec<HeldMut<'_, T>> = self
            .cells
            .iter()
            .map(|c| match c {
                Cell::Layer(c) => HeldMut::Layer(c.write()),
                Cell::Norm(c) => HeldMut::Norm(c.write()),
            })
            .collect();
        for (state, p) in held.iter_mut().zip(params) {
            let dst = state.params_mut();
            dst.weight.copy_from_slice(p.weight());
            dst.bias.copy_from_slice(p.bias());
            dst.state.copy_from_slice(p.state());
        }
    }

    /// The session as bytes, for pickle (while a fit runs: as of its last completed epoch,
    /// without the optimizer state that fit holds).
    pub(crate) fn session_bytes(&self) -> Vec<u8> {
        self.session().to_bytes()
    }

    /// Replaces the session by the one `bytes` hold (written by [`Model::session_bytes`] for
    /// a model of these shapes); refused while a fit runs, which owns the session.
    pub(crate) fn restore_session(&self, bytes: &[u8]) -> PyResult<()> {
        let lens: Vec<(usize, usize, usize)> = self
            .read_all()
            .iter()
            .map(|s| {
                let p = s.params();
                (p.weight.len(), p.bias.len(), p.state.len())
            })
            .collect();
        let session = Session::from_bytes(bytes, &lens).py()?;
        if self.training.load(Ordering::Acquire) {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "the model is training: its session cannot be replaced until the fit ends",
            ));
        }
        *self.session() = session;
        Ok(())
    }

    /// The session (while a fit runs: as of its last completed epoch).
    pub(crate) fn session(&self) -> MutexGuard<'_, Session<T>> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the learning rate (checked by the caller): while a fit runs, that of its epochs
    /// after the one in progress (the fit takes it at that epoch's end, after the callbacks);
    /// otherwise what a fit with `resume=True` continues with. False when there is neither
    /// (a model never fitted).
    pub(crate) fn set_lr(&self, lr: f64) -> bool {
        // The session's lock first: a fit cannot take the session out meanwhile, so the
        // flag says who will use the rate.
        let mut session = self.session();
        if self.training.load(Ordering::Acquire) {
            *self
                .lr_request
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(lr);
            // What `learning_rate` reads back until the fit publishes it.
            session.set_lr(lr);
            true
        } else {
            session.set_lr(lr)
        }
    }

    /// The learning rate set while the fit runs, if any (taken: once).
    pub(crate) fn take_lr_request(&self) -> Option<f64> {
        self.lr_request
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Takes the session out of the model for a fit, leaving a snapshot for readers.
    pub(crate) fn begin_session(&self) -> Session<T> {
        let mut held = self.session();
        let snapshot = held.snapshot();
        std::mem::replace(&mut *held, snapshot)
    }

    /// Puts a fit's session back into the model; a rate set after the fit took its last
    /// one applies to it, for a fit that resumes.
    pub(crate) fn end_fit(&self, mut session: Session<T>) {
        let mut held = self.session();
        if let Some(lr) = self.take_lr_request() {
            session.set_lr(lr);
        }
        *held = session;
    }

    /// Scores (N, outputs) for X, by the core's fused inference with the GIL released.
    pub(crate) fn scores(&self, spec: &Spec, x: &Bound<'_, PyAny>) -> PyResult<(usize, Vec<T>)> {
        let py = x.py();
        let xa = convert::matrix::<T>(x, "X", Some(spec.inputs()))?;
        let rows = xa.shape()[0];
        let ro = xa.readonly();
        let xs = ro.as_slice()?;
        let xm = MatRef::new(xs, rows, spec.inputs());
        let mut out = alloc::zeros2(rows, spec.outputs(), "scores").py()?;
        py.detach(|| {
            let held = self.read_all();
            let params: Vec<ParamsRef<'_, T>> = held.iter().map(|s| s.params()).collect();
            spec.predict_scores(&params, xm, &mut out)
        })
        .py()?;
        Ok((rows, out))
    }
}

impl<T: Elem> Model<T> {
    /// A model of these layers, whose fits draw their seeds from `rng`.
    pub(crate) fn new(cells: Vec<Cell<T>>, rng: Rng) -> Self {
        Model {
            cells,
            session: Mutex::new(Session::new(rng)),
            training: AtomicBool::new(false),
            lr_request: Mutex::new(None),
        }
    }
}
