//! `MLP`: a stack of layer objects that can also hand a whole training run to Rust.
//!
//! The model is one typed value, a [`Model`] in the dtype chosen at construction: the
//! parameter layers' storage (shared with the `Linear` / `Maxout` objects in `MLP.layers`, so
//! `model.layers[0].weight` is the model's first weight) and the training session (see `state`).
//! `forward`, `backward` and `loss` chain the layers' gate methods, as the lecture does by
//! hand; `fit`, `predict` and `score` run the core's fused network code on the layers'
//! storage with the GIL released (see `fit` for what a running fit shows of the model).

use std::sync::Arc;

use mlpfast_core::network::l2_term;
use mlpfast_core::{
    Activation, Block, Hidden, Linear, Loss, MatRef, Maxout, Rng, Spec, alloc, metrics,
};
use numpy::{PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::activations::PyActivation;
use crate::args;
use crate::batchnorm::{AnyNormCell, NormCell, PyBatchNorm};
use crate::convert::{self, ByDType, DType, Elem, Kinds, by_dtype, for_dtype};
use crate::dropout::PyDropout;
use crate::error::{IntoPyResult, guarded};
use crate::fit;
use crate::layers::{
    AnyCell, CoreLayer, LayerCell, PyLinear, PyMaxout, cell_backward, cell_forward,
};
use crate::losses;
use crate::mode::Mode;
use crate::state::{Cell, Model};
use crate::targets::{history_dict, metric_name, owned_targets, with_targets};

/// One entry of `MLP.layers`.
enum LayerObj {
    Linear(Py<PyLinear>),
    Maxout(Py<PyMaxout>),
    Norm(Py<PyBatchNorm>),
    Act(Py<PyActivation>),
    Dropout(Py<PyDropout>),
}

impl LayerObj {
    fn any(&self, py: Python<'_>) -> Py<PyAny> {
        match self {
            LayerObj::Linear(p) => p.clone_ref(py).into_any(),
            LayerObj::Maxout(p) => p.clone_ref(py).into_any(),
            LayerObj::Norm(p) => p.clone_ref(py).into_any(),
            LayerObj::Act(p) => p.clone_ref(py).into_any(),
            LayerObj::Dropout(p) => p.clone_ref(py).into_any(),
        }
    }
}

/// The Python objects of a model's layers, and its parameter layers' storage.
type Built<T> = (Vec<LayerObj>, Vec<Cell<T>>);

/// Builds the layers of `spec` in dtype `T` from `rng`: the Python objects and the storage
/// (`wrap` and `wrap_norm` put a cell into its dtype's arm).
fn build<T: Elem>(
    py: Python<'_>,
    spec: &Spec,
    rng: &mut Rng,
    wrap: fn(Arc<LayerCell<T>>) -> AnyCell,
    wrap_norm: fn(Arc<NormCell<T>>) -> AnyNormCell,
) -> PyResult<Built<T>> {
    let params = spec.init_params::<T>(None, rng).py()?;
    let last = spec.blocks().len() - 1;
    let (mut objs, mut cells) = (Vec::new(), Vec::new());
    for (i, (block, p)) in spec.blocks().iter().zip(params).enumerate() {
        let (weight, bias) = (p.weight, p.bias);
        let grad_weight = alloc::zeros(weight.len(), "weight gradients").py()?;
        let grad_bias = alloc::zeros(bias.len(), "bias gradients").py()?;
        // Before a normalization, the activation comes after it.
        let activated = i < last && !spec.feeds_norm(i);
        match *block {
            Block::Dense {
                inputs,
                outputs,
                act,
            } => {
                let cell = LayerCell::new(CoreLayer::Linear(Linear {
                    inputs,
                    outputs,
                    weight,
                    bias,
                    grad_weight,
                    grad_bias,
                }));
                let obj = PyLinear {
                    cell: wrap(Arc::clone(&cell)),
                    mode: Mode::default(),
                };
                objs.push(LayerObj::Linear(Py::new(py, obj)?));
                cells.push(Cell::Layer(cell));
                if activated {
                    objs.push(LayerObj::Act(PyActivation::instance(py, act)?));
                    push_dropout(py, spec, rng, &mut objs)?;
                }
            }
            Block::Norm { features, act } => {
                let layer = mlpfast_core::BatchNorm {
                    features,
                    weight,
                    bias,
                    running: p.state,
                    grad_weight,
                    grad_bias,
                    momentum: mlpfast_core::network::NORM_MOMENTUM,
                    eps: mlpfast_core::network::NORM_EPS,
                };
                let cell = NormCell::new(layer);
                let obj = PyBatchNorm {
                    cell: wrap_norm(Arc::clone(&cell)),
                    mode: Mode::default(),
                };
                objs.push(LayerObj::Norm(Py::new(py, obj)?));
                cells.push(Cell::Norm(cell));
                if act != Activation::Identity {
                    objs.push(LayerObj::Act(PyActivation::instance(py, act)?));
                }
                push_dropout(py, spec, rng, &mut objs)?;
            }
            Block::Maxout {
                inputs,
                outputs,
                pieces,
            } => {
                let cell = LayerCell::new(CoreLayer::Maxout(Maxout {
                    inputs,
                    outputs,
                    pieces,
                    weight,
                    bias,
                    grad_weight,
                    grad_bias,
                }));
                let obj = PyMaxout {
                    cell: wrap(Arc::clone(&cell)),
                    mode: Mode::default(),
                };
                objs.push(LayerObj::Maxout(Py::new(py, obj)?));
                cells.push(Cell::Layer(cell));
                if activated {
                    push_dropout(py, spec, rng, &mut objs)?;
                }
            }
        }
    }
    Ok((objs, cells))
}

/// With dropout, the `Dropout` layer after a hidden block (its own seed, for the layer API's
/// masks; `fit` draws its masks from the fit's seed).
fn push_dropout(
    py: Python<'_>,
    spec: &Spec,
    rng: &mut Rng,
    objs: &mut Vec<LayerObj>,
) -> PyResult<()> {
    if spec.dropout() > 0.0 {
        let layer = PyDropout::for_model(spec.dropout(), rng.next_u64())?;
        objs.push(LayerObj::Dropout(Py::new(py, layer)?));
    }
    Ok(())
}

fn parse_sizes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    let shown = || obj.repr().map(|r| r.to_string()).unwrap_or_default();
    let items: Vec<Bound<'_, PyAny>> = if obj.is_instance_of::<PyString>() {
        None
    } else {
        obj.try_iter()
            .ok()
            .and_then(|it| it.collect::<PyResult<_>>().ok())
    }
    .ok_or_else(|| {
        PyTypeError::new_err(format!(
            "layer_sizes: expected a sequence of ints, got {}",
            shown()
        ))
    })?;
    let expected = "a sequence of ints >= 1";
    let sizes = items
        .iter()
        .map(|s| args::int::<i128>(s, "layer_sizes", expected))
        .collect::<PyResult<Vec<i128>>>()?;
    if sizes.len() < 2 {
        return Err(PyValueError::new_err(format!(
            "layer_sizes: expected at least two sizes [inputs, ..., outputs], got {}",
            shown()
        )));
    }
    sizes
        .iter()
        .map(|&s| match usize::try_from(s) {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(PyValueError::new_err(format!(
                "layer_sizes: expected ints >= 1 (each a size that fits in memory), got {s} in {}",
                shown()
            ))),
        })
        .collect()
}

