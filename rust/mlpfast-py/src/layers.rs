//! The parameter layers, `Linear` and `Maxout`, as Python classes.
//!
//! A layer's storage is a [`LayerCell`]: the core layer in its dtype behind a lock, shared
//! (through an `Arc`) by the Python object and by the `MLP` that holds it, so that the model
//! and `model.layers[i]` are one layer. `forward` keeps a copy of its input, and `backward`
//! differentiates at exactly that, as the lecture's gates do. `weight` and `bias` are live
//! numpy views of the storage (its buffers never move) — except while the model holding the
//! layer is being fitted, when they are read-only copies of the last published epoch, taken
//! under the lock; assigning to them copies the new values in after checking them.
//!
//! **Locks and the GIL.** Every lock here is taken with the GIL released and let go before
//! the GIL is taken again, so a thread holding a lock never waits for the GIL, and readers
//! (predictions in several threads) and a fit publishing its weights never deadlock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use mlpfast_core::error::fmt_shape;
use mlpfast_core::{Error, Init, Linear, MatRef, Maxout, ParamsRef, Rng, alloc};
use numpy::ndarray::IxDyn;
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::args;
use crate::convert::{self, ByDType, DType, Elem, Kinds, by_dtype, for_dtype};
use crate::error::{IntoPyResult, guarded, to_py};
use crate::mode::Mode;

/// A core parameter layer of either kind.
pub(crate) enum CoreLayer<T> {
    Linear(Linear<T>),
    Maxout(Maxout<T>),
}

impl<T: Elem> CoreLayer<T> {
    fn weight(&self) -> &[T] {
        match self {
            CoreLayer::Linear(l) => &l.weight,
            CoreLayer::Maxout(l) => &l.weight,
        }
    }

    fn bias(&self) -> &[T] {
        match self {
            CoreLayer::Linear(l) => &l.bias,
            CoreLayer::Maxout(l) => &l.bias,
        }
    }

    fn params_mut(&mut self) -> (&mut [T], &mut [T]) {
        match self {
            CoreLayer::Linear(l) => (&mut l.weight, &mut l.bias),
            CoreLayer::Maxout(l) => (&mut l.weight, &mut l.bias),
        }
    }

    fn grads(&self) -> (&[T], &[T]) {
        match self {
            CoreLayer::Linear(l) => (&l.grad_weight, &l.grad_bias),
            CoreLayer::Maxout(l) => (&l.grad_weight, &l.grad_bias),
        }
    }
}

/// What `forward` left for `backward`: a copy of its input, and maxout's winners.
struct Cache<T> {
    input: Vec<T>,
    rows: usize,
    winners: Vec<u8>,
}

/// A layer and its cache, as the lock guards them.
pub(crate) struct CellState<T> {
    pub(crate) layer: CoreLayer<T>,
    cache: Option<Cache<T>>,
}

impl<T: Elem> CellState<T> {
    /// The parameters, for the core's network code.
    pub(crate) fn params(&self) -> ParamsRef<'_, T> {
        ParamsRef {
            weight: self.layer.weight(),
            bias: self.layer.bias(),
            state: &[],
        }
    }

    /// The parameters, mutably.
    pub(crate) fn params_mut(&mut self) -> (&mut [T], &mut [T]) {
        self.layer.params_mut()
    }
}

/// A parameter buffer's address, fixed for the cell's life (its `Vec` is never resized).
pub(crate) struct Fixed<T>(pub(crate) *const T);

// SAFETY: only the address crosses threads; reads and writes through it happen under the
// cell's lock, or are numpy views' (see `LayerCell::view`).
unsafe impl<T> Send for Fixed<T> {}
unsafe impl<T> Sync for Fixed<T> {}

/// A parameter layer's storage, shared by its Python object and the model holding it.
pub(crate) struct LayerCell<T> {
    inputs: usize,
    outputs: usize,
    pieces: Option<usize>,
    state: RwLock<CellState<T>>,
    weight: Fixed<T>,
    bias: Fixed<T>,
    /// The model holding this layer is being fitted: `weight` and `bias` give copies.
    in_fit: AtomicBool,
}

