//! `MLP`: a stack of layer objects that can also hand a whole training run to Rust.
//!
//! The layers in `MLP.layers` are ordinary `Linear` / `Maxout` / activation objects and they
//! are the model's parameters. `forward`, `backward` and `loss` chain their gate methods,
//! as the lecture does by hand. `fit`, `predict` and `score` borrow the layers' parameter
//! memory and run the core's fused network code on it with the GIL released; fit checks
//! for Ctrl-C a few times a second between steps.

use std::any::Any;

use mlpfast_core::metrics;
use mlpfast_core::{
    Activation, Block, Hidden, Linear, Loss, MatRef, Maxout, OptimState, ParamsMut, ParamsRef, Rng,
    Spec,
};
use numpy::{PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::activations::PyActivation;
use crate::convert::{self, DType, Elem, Kinds};
use crate::error::IntoPyResult;
use crate::fit;
use crate::layers::{ParamLayer, PyLinear, PyMaxout, Slot, SlotPair, Typed, typed};
use crate::losses;

/// One entry of `MLP.layers`.
enum LayerObj {
    Linear(Py<PyLinear>),
    Maxout(Py<PyMaxout>),
    Act(Py<PyActivation>),
}

/// A parameter layer's slot of dtype `T`, found by downcast (the MLP built it in its dtype).
fn slot_ref<T: Elem, L: ParamLayer<T>>(any: &dyn Any) -> PyResult<&Slot<L, T>> {
    any.downcast_ref::<Slot<L, T>>()
        .ok_or_else(|| PyTypeError::new_err("layer dtype differs from the model's"))
}

fn slot_mut<T: Elem, L: ParamLayer<T>>(any: &mut dyn Any) -> PyResult<&mut Slot<L, T>> {
    any.downcast_mut::<Slot<L, T>>()
        .ok_or_else(|| PyTypeError::new_err("layer dtype differs from the model's"))
}

/// Shared borrows of the parameter layers, for inference.
enum RefGuard<'py> {
    Linear(PyRef<'py, PyLinear>),
    Maxout(PyRef<'py, PyMaxout>),
}

impl RefGuard<'_> {
    fn params<T: Elem>(&self) -> PyResult<ParamsRef<'_, T>> {
        let (weight, bias) = match self {
            RefGuard::Linear(g) => slot_ref::<T, Linear<T>>(g.slot.as_any())?.layer.params(),
            RefGuard::Maxout(g) => slot_ref::<T, Maxout<T>>(g.slot.as_any())?.layer.params(),
        };
        Ok(ParamsRef { weight, bias })
    }
}

/// Exclusive borrows of the parameter layers, for training.
pub(crate) enum MutGuard<'py> {
    Linear(PyRefMut<'py, PyLinear>),
    Maxout(PyRefMut<'py, PyMaxout>),
}

impl MutGuard<'_> {
    pub(crate) fn params<T: Elem>(&mut self) -> PyResult<ParamsMut<'_, T>> {
        let (weight, bias) = match self {
            MutGuard::Linear(g) => slot_mut::<T, Linear<T>>(g.slot.as_any_mut())?
                .layer
                .params_mut(),
            MutGuard::Maxout(g) => slot_mut::<T, Maxout<T>>(g.slot.as_any_mut())?
                .layer
                .params_mut(),
        };
        Ok(ParamsMut { weight, bias })
    }
}

/// Targets converted for the core: class indices or a value matrix.
pub(crate) enum OwnedTargets<'py, T> {
    Classes(Vec<u32>),
    Values(Bound<'py, PyArray2<T>>),
}

pub(crate) fn owned_targets<'py, T: Elem>(
    loss: Loss,
    y: &Bound<'py, PyAny>,
    arg: &str,
    rows: usize,
    outputs: usize,
) -> PyResult<OwnedTargets<'py, T>> {
    Ok(match loss {
        Loss::Softmax | Loss::Svm { .. } => {
            OwnedTargets::Classes(convert::labels(y, arg, rows, outputs)?)
        }
        Loss::Mse | Loss::HalfSquared => {
            OwnedTargets::Values(convert::targets(y, arg, rows, outputs, Kinds::Numeric)?)
        }
        Loss::Bce => OwnedTargets::Values(convert::targets(y, arg, rows, outputs, Kinds::Labels)?),
    })
}