/// A multilayer perceptron: `layer_sizes = [inputs, hidden..., outputs]`; with `dropout=p`
/// a Dropout after every hidden activation, with `batch_norm=True` a BatchNorm after every
/// hidden layer (before its activation).
#[pyclass(frozen, name = "MLP", module = "mlpfast")]
pub struct PyMLP {
    pub(crate) spec: Spec,
    sizes: Vec<usize>,
    activation: String,
    layers: Vec<LayerObj>,
    pub(crate) model: ByDType<Model<f32>, Model<f64>>,
}

impl PyMLP {
    fn param_objects<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyAny>> {
        self.layers
            .iter()
            .filter_map(|l| match l {
                LayerObj::Linear(p) => Some(p.bind(py).clone().into_any()),
                LayerObj::Maxout(p) => Some(p.bind(py).clone().into_any()),
                LayerObj::Norm(p) => Some(p.bind(py).clone().into_any()),
                LayerObj::Act(_) | LayerObj::Dropout(_) => None,
            })
            .collect()
    }

    /// The scores of the gate chain's forward, through every layer object.
    fn forward_chain<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = x.py();
        let mut h = x.clone();
        let mut first = true;
        for layer in &self.layers {
            // The first parameter layer converts and checks X, so that errors name it.
            let arg = if first { "X" } else { "x" };
            h = match layer {
                LayerObj::Linear(p) => by_dtype!(&p.get().cell, c => cell_forward(c, &h, arg)?),
                LayerObj::Maxout(p) => by_dtype!(&p.get().cell, c => cell_forward(c, &h, arg)?),
                LayerObj::Norm(p) => p.bind(py).get().forward(&h)?,
                LayerObj::Act(p) => p.bind(py).get().forward(&h)?,
                LayerObj::Dropout(p) => p.bind(py).get().forward(&h)?,
            };
            first = false;
        }
        Ok(h)
    }

    fn backward_chain<'py>(&self, dscores: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = dscores.py();
        let k = self.spec.outputs();
        let rows = match self.layers.last() {
            Some(LayerObj::Linear(p)) => {
                by_dtype!(&p.get().cell, c => py.detach(|| c.cached_rows()))
            }
            _ => None,
        };
        let Some(rows) = rows else {
            return Err(PyValueError::new_err(
                "backward: called before forward (nothing to differentiate at)",
            ));
        };
        let shape = convert::as_numeric(dscores, "dscores", Kinds::Numeric)?
            .shape()
            .to_vec();
        if shape != [rows, k] {
            return Err(PyValueError::new_err(format!(
                "dscores: expected shape ({rows}, {k}) (the shape of forward's output), got {}",
                mlpfast_core::error::fmt_shape(&shape)
            )));
        }
        let mut d = dscores.clone();
        for layer in self.layers.iter().rev() {
            d = match layer {
                LayerObj::Linear(p) => by_dtype!(&p.get().cell, c => cell_backward(c, &d)?),
                LayerObj::Maxout(p) => by_dtype!(&p.get().cell, c => cell_backward(c, &d)?),
                LayerObj::Norm(p) => p.bind(py).get().backward(&d)?,
                LayerObj::Act(p) => p.bind(py).get().backward(&d)?,
                LayerObj::Dropout(p) => p.bind(py).get().backward(&d)?,
            };
        }
        Ok(d)
    }

    fn loss_chain<'py>(
        &self,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        weight_decay: Option<&Bound<'py, PyAny>>,
        sample_weight: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(f64, Bound<'py, PyList>)> {
        let py = x.py();
        let weight_decay = args::weight_decay(weight_decay)?;
        let scores = self.forward_chain(x)?;
        let (mut value, dscores) = losses::apply(self.spec.loss(), &scores, y, sample_weight)?;
        self.backward_chain(&dscores)?;
        let grads = PyList::empty(py);
        for layer in self.param_objects(py) {
            let (gw, gb) = (layer.getattr("grad_weight")?, layer.getattr("grad_bias")?);
            // Weight decay applies to the matrix layers' weights, not to γ.
            if weight_decay > 0.0 && !layer.is_instance_of::<PyBatchNorm>() {
                value += add_l2(&layer, &gw, weight_decay)?;
            }
            grads.append((gw, gb))?;
        }
        Ok((value, grads))
    }
}