impl<T: Elem> LayerCell<T> {
    /// A cell for `layer`.
    pub(crate) fn new(layer: CoreLayer<T>) -> Arc<Self> {
        let (inputs, outputs, pieces) = match &layer {
            CoreLayer::Linear(l) => (l.inputs, l.outputs, None),
            CoreLayer::Maxout(l) => (l.inputs, l.outputs, Some(l.pieces)),
        };
        let (weight, bias) = (Fixed(layer.weight().as_ptr()), Fixed(layer.bias().as_ptr()));
        Arc::new(LayerCell {
            inputs,
            outputs,
            pieces,
            state: RwLock::new(CellState { layer, cache: None }),
            weight,
            bias,
            in_fit: AtomicBool::new(false),
        })
    }

    /// Set while a fit of the model holding this layer runs.
    pub(crate) fn set_in_fit(&self, on: bool) {
        self.in_fit.store(on, Ordering::Release);
    }

    /// The lock, to read (take it with the GIL released; see the module's notes).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, CellState<T>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock, to write (take it with the GIL released).
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, CellState<T>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn shape(&self, which: Part) -> Vec<usize> {
        match (which, self.pieces) {
            (Part::Weight, None) => vec![self.inputs, self.outputs],
            (Part::Weight, Some(p)) => vec![p, self.inputs, self.outputs],
            (Part::Bias, None) => vec![self.outputs],
            (Part::Bias, Some(p)) => vec![p, self.outputs],
        }
    }

    /// What `layer.weight` / `layer.bias` give: a live, writeable view of the parameters;
    /// while the model is being fitted, a read-only copy of the published epoch instead,
    /// taken under the lock (a view could show a publication half done, and writes into
    /// it would not reach the fit).
    fn param_array<'py>(
        &self,
        which: Part,
        owner: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !self.in_fit.load(Ordering::Acquire) {
            return Ok(self.view(which, owner));
        }
        let py = owner.py();
        let data = py
            .detach(|| {
                let state = self.read();
                match which {
                    Part::Weight => alloc::copied(state.layer.weight(), "a copy of the weights"),
                    Part::Bias => alloc::copied(state.layer.bias(), "a copy of the biases"),
                }
            })
            .py()?;
        let arr = convert::new_array(py, IxDyn(&self.shape(which)), data).into_any();
        arr.getattr("flags")?.setattr("writeable", false)?;
        Ok(arr)
    }

    /// A live, writeable numpy view of the weights or biases, keeping `owner` alive.
    fn view<'py>(&self, which: Part, owner: Bound<'py, PyAny>) -> Bound<'py, PyAny> {
        let shape = self.shape(which);
        let len: usize = shape.iter().product();
        let ptr = match which {
            Part::Weight => self.weight.0,
            Part::Bias => self.bias.0,
        };
        // SAFETY: the buffer lives in this cell, which `owner` keeps alive through its Arc,
        // and is never reallocated; numpy views of it read and write without the lock, as
        // views of a numpy array's own memory do.
        let data = unsafe { std::slice::from_raw_parts(ptr, len) };
        // SAFETY: as above.
        unsafe { convert::view(data, IxDyn(&shape), owner) }.into_any()
    }

    /// `forward(x)` on `rows` rows: the output; keeps a copy of x for backward.
    fn forward(&self, x: Vec<T>, rows: usize) -> mlpfast_core::Result<Vec<T>> {
        let mut out = alloc::zeros2(rows, self.outputs, "outputs")?;
        let mut state = self.write();
        let xm = MatRef::new(&x, rows, self.inputs);
        let winners = match &state.layer {
            CoreLayer::Linear(l) => {
                l.forward(xm, &mut out)?;
                Vec::new()
            }
            CoreLayer::Maxout(l) => l.forward(xm, &mut out)?,
        };
        state.cache = Some(Cache {
            input: x,
            rows,
            winners,
        });
        Ok(out)
    }

    /// `backward(dout)`: dx at the input of the last forward; fills the gradients.
    fn backward(&self, dout: &[T], shape: &[usize]) -> mlpfast_core::Result<Vec<T>> {
        let mut state = self.write();
        let CellState { layer, cache } = &mut *state;
        let Some(cache) = cache else {
            return Err(Error::State(
                "backward: called before forward (nothing to differentiate at)".into(),
            ));
        };
        if shape != [cache.rows, self.outputs] {
            return Err(Error::shape(
                "dout",
                format!(
                    "{} (the shape of forward's output)",
                    fmt_shape(&[cache.rows, self.outputs])
                ),
                fmt_shape(shape),
            ));
        }
        let x = MatRef::new(&cache.input, cache.rows, self.inputs);
        let dy = MatRef::new(dout, cache.rows, self.outputs);
        let mut dx = alloc::zeros2(cache.rows, self.inputs, "gradients")?;
        match layer {
            CoreLayer::Linear(l) => l.backward(x, dy, Some(&mut dx))?,
            CoreLayer::Maxout(l) => l.backward(x, dy, &cache.winners, Some(&mut dx))?,
        }
        Ok(dx)
    }

    /// Rows of the input of the last forward, if any.
    pub(crate) fn cached_rows(&self) -> Option<usize> {
        self.read().cache.as_ref().map(|c| c.rows)
    }

    /// A copy of the weight or bias gradient.
    fn grad(&self, which: Part) -> mlpfast_core::Result<Vec<T>> {
        let state = self.read();
        let (gw, gb) = state.layer.grads();
        match which {
            Part::Weight => alloc::copied(gw, "a copy of the gradients"),
            Part::Bias => alloc::copied(gb, "a copy of the gradients"),
        }
    }

    /// Copies `values` into the weights or biases.
    fn set(&self, which: Part, values: &[T]) {
        let mut state = self.write();
        let (w, b) = state.layer.params_mut();
        match which {
            Part::Weight => w.copy_from_slice(values),
            Part::Bias => b.copy_from_slice(values),
        }
    }
}