/// Runs `$body` with `$t` a view of the owned targets.
macro_rules! with_targets_impl {
    ($owned:expr, $t:ident => $body:expr) => {{
        match $owned {
            $crate::model::OwnedTargets::Classes(c) => {
                let $t = mlpfast_core::Targets::Classes(c);
                $body
            }
            $crate::model::OwnedTargets::Values(v) => {
                let ro = v.readonly();
                let s = ro.as_slice()?;
                let $t = mlpfast_core::Targets::Values(mlpfast_core::MatRef::new(
                    s,
                    v.shape()[0],
                    v.shape()[1],
                ));
                $body
            }
        }
    }};
}
pub(crate) use with_targets_impl as with_targets;

/// A multilayer perceptron: `layer_sizes = [inputs, hidden..., outputs]`.
#[pyclass(name = "MLP", module = "mlpfast")]
pub struct PyMLP {
    pub(crate) spec: Spec,
    pub(crate) dtype: DType,
    sizes: Vec<usize>,
    activation: String,
    layers: Vec<LayerObj>,
    pub(crate) rng: Rng,
    /// Optimizer state of the last fit, for a fit that continues it.
    pub(crate) optim: Option<Typed<OptimState<f32>, OptimState<f64>>>,
    /// Samples trained on, over all fits.
    pub(crate) samples_seen: u64,
    /// The learning rate the next epoch of the last fit would have used.
    pub(crate) next_lr: Option<f64>,
    /// Whether the stopping rule ended the last fit.
    pub(crate) stopped_early: bool,
}

impl PyMLP {
    fn build<T: Elem>(py: Python<'_>, spec: &Spec, rng: &mut Rng) -> PyResult<Vec<LayerObj>> {
        let params = spec.init_params::<T>(None, rng);
        let last = spec.blocks().len() - 1;
        let mut layers = Vec::new();
        for (i, (block, (weight, bias))) in spec.blocks().iter().zip(params).enumerate() {
            match *block {
                Block::Dense {
                    inputs,
                    outputs,
                    act,
                } => {
                    let layer = Linear {
                        inputs,
                        outputs,
                        grad_weight: vec![T::ZERO; weight.len()],
                        grad_bias: vec![T::ZERO; bias.len()],
                        weight,
                        bias,
                    };
                    let slot = SlotPair::from_layer(layer);
                    layers.push(LayerObj::Linear(Py::new(py, PyLinear { slot })?));
                    if i < last {
                        layers.push(LayerObj::Act(PyActivation::instance(py, act)?));
                    }
                }
                Block::Maxout {
                    inputs,
                    outputs,
                    pieces,
                } => {
                    let layer = Maxout {
                        inputs,
                        outputs,
                        pieces,
                        grad_weight: vec![T::ZERO; weight.len()],
                        grad_bias: vec![T::ZERO; bias.len()],
                        weight,
                        bias,
                    };
                    let slot = SlotPair::from_layer(layer);
                    layers.push(LayerObj::Maxout(Py::new(py, PyMaxout { slot })?));
                }
            }
        }
        Ok(layers)
    }