/// Adds the L2 term's gradient into `grad` (a fresh array) and returns its value.
fn add_l2(layer: &Bound<'_, PyAny>, grad: &Bound<'_, PyAny>, lambda: f64) -> PyResult<f64> {
    fn typed<T: Elem>(w: &Bound<'_, PyAny>, g: &Bound<'_, PyAny>, lambda: f64) -> PyResult<f64> {
        let w = w.cast::<numpy::PyArrayDyn<T>>()?.readonly();
        let g = g.cast::<numpy::PyArrayDyn<T>>()?;
        let mut g = g.readwrite();
        Ok(l2_term(w.as_slice()?, Some(g.as_slice_mut()?), lambda))
    }
    let w = layer.getattr("weight")?;
    for_dtype!(DType::of_input(&w), T => typed::<T>(&w, grad, lambda))
}

#[pymethods]
impl PyMLP {
    #[new]
    #[pyo3(
        signature = (
            layer_sizes, *, activation = "relu", loss = "softmax", dtype = DType::F32,
            seed = None, dropout = None, batch_norm = None
        ),
        text_signature = "(layer_sizes, *, activation='relu', loss='softmax', dtype='float32', \
            seed=None, dropout=0.0, batch_norm=False)"
    )]
    // Python's keyword arguments, one per setting of the architecture.
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        layer_sizes: &Bound<'_, PyAny>,
        activation: &str,
        loss: &str,
        dtype: DType,
        seed: Option<&Bound<'_, PyAny>>,
        dropout: Option<&Bound<'_, PyAny>>,
        batch_norm: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let sizes = parse_sizes(layer_sizes)?;
        let batch_norm = match batch_norm {
            None => false,
            Some(b) => b.extract::<bool>().map_err(|_| {
                let shown = b.repr().map(|r| r.to_string()).unwrap_or_default();
                PyTypeError::new_err(format!("batch_norm: expected a bool, got {shown}"))
            })?,
        };
        let seed = args::seed(seed)?;
        let hidden = match activation {
            "maxout" => Hidden::Maxout(mlpfast_core::maxout::MAXOUT_PIECES),
            name => Hidden::Activation(Activation::from_name(name).map_err(|_| {
                PyValueError::new_err(format!(
                    "activation: expected one of {}, maxout, got {name:?}",
                    mlpfast_core::activation::ACTIVATION_NAMES
                ))
            })?),
        };
        let loss = Loss::from_name(loss).py()?;
        let dropout = args::real_or(dropout, 0.0, "dropout", "a rate in [0, 1)")?;
        let spec = Spec::new(&sizes, hidden, loss)
            .and_then(|s| s.with_dropout(dropout))
            .map(|s| s.with_batch_norm(batch_norm))
            .py()?;
        let mut rng = seed.map_or_else(Rng::from_entropy, Rng::new);
        let (layers, model) = for_dtype!(dtype, T, Arm => {
            let (objs, cells) = build::<T>(py, &spec, &mut rng, Arm, Arm)?;
            (objs, Arm(Model::new(cells, rng)))
        });
        Ok(PyMLP {
            spec,
            sizes,
            activation: activation.to_owned(),
            layers,
            model,
        })
    }

    /// The layers, input side first; they hold the model's parameters.
    #[getter]
    fn layers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.layers.iter().map(|l| l.any(py)))
    }

    /// True in training mode (the default): the layer API's forward drops units; `fit`
    /// always trains with dropout and `predict`, `score` and validation never do, whatever
    /// the mode.
    #[getter]
    fn training(&self, py: Python<'_>) -> PyResult<bool> {
        let any_training =
            |l: &LayerObj| -> PyResult<bool> { l.any(py).bind(py).getattr("training")?.extract() };
        // The model's mode is its layers' (all alike unless a layer was switched alone).
        match self.layers.first() {
            Some(l) => any_training(l),
            None => Ok(true),
        }
    }

    /// Sets every layer to training mode (evaluation mode with mode=False), as PyTorch's
    /// Module.train; returns the model.
    #[pyo3(signature = (mode = None), text_signature = "($self, mode=True)")]
    fn train<'py>(
        slf: &Bound<'py, Self>,
        mode: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        for l in &slf.get().layers {
            match mode {
                Some(m) => l.any(py).bind(py).call_method1("train", (m,))?,
                None => l.any(py).bind(py).call_method0("train")?,
            };
        }
        Ok(slf.clone())
    }

    /// Sets every layer to evaluation mode; returns the model.
    fn eval<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        for l in &slf.get().layers {
            l.any(py).bind(py).call_method0("eval")?;
        }
        Ok(slf.clone())
    }

    /// The parameter layers (`Linear`, `Maxout`, `BatchNorm`), input side first.
    #[getter]
    fn param_layers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.param_objects(py))
    }

    /// Every parameter layer's (weight, bias) as new arrays read at one moment: during a fit,
    /// one published epoch (what save and pickle write).
    fn _params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        guarded(|| by_dtype!(&self.model, m => m.param_arrays(py)))
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

    /// Inverted dropout's rate after every hidden activation while fitting (0: none);
    /// predictions never drop.
    #[getter]
    fn dropout(&self) -> f64 {
        self.spec.dropout()
    }

    /// Whether every hidden layer is followed by batch normalization (before its activation;
    /// after a maxout layer, of its output).
    #[getter]
    fn batch_norm(&self) -> bool {
        self.spec.batch_norm()
    }

    /// The loss's name.
    #[getter]
    fn loss_name(&self) -> &'static str {
        self.spec.loss().name()
    }

    /// "float32" or "float64".
    #[getter]
    fn dtype(&self) -> &'static str {
        self.model.dtype().name()
    }

    /// Scores for X (N, inputs), through every layer's forward (each keeps what backward needs).
    #[pyo3(name = "forward")]
    #[allow(non_snake_case)]
    fn forward_py<'py>(&self, X: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| self.forward_chain(X))
    }

    /// dX for dscores, through every layer's backward in reverse, filling every grad_*.
    #[pyo3(name = "backward")]
    fn backward_py<'py>(&self, dscores: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| self.backward_chain(dscores))
    }

    /// (loss, grads): the mean data loss on (X, y) (weighted by sample_weight when given),
    /// plus ½λ‖W‖² over the weights when weight_decay λ > 0, and [(grad_weight, grad_bias),
    /// ...] for every parameter layer (λW added to the weights'), by forward, loss and
    /// backward through the layers.
    #[pyo3(
        signature = (X, y, *, weight_decay = None, sample_weight = None),
        text_signature = "($self, X, y, *, weight_decay=0.0, sample_weight=None)"
    )]
    #[allow(non_snake_case)]
    fn loss<'py>(
        &self,
        X: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        weight_decay: Option<&Bound<'py, PyAny>>,
        sample_weight: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(f64, Bound<'py, PyList>)> {
        guarded(|| self.loss_chain(X, y, weight_decay, sample_weight))
    }

    /// ½λ‖W‖² over the weights (not the biases): the L2 term weight_decay λ adds.
    fn l2_penalty(&self, weight_decay: &Bound<'_, PyAny>) -> PyResult<f64> {
        let py = weight_decay.py();
        let weight_decay = args::weight_decay(Some(weight_decay))?;
        guarded(|| {
            by_dtype!(&self.model, m => Ok(py.detach(|| {
                m.read_all()
                    .iter()
                    .filter(|s| s.is_matrix())
                    .map(|s| l2_term(s.params().weight, None, weight_decay))
                    .sum()
            })))
        })
    }

    /// Trains in one call into Rust; returns this fit's per-epoch history.
    ///
    /// optimizer, as PyTorch's: "sgd" (momentum, nesterov), "adam" (betas, eps), "adamw"
    /// (betas, eps; weight_decay decoupled: w ← w·(1 − lr·λ) before each update, biases
    /// excepted, and no term in the loss) or "rmsprop" (alpha, eps, momentum; uncentered).
    /// weight_decay otherwise adds ½λ‖W‖² over the weights (λW to their gradient).
    /// clip_grad_norm scales each step's gradient (all weights and biases) to that global L2
    /// norm when longer, as torch.nn.utils.clip_grad_norm_ before optimizer.step(). lr is
    /// multiplied by lr_decay after every epoch, and moved by `schedule` ("constant";
    /// "invscaling": lr / (t + 1)^power_t with t the samples seen; "adaptive": divided by 5
    /// where training would stop; "cosine": PyTorch's CosineAnnealingLR from lr to lr_min over
    /// the epochs after the warm-up, T_max = epochs − warmup_epochs, stepped per epoch).
    /// warmup_epochs W: epoch e < W (from 0) trains at (e + 1)/(W + 1) times the schedule's
    /// rate; PyTorch's LinearLR(start_factor=1/(W+1), total_iters=W), followed by the cosine
    /// in SequentialLR(milestones=[W]). Setting `learning_rate` in a callback sets the rate
    /// of the following epochs (see MLP.learning_rate). With n_iter_no_change set,
    /// training stops when the validation score (with validation_data, whose best weights are
    /// restored at the end) or the training loss has not improved by more than tol for more
    /// than that many epochs. callbacks (a callable or a list) get a dict of each epoch's
    /// figures and the model; one returning False stops training. verbose prints a line per
    /// epoch. resume continues the last fit's optimizer, learning rate (schedule, warm-up and
    /// cosine included: the cosine stays at lr_min past its end) and stopping rule, as
    /// scikit-learn's partial_fit does; weight_decay and clip_grad_norm are the call's own.
    /// sample_weight (one per row, >= 0, not all zero) makes every batch's loss the weighted
    /// mean over its rows, as scikit-learn's; a batch whose rows all weigh 0 is skipped.
    /// validation_data may carry its own weights as a third element, (X, y, sample_weight).
    #[pyo3(
        signature = (
            X, y, *, sample_weight = None, validation_data = None, verbose = false,
            callbacks = None, **settings
        ),
        // The settings' defaults are FitConfig's (tests/test_mlp.py compares them).
        text_signature = "($self, X, y, *, sample_weight=None, epochs=10, batch_size=64, optimizer='sgd', lr=0.01, \
            momentum=0.0, nesterov=False, weight_decay=0.0, lr_decay=1.0, shuffle=True, \
            seed=None, validation_data=None, verbose=False, betas=(0.9, 0.999), eps=1e-08, \
            alpha=0.99, clip_grad_norm=None, callbacks=None, schedule='constant', \
            power_t=0.5, lr_min=0.0, warmup_epochs=0, tol=0.0001, n_iter_no_change=None, \
            resume=False)"
    )]
    // The data (X, y, sample_weight, validation_data) and how to report are arguments of their
    // own; the training settings come as **settings.
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn fit<'py>(
        slf: &Bound<'py, Self>,
        X: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        sample_weight: Option<&Bound<'py, PyAny>>,
        validation_data: Option<Bound<'py, PyAny>>,
        verbose: bool,
        callbacks: Option<Bound<'py, PyAny>>,
        settings: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        guarded(|| {
            let cfg = fit::settings(settings)?;
            let callbacks = fit::callbacks(callbacks)?;
            let validation = fit::validation_parts(validation_data)?;
            let me = slf.get();
            let obj = slf.clone().into_any();
            by_dtype!(&me.model, m => fit::fit(
                &obj, &me.spec, m, X, y, sample_weight, validation, cfg, verbose, callbacks
            ))
        })
    }

    /// The training session (optimizer state, schedule, stopping rule, generator, history)
    /// as bytes, for pickle.
    fn _session_state<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = by_dtype!(&self.model, m => m.session_bytes());
        PyBytes::new(py, &bytes)
    }

    /// Restores a session `_session_state` wrote for a model of this architecture and dtype.
    fn _set_session_state(&self, state: &[u8]) -> PyResult<()> {
        guarded(|| by_dtype!(&self.model, m => m.restore_session(state)))
    }

    /// Samples trained on, over all fits so far.
    #[getter]
    fn samples_seen(&self) -> u64 {
        by_dtype!(&self.model, m => m.session().samples_seen())
    }

    /// The learning rate of the next epoch: of the running fit's (in a callback: the epoch
    /// after the one just completed), or the one a fit with resume=True would continue with
    /// (None before a fit).
    ///
    /// Setting it (a finite number > 0, representable in the model's dtype) sets that rate,
    /// as Keras' ``model.optimizer.learning_rate = ...``: in a callback, or from another
    /// thread while a fit runs, for the epochs after the one in progress; otherwise for a
    /// fit that resumes. The rate set takes over from the schedule: lr_decay and the
    /// "adaptive" schedule go on from it; the warm-up, "invscaling" and "cosine", whose
    /// formulas would overwrite it, end.
    #[getter]
    fn learning_rate(&self) -> Option<f64> {
        by_dtype!(&self.model, m => m.session().next_lr())
    }

    #[setter]
    fn set_learning_rate(&self, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let Some(value) = value else {
            return Err(PyTypeError::new_err(
                "learning_rate: cannot be deleted (set a positive number)",
            ));
        };
        let expected = "a positive finite number";
        let lr = args::real(value, "learning_rate", expected)?;
        by_dtype!(&self.model, m => set_rate(m, lr))
    }

    /// True when the stopping rule (n_iter_no_change) ended the last fit early.
    #[getter]
    fn stopped_early(&self) -> bool {
        by_dtype!(&self.model, m => m.session().stopped_early())
    }

    /// Every epoch of every fit so far, as a dict of lists: loss, lr and, for the epochs that
    /// had validation data, val_loss and val_accuracy (val_r2 for mse).
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let metric = metric_name(self.spec.loss());
        by_dtype!(&self.model, m => {
            let session = m.session();
            let h = session.history();
            let any_validation = h.epochs.iter().any(|e| e.val_loss.is_some());
            history_dict(py, h, 0, metric, (true, any_validation))
        })
    }

    /// Class indices (softmax, svm), 0/1 (bce), or predictions (regression losses: the raw
    /// outputs, and for poisson e^output, the predicted mean).
    #[allow(non_snake_case)]
    fn predict<'py>(&self, X: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| by_dtype!(&self.model, m => self.predict_typed(m, X)))
    }

    /// Raw scores (N, outputs) of the last layer, by the fused inference path: nothing is
    /// kept for backward, so it can run while other threads use the model.
    #[allow(non_snake_case)]
    fn decision_function<'py>(&self, X: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = X.py();
        let k = self.spec.outputs();
        guarded(|| {
            by_dtype!(&self.model, m => {
                let (rows, s) = m.scores(&self.spec, X)?;
                Ok(convert::new_array(py, (rows, k), s).into_any())
            })
        })
    }

    /// Class probabilities: softmax (N, C); bce with one output (N, 2) = [1 − p, p].
    #[allow(non_snake_case)]
    fn predict_proba<'py>(&self, X: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| by_dtype!(&self.model, m => self.predict_proba_typed(m, X)))
    }

    /// Accuracy (classification) or R² of the predictions averaged over outputs (regression),
    /// weighted by sample_weight when given (scikit-learn's weighted accuracy and R²).
    #[pyo3(signature = (X, y, *, sample_weight = None))]
    #[allow(non_snake_case)]
    fn score(
        &self,
        X: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        sample_weight: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        guarded(|| {
            by_dtype!(&self.model, m => {
                let (rows, scores) = m.scores(&self.spec, X)?;
                let k = self.spec.outputs();
                let owned = owned_targets(self.spec.loss(), y, "y", rows, k)?;
                let weights = convert::weights(sample_weight, "sample_weight", rows)?;
                let wr = weights.as_ref().map(|w| w.readonly());
                let w = wr.as_ref().map(|w| w.as_slice()).transpose()?;
                let s = MatRef::new(&scores, rows, k);
                Ok(with_targets!(&owned, t => metrics::score(self.spec.loss(), s, &t, w)))
            })
        })
    }

    fn __repr__(&self) -> String {
        // Dropout and batch normalization when on, as the constructor takes them.
        let mut extra = String::new();
        if self.spec.dropout() > 0.0 {
            extra += &format!(
                ", dropout={}",
                mlpfast_core::error::fmt_num(&self.spec.dropout())
            );
        }
        if self.spec.batch_norm() {
            extra += ", batch_norm=True";
        }
        format!(
            "MLP({:?}, activation='{}', loss='{}', dtype='{}'{extra})",
            self.sizes,
            self.activation,
            self.spec.loss().name(),
            self.model.dtype().name()
        )
    }
}