/// Which parameter of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Weight,
    Bias,
}

/// A layer's storage in its dtype.
pub(crate) type AnyCell = ByDType<Arc<LayerCell<f32>>, Arc<LayerCell<f64>>>;

/// `forward` of `cell` on `x` (any array-like, converted to the cell's dtype; errors name
/// `arg`), with the GIL released for the work.
pub(crate) fn cell_forward<'py, T: Elem>(
    cell: &LayerCell<T>,
    x: &Bound<'py, PyAny>,
    arg: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    let xa = convert::matrix::<T>(x, arg, Some(cell.inputs))?;
    let rows = xa.shape()[0];
    // A copy: backward differentiates at what forward saw, whatever the caller does to x.
    let xs = alloc::copied(xa.readonly().as_slice()?, "the kept input").py()?;
    convert::check_finite(&xs, arg)?;
    let out = py.detach(|| cell.forward(xs, rows)).py()?;
    Ok(convert::new_array(py, (rows, cell.outputs), out).into_any())
}

/// `backward` of `cell` for `dout`, with the GIL released for the work.
pub(crate) fn cell_backward<'py, T: Elem>(
    cell: &LayerCell<T>,
    dout: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = dout.py();
    let dy = convert::matrix::<T>(dout, "dout", None)?;
    let shape = dy.shape().to_vec();
    let ds = alloc::copied(dy.readonly().as_slice()?, "dout").py()?;
    convert::check_finite(&ds, "dout")?;
    let dx = py.detach(|| cell.backward(&ds, &shape)).py()?;
    Ok(convert::new_array(py, (shape[0], cell.inputs), dx).into_any())
}