    fn ref_guards<'py>(&self, py: Python<'py>) -> Vec<RefGuard<'py>> {
        self.layers
            .iter()
            .filter_map(|l| match l {
                LayerObj::Linear(p) => Some(RefGuard::Linear(p.bind(py).borrow())),
                LayerObj::Maxout(p) => Some(RefGuard::Maxout(p.bind(py).borrow())),
                LayerObj::Act(_) => None,
            })
            .collect()
    }

    pub(crate) fn mut_guards<'py>(&self, py: Python<'py>) -> PyResult<Vec<MutGuard<'py>>> {
        self.layers
            .iter()
            .filter_map(|l| match l {
                LayerObj::Linear(p) => Some(p.bind(py).try_borrow_mut().map(MutGuard::Linear)),
                LayerObj::Maxout(p) => Some(p.bind(py).try_borrow_mut().map(MutGuard::Maxout)),
                LayerObj::Act(_) => None,
            })
            .map(|g| g.map_err(PyErr::from))
            .collect()
    }

    /// Scores (N, outputs) for X, by the core's fused inference with the GIL released.
    fn scores<'py, T: Elem>(&self, x: &Bound<'py, PyAny>) -> PyResult<(usize, Vec<T>)> {
        let py = x.py();
        let xa = convert::matrix::<T>(x, "X", Some(self.spec.inputs()))?;
        let rows = xa.shape()[0];
        let ro = xa.readonly();
        let xs = ro.as_slice()?;
        let guards = self.ref_guards(py);
        let params = guards
            .iter()
            .map(RefGuard::params::<T>)
            .collect::<PyResult<Vec<_>>>()?;
        let mut out = vec![T::ZERO; rows * self.spec.outputs()];
        let spec = &self.spec;
        let xm = MatRef::new(xs, rows, spec.inputs());
        py.detach(|| spec.predict_scores(&params, xm, &mut out))
            .py()?;
        Ok((rows, out))
    }

    fn predict_typed<'py, T: Elem>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = x.py();
        let (rows, scores) = self.scores::<T>(x)?;
        let k = self.spec.outputs();
        Ok(match self.spec.loss() {
            Loss::Mse | Loss::HalfSquared => convert::new_array(py, (rows, k), scores).into_any(),
            Loss::Bce => {
                let labels: Vec<i64> = scores.iter().map(|&z| i64::from(z > T::ZERO)).collect();
                if k == 1 {
                    numpy::PyArray1::from_vec(py, labels).into_any()
                } else {
                    let arr =
                        numpy::ndarray::Array2::from_shape_vec((rows, k), labels).expect("shape");
                    numpy::PyArray2::from_owned_array(py, arr).into_any()
                }
            }
            Loss::Softmax | Loss::Svm { .. } => {
                let labels: Vec<i64> = scores
                    .chunks_exact(k)
                    .map(|r| metrics::argmax(r) as i64)
                    .collect();
                numpy::PyArray1::from_vec(py, labels).into_any()
            }
        })
    }

    fn predict_proba_typed<'py, T: Elem>(
        &self,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = x.py();
        let k = self.spec.outputs();
        match self.spec.loss() {
            Loss::Softmax => {
                let (rows, mut scores) = self.scores::<T>(x)?;
                mlpfast_core::loss::softmax_rows(&mut scores, k);
                Ok(convert::new_array(py, (rows, k), scores).into_any())
            }
            Loss::Bce => {
                let (rows, mut scores) = self.scores::<T>(x)?;
                Activation::Sigmoid.forward_inplace(&mut scores);
                if k == 1 {
                    let both: Vec<T> = scores.iter().flat_map(|&p| [T::ONE - p, p]).collect();
                    Ok(convert::new_array(py, (rows, 2), both).into_any())
                } else {
                    Ok(convert::new_array(py, (rows, k), scores).into_any())
                }
            }
            other => Err(PyValueError::new_err(format!(
                "predict_proba: expected a model with loss 'softmax' or 'bce', this one has loss '{}'",
                other.name()
            ))),
        }
    }

    fn score_typed<T: Elem>(&self, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<f64> {
        let (rows, scores) = self.scores::<T>(x)?;
        let k = self.spec.outputs();
        let owned = owned_targets::<T>(self.spec.loss(), y, "y", rows, k)?;
        let s = MatRef::new(&scores, rows, k);
        Ok(with_targets!(&owned, t => metrics::score(self.spec.loss(), s, &t)))
    }
}