/// [`PyMLP::set_learning_rate`] in the model's dtype `T`.
fn set_rate<T: Elem>(m: &Model<T>, lr: f64) -> PyResult<()> {
    mlpfast_core::config::check_rate::<T>("learning_rate", lr).py()?;
    if m.set_lr(lr) {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "learning_rate: expected a model that has been fitted (a fit's lr sets the rate \
             of a model never fitted), got {} for a model never fitted",
            mlpfast_core::error::fmt_num(&lr)
        )))
    }
}

impl PyMLP {
    fn predict_typed<'py, T: Elem>(
        &self,
        m: &Model<T>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = x.py();
        let (rows, scores) = m.scores(&self.spec, x)?;
        let k = self.spec.outputs();
        Ok(match self.spec.loss() {
            Loss::Bce => {
                let labels: Vec<i64> = scores.iter().map(|&z| i64::from(z > T::ZERO)).collect();
                if k == 1 {
                    numpy::PyArray1::from_vec(py, labels).into_any()
                } else {
                    let arr = numpy::ndarray::Array2::from_shape_vec((rows, k), labels)
                        .expect("one label per score");
                    PyArray2::from_owned_array(py, arr).into_any()
                }
            }
            Loss::Softmax | Loss::Svm { .. } => {
                let labels: Vec<i64> = scores
                    .chunks_exact(k)
                    .map(|r| metrics::argmax(r) as i64)
                    .collect();
                numpy::PyArray1::from_vec(py, labels).into_any()
            }
            regression => {
                let mut pred = scores;
                regression.predict_inplace(&mut pred);
                // The scores are finite (checked); poisson's e^score may still overflow.
                if !mlpfast_core::float::all_finite(&pred) {
                    return Err(PyValueError::new_err(format!(
                        "the network's predicted means e^output for X overflow {}: its \
                         outputs are too large for the poisson loss",
                        T::NAME
                    )));
                }
                convert::new_array(py, (rows, k), pred).into_any()
            }
        })
    }

    fn predict_proba_typed<'py, T: Elem>(
        &self,
        m: &Model<T>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = x.py();
        let k = self.spec.outputs();
        match self.spec.loss() {
            Loss::Softmax => {
                let (rows, mut scores) = m.scores(&self.spec, x)?;
                mlpfast_core::loss::softmax_rows(&mut scores, k);
                Ok(convert::new_array(py, (rows, k), scores).into_any())
            }
            Loss::Bce => {
                let (rows, mut scores) = m.scores(&self.spec, x)?;
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
}