fn set_param<T: Elem>(cell: &LayerCell<T>, which: Part, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let arg = match which {
        Part::Weight => "weight",
        Part::Bias => "bias",
    };
    let shape = cell.shape(which);
    let arr = convert::as_numeric(value, arg, Kinds::Numeric)?;
    if arr.shape() != shape.as_slice() {
        return Err(PyValueError::new_err(format!(
            "{arg}: expected shape {}, got {}",
            fmt_shape(&shape),
            fmt_shape(arr.shape())
        )));
    }
    let a = convert::contiguous::<T, IxDyn>(&arr, arg)?;
    // Copied out first: `value` may be a view of this very parameter.
    let new: Vec<T> = alloc::copied(a.readonly().as_slice()?, arg).py()?;
    convert::check_finite(&new, arg)?;
    value.py().detach(|| cell.set(which, &new));
    Ok(())
}

fn grad_array<'py, T: Elem>(
    py: Python<'py>,
    cell: &LayerCell<T>,
    which: Part,
) -> PyResult<Bound<'py, PyAny>> {
    let g = py.detach(|| cell.grad(which)).py()?;
    Ok(convert::new_array(py, IxDyn(&cell.shape(which)), g).into_any())
}

fn seeded(seed: Option<u64>) -> Rng {
    seed.map_or_else(Rng::from_entropy, Rng::new)
}

/// A layer width: an int >= 1.
fn features(arg: &str, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let expected = "an int >= 1 (a size that fits in memory)";
    let n: usize = args::int(obj, arg, expected)?;
    if n < 1 {
        return Err(to_py(Error::value(arg, expected, n)));
    }
    Ok(n)
}

/// The methods Linear and Maxout share: parameters, gradients, forward and backward.
macro_rules! param_layer_methods {
    ($cls:ty, { $($extra:tt)* }) => {
        #[pymethods]
        impl $cls {
            /// Input features.
            #[getter]
            fn in_features(&self) -> usize {
                by_dtype!(&self.cell, c => c.inputs)
            }

            /// Output features.
            #[getter]
            fn out_features(&self) -> usize {
                by_dtype!(&self.cell, c => c.outputs)
            }

            /// "float32" or "float64".
            #[getter]
            fn dtype(&self) -> &'static str {
                self.cell.dtype().name()
            }

            /// The weights: a live view of the layer's memory (during a fit of its model, a
            /// read-only copy of the last published epoch); assigning copies in.
            #[getter]
            fn get_weight<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
                let owner = slf.clone().into_any();
                guarded(|| by_dtype!(&slf.get().cell, c => c.param_array(Part::Weight, owner)))
            }

            #[setter]
            fn set_weight(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
                guarded(|| by_dtype!(&self.cell, c => set_param(c, Part::Weight, value)))
            }

            /// The biases: a live view of the layer's memory (during a fit of its model, a
            /// read-only copy of the last published epoch); assigning copies in.
            #[getter]
            fn get_bias<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
                let owner = slf.clone().into_any();
                guarded(|| by_dtype!(&slf.get().cell, c => c.param_array(Part::Bias, owner)))
            }

            #[setter]
            fn set_bias(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
                guarded(|| by_dtype!(&self.cell, c => set_param(c, Part::Bias, value)))
            }

            /// dL/dweight from the last backward (a copy).
            #[getter]
            fn grad_weight<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                guarded(|| by_dtype!(&self.cell, c => grad_array(py, c, Part::Weight)))
            }

            /// dL/dbias from the last backward (a copy).
            #[getter]
            fn grad_bias<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                guarded(|| by_dtype!(&self.cell, c => grad_array(py, c, Part::Bias)))
            }

            /// The layer's output for x (N, in_features); keeps a copy of x for backward.
            fn forward<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                guarded(|| by_dtype!(&self.cell, c => cell_forward(c, x, "x")))
            }

            /// dx for the upstream gradient dout (N, out_features); fills grad_weight, grad_bias.
            fn backward<'py>(&self, dout: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                guarded(|| by_dtype!(&self.cell, c => cell_backward(c, dout)))
            }

            /// True in training mode (the default); the layer computes the same in both.
            #[getter]
            fn training(&self) -> bool {
                self.mode.training()
            }

            /// Sets training mode (evaluation mode with mode=False); returns the layer.
            #[pyo3(signature = (mode = None), text_signature = "($self, mode=True)")]
            fn train<'py>(
                slf: &Bound<'py, Self>,
                mode: Option<&Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, Self>> {
                slf.get().mode.train(mode)?;
                Ok(slf.clone())
            }

            /// Sets evaluation mode; returns the layer.
            fn eval<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
                slf.get().mode.eval();
                slf.clone()
            }

            $($extra)*
        }
    };
}