/// `obj` as a finite (N, cols) matrix of `T` (errors name `arg`).
fn checked_matrix<'py, T: Elem>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    cols: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let m = convert::matrix::<T>(obj, arg, Some(cols))?;
    convert::check_finite(m.readonly().as_slice()?, arg)?;
    Ok(m.into_any())
}

/// The history key of the validation metric.
pub(crate) fn metric_name(loss: Loss) -> &'static str {
    if matches!(loss, Loss::Mse | Loss::HalfSquared) {
        "val_r2"
    } else {
        "val_accuracy"
    }
}

fn parse_sizes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    let raw: Vec<i64> = obj.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "layer_sizes: expected a sequence of integers, got {}",
            obj.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })?;
    if raw.len() < 2 {
        return Err(PyValueError::new_err(format!(
            "layer_sizes: expected at least two sizes [inputs, ..., outputs], got {raw:?}"
        )));
    }
    if let Some(bad) = raw.iter().find(|&&s| s < 1) {
        return Err(PyValueError::new_err(format!(
            "layer_sizes: expected sizes >= 1, got {bad} in {raw:?}"
        )));
    }
    Ok(raw.into_iter().map(|s| s as usize).collect())
}

#[pymethods]
impl PyMLP {
    #[new]
    #[pyo3(
        signature = (layer_sizes, *, activation = "relu", loss = "softmax", dtype = DType::F32, seed = None),
        text_signature = "(layer_sizes, *, activation='relu', loss='softmax', dtype='float32', seed=None)"
    )]
    fn new(
        py: Python<'_>,
        layer_sizes: &Bound<'_, PyAny>,
        activation: &str,
        loss: &str,
        dtype: DType,
        seed: Option<u64>,
    ) -> PyResult<Self> {
        let sizes = parse_sizes(layer_sizes)?;
        let hidden = match activation {
            "maxout" => Hidden::Maxout(2),
            name => Hidden::Activation(Activation::from_name(name).map_err(|_| {
                PyValueError::new_err(format!(
                    "activation: expected one of {}, maxout, got {name:?}",
                    mlpfast_core::activation::ACTIVATION_NAMES
                ))
            })?),
        };
        let loss = Loss::from_name(loss).py()?;
        let spec = Spec::new(&sizes, hidden, loss).py()?;
        let mut rng = seed.map_or_else(Rng::from_entropy, Rng::new);
        let layers = match dtype {
            DType::F32 => Self::build::<f32>(py, &spec, &mut rng)?,
            DType::F64 => Self::build::<f64>(py, &spec, &mut rng)?,
        };
        Ok(PyMLP {
            spec,
            dtype,
            sizes,
            activation: activation.to_owned(),
            layers,
            rng,
            optim: None,
            samples_seen: 0,
            next_lr: None,
            stopped_early: false,
        })
    }

    /// The layers, input side first; they hold the model's parameters.
    #[getter]
    fn layers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.layers.iter().map(|l| match l {
                LayerObj::Linear(p) => p.clone_ref(py).into_any(),
                LayerObj::Maxout(p) => p.clone_ref(py).into_any(),
                LayerObj::Act(p) => p.clone_ref(py).into_any(),
            }),
        )
    }

    /// [inputs, hidden..., outputs].
    #[getter]
    fn layer_sizes(&self) -> Vec<usize> {
        self.sizes.clone()
    }

    /// The hidden activation's name.
    #[getter]
    fn activation(&self) -> &str {
        &self.activation
    }

    /// The loss's name.
    #[getter]
    fn loss_name(&self) -> &'static str {
        self.spec.loss().name()
    }

    /// "float32" or "float64".
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
    }

    /// Scores for X (N, inputs), through every layer's forward (each keeps what backward needs).
    #[pyo3(name = "forward")]
    #[allow(non_snake_case)]
    fn forward_py<'py>(&self, X: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = X.py();
        // Converted and checked here, so that errors name X; the first layer then takes the
        // converted array as it is.
        let mut h = match self.dtype {
            DType::F32 => checked_matrix::<f32>(X, "X", self.spec.inputs())?,
            DType::F64 => checked_matrix::<f64>(X, "X", self.spec.inputs())?,
        };
        for layer in &self.layers {
            h = match layer {
                LayerObj::Linear(p) => {
                    typed!(&mut p.bind(py).borrow_mut().slot, s => s.forward(&h)?.into_any())
                }
                LayerObj::Maxout(p) => {
                    typed!(&mut p.bind(py).borrow_mut().slot, s => s.forward(&h)?.into_any())
                }
                LayerObj::Act(p) => p.bind(py).borrow_mut().forward(&h)?,
            };
        }
        Ok(h)
    }

    /// dX for dscores, through every layer's backward in reverse, filling every grad_*.
    #[pyo3(name = "backward")]
    fn backward_py<'py>(&self, dscores: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = dscores.py();
        let k = self.spec.outputs();
        let rows = match self.layers.last() {
            Some(LayerObj::Linear(p)) => typed!(&p.bind(py).borrow().slot, s => s.cached_rows(py)),
            _ => None,
        };
        let Some(rows) = rows else {
            return Err(PyValueError::new_err(
                "backward: called before forward (nothing to differentiate at)",
            ));
        };
        let mut d = match self.dtype {
            DType::F32 => checked_matrix::<f32>(dscores, "dscores", k)?,
            DType::F64 => checked_matrix::<f64>(dscores, "dscores", k)?,
        };
        let got: Vec<usize> = d
            .extract::<Bound<'_, numpy::PyUntypedArray>>()?
            .shape()
            .to_vec();
        if got[0] != rows {
            return Err(PyValueError::new_err(format!(
                "dscores: expected shape ({rows}, {k}) (the shape of forward's output), got {}",
                mlpfast_core::error::fmt_shape(&got)
            )));
        }
        for layer in self.layers.iter().rev() {
            d = match layer {
                LayerObj::Linear(p) => {
                    typed!(&mut p.bind(py).borrow_mut().slot, s => s.backward(&d)?.into_any())
                }
                LayerObj::Maxout(p) => {
                    typed!(&mut p.bind(py).borrow_mut().slot, s => s.backward(&d)?.into_any())
                }
                LayerObj::Act(p) => p.bind(py).borrow().backward(&d)?,
            };
        }
        Ok(d)
    }

    /// (loss, grads): the mean data loss on (X, y) and [(grad_weight, grad_bias), ...] for
    /// every parameter layer, by forward, loss and backward through the layers.
    #[allow(non_snake_case)]
    fn loss<'py>(
        &self,
        X: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<(f64, Bound<'py, PyList>)> {
        let py = X.py();
        let scores = self.forward_py(X)?;
        let (value, dscores) = losses::apply(self.spec.loss(), &scores, y)?;
        self.backward_py(&dscores)?;
        let grads = PyList::empty(py);
        for layer in &self.layers {
            let pair = match layer {
                LayerObj::Linear(p) => {
                    typed!(&p.bind(py).borrow().slot, s => (s.grad(py, 0), s.grad(py, 1)))
                }
                LayerObj::Maxout(p) => {
                    typed!(&p.bind(py).borrow().slot, s => (s.grad(py, 0), s.grad(py, 1)))
                }
                LayerObj::Act(_) => continue,
            };
            grads.append(pair)?;
        }
        Ok((value, grads))
    }

    /// Trains in one call into Rust; returns the per-epoch history.
    ///
    /// optimizer "sgd" (momentum, nesterov, as PyTorch) or "adam" (betas, eps); weight_decay
    /// adds ½λ‖W‖² over the weights; lr is multiplied by lr_decay after every epoch, and moved
    /// by `schedule` ("constant"; "invscaling": lr / (t + 1)^power_t with t the samples seen;
    /// "adaptive": divided by 5 where training would stop). With n_iter_no_change set,
    /// training stops when the validation score (with validation_data, whose best weights are
    /// restored at the end) or the training loss has not improved by more than tol for more
    /// than that many epochs. callbacks (a callable or a list) get a dict of each epoch's
    /// figures; one returning False stops training. verbose prints a line per epoch.
    #[pyo3(signature = (
        X, y, *, epochs = 10, batch_size = 64, optimizer = "sgd", lr = 0.01, momentum = 0.0,
        nesterov = false, weight_decay = 0.0, lr_decay = 1.0, shuffle = true, seed = None,
        validation_data = None, verbose = false, betas = (0.9, 0.999), eps = 1e-8,
        callbacks = None, schedule = "constant", power_t = 0.5, tol = 1e-4,
        n_iter_no_change = None, _l2_per_sample = false, _continue_optimizer = false
    ))]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn fit<'py>(
        &mut self,
        X: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        epochs: i64,
        batch_size: i64,
        optimizer: &str,
        lr: f64,
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
        lr_decay: f64,
        shuffle: bool,
        seed: Option<u64>,
        validation_data: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
        verbose: bool,
        betas: (f64, f64),
        eps: f64,
        callbacks: Option<Bound<'py, PyAny>>,
        schedule: &str,
        power_t: f64,
        tol: f64,
        n_iter_no_change: Option<i64>,
        _l2_per_sample: bool,
        _continue_optimizer: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let args = fit::Args {
            epochs,
            batch_size,
            optimizer,
            lr,
            momentum,
            nesterov,
            weight_decay,
            lr_decay,
            shuffle,
            betas,
            eps,
            schedule,
            power_t,
            tol,
            n_iter_no_change,
            l2_per_sample: _l2_per_sample,
        }
        .check()?;
        let callbacks = fit::callbacks(callbacks)?;
        fit::fit(
            self,
            X,
            y,
            seed,
            validation_data,
            args,
            verbose,
            callbacks,
            _continue_optimizer,
        )
    }

    /// Samples trained on, over all fits so far.
    #[getter]
    fn samples_seen(&self) -> u64 {
        self.samples_seen
    }

    /// The learning rate the next epoch of the last fit would have used (None before a fit).
    #[getter]
    fn learning_rate(&self) -> Option<f64> {
        self.next_lr
    }

    /// True when the stopping rule (n_iter_no_change) ended the last fit early.
    #[getter]
    fn stopped_early(&self) -> bool {
        self.stopped_early
    }

    /// Class indices (softmax, svm), 0/1 (bce), or raw outputs (mse).
    #[allow(non_snake_case)]
    fn predict<'py>(&self, X: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match self.dtype {
            DType::F32 => self.predict_typed::<f32>(X),
            DType::F64 => self.predict_typed::<f64>(X),
        }
    }

    /// Raw scores (N, outputs) of the last layer, by the fused inference path: nothing is
    /// kept for backward, so it can run while other threads use the model.
    #[allow(non_snake_case)]
    fn decision_function<'py>(&self, X: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = X.py();
        let k = self.spec.outputs();
        Ok(match self.dtype {
            DType::F32 => {
                let (rows, s) = self.scores::<f32>(X)?;
                convert::new_array(py, (rows, k), s).into_any()
            }
            DType::F64 => {
                let (rows, s) = self.scores::<f64>(X)?;
                convert::new_array(py, (rows, k), s).into_any()
            }
        })
    }

    /// Class probabilities: softmax (N, C); bce with one output (N, 2) = [1 − p, p].
    #[allow(non_snake_case)]
    fn predict_proba<'py>(&self, X: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match self.dtype {
            DType::F32 => self.predict_proba_typed::<f32>(X),
            DType::F64 => self.predict_proba_typed::<f64>(X),
        }
    }

    /// Accuracy (classification) or R² averaged over outputs (mse).
    #[allow(non_snake_case)]
    fn score(&self, X: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<f64> {
        match self.dtype {
            DType::F32 => self.score_typed::<f32>(X, y),
            DType::F64 => self.score_typed::<f64>(X, y),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "MLP({:?}, activation='{}', loss='{}', dtype='{}')",
            self.sizes,
            self.activation,
            self.spec.loss().name(),
            self.dtype.name()
        )
    }
}