/// Fully-connected layer: `y = x @ weight + bias`, weight (in_features, out_features).
#[pyclass(frozen, name = "Linear", module = "mlpfast")]
pub struct PyLinear {
    /// The layer's storage in its dtype.
    pub(crate) cell: AnyCell,
    /// Training or evaluation mode.
    pub(crate) mode: Mode,
}

param_layer_methods!(PyLinear, {
    #[new]
    #[pyo3(
        signature = (in_features, out_features, *, dtype = DType::F32, seed = None),
        text_signature = "(in_features, out_features, *, dtype='float32', seed=None)"
    )]
    fn new(
        in_features: &Bound<'_, PyAny>,
        out_features: &Bound<'_, PyAny>,
        dtype: DType,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let i = features("in_features", in_features)?;
        let o = features("out_features", out_features)?;
        let mut rng = seeded(args::seed(seed)?);
        let cell = for_dtype!(dtype, T, Arm => Arm(LayerCell::new(CoreLayer::Linear(
            Linear::<T>::new(i, o, Init::Glorot, &mut rng).py()?
        ))));
        Ok(PyLinear {
            cell,
            mode: Mode::default(),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Linear(in_features={}, out_features={}, dtype='{}')",
            self.in_features(),
            self.out_features(),
            self.dtype()
        )
    }
});

/// Maxout layer: `y = max_p (x @ weight[p] + bias[p])`, weight (pieces, in, out).
#[pyclass(frozen, name = "Maxout", module = "mlpfast")]
pub struct PyMaxout {
    /// The layer's storage in its dtype.
    pub(crate) cell: AnyCell,
    /// Training or evaluation mode.
    pub(crate) mode: Mode,
}

param_layer_methods!(PyMaxout, {
    #[new]
    #[pyo3(
        signature = (in_features, out_features, pieces = None, *, dtype = DType::F32, seed = None),
        text_signature = "(in_features, out_features, pieces=2, *, dtype='float32', seed=None)"
    )]
    fn new(
        in_features: &Bound<'_, PyAny>,
        out_features: &Bound<'_, PyAny>,
        pieces: Option<&Bound<'_, PyAny>>,
        dtype: DType,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let i = features("in_features", in_features)?;
        let o = features("out_features", out_features)?;
        // None stands for the default, 2 (an int default cannot be a Python object here).
        let pieces: usize = match pieces {
            Some(p) if !p.is_none() => args::int(p, "pieces", "an int in [1, 255]")?,
            _ => 2,
        };
        let mut rng = seeded(args::seed(seed)?);
        let cell = for_dtype!(dtype, T, Arm => Arm(LayerCell::new(CoreLayer::Maxout(
            Maxout::<T>::new(i, o, pieces, &mut rng).py()?
        ))));
        Ok(PyMaxout {
            cell,
            mode: Mode::default(),
        })
    }

    /// Number of affine pieces.
    #[getter]
    fn pieces(&self) -> usize {
        by_dtype!(&self.cell, c => c.pieces.unwrap_or(1))
    }

    fn __repr__(&self) -> String {
        format!(
            "Maxout(in_features={}, out_features={}, pieces={}, dtype='{}')",
            self.in_features(),
            self.out_features(),
            self.pieces(),
            self.dtype()
        )
    }
});
