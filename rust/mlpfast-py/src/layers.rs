//! The parameter layers, `Linear` and `Maxout`, as Python classes.
//!
//! Each layer holds its core counterpart in the layer's dtype and, after `forward`, a
//! reference to the (converted) input, which `backward` differentiates at, as in the lecture's
//! gate API. `weight` and `bias` are live views of the layer's memory; assigning to them
//! copies the new values in after checking the shape.

use std::any::Any;

use mlpfast_core::error::fmt_shape;
use mlpfast_core::{Init, Linear, MatRef, Maxout, Rng};
use numpy::ndarray::IxDyn;
use numpy::{PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{self, DType, Elem, Kinds};
use crate::error::IntoPyResult;

/// A value in one of the two dtypes.
pub enum Typed<A, B> {
    /// The float32 value.
    F32(A),
    /// The float64 value.
    F64(B),
}

impl<A: 'static, B: 'static> Typed<A, B> {
    /// The value, for a downcast to the concrete type a generic caller expects.
    pub fn as_any(&self) -> &dyn Any {
        match self {
            Typed::F32(a) => a,
            Typed::F64(b) => b,
        }
    }

    /// The value, mutably, for a downcast.
    pub fn as_any_mut(&mut self) -> &mut dyn Any {
        match self {
            Typed::F32(a) => a,
            Typed::F64(b) => b,
        }
    }

    /// Which dtype this is.
    pub fn dtype(&self) -> DType {
        match self {
            Typed::F32(_) => DType::F32,
            Typed::F64(_) => DType::F64,
        }
    }
}

/// Runs a generic expression on whichever dtype a [`Typed`] holds.
macro_rules! typed {
    ($value:expr, $v:ident => $body:expr) => {
        match $value {
            $crate::layers::Typed::F32($v) => $body,
            $crate::layers::Typed::F64($v) => $body,
        }
    };
}
pub(crate) use typed;

/// What the binding needs of a core parameter layer.
pub trait ParamLayer<T>: Send + 'static {
    /// Input features.
    fn inputs(&self) -> usize;
    /// Output features.
    fn outputs(&self) -> usize;
    /// Shape of the weight array.
    fn weight_shape(&self) -> Vec<usize>;
    /// Shape of the bias array.
    fn bias_shape(&self) -> Vec<usize>;
    /// Weights and biases.
    fn params(&self) -> (&[T], &[T]);
    /// Weights and biases, mutably.
    fn params_mut(&mut self) -> (&mut [T], &mut [T]);
    /// Gradients of weights and biases.
    fn grads(&self) -> (&[T], &[T]);
    /// Forward pass; returns what backward needs beyond the input (maxout's winners).
    fn forward(&self, x: MatRef<'_, T>, out: &mut [T]) -> mlpfast_core::Result<Vec<u8>>;
    /// Backward pass, filling the gradients and `dx`.
    fn backward(
        &mut self,
        x: MatRef<'_, T>,
        dy: MatRef<'_, T>,
        extra: &[u8],
        dx: &mut [T],
    ) -> mlpfast_core::Result<()>;
}

impl<T: Elem> ParamLayer<T> for Linear<T> {
    fn inputs(&self) -> usize {
        self.inputs
    }
    fn outputs(&self) -> usize {
        self.outputs
    }
    fn weight_shape(&self) -> Vec<usize> {
        vec![self.inputs, self.outputs]
    }
    fn bias_shape(&self) -> Vec<usize> {
        vec![self.outputs]
    }
    fn params(&self) -> (&[T], &[T]) {
        (&self.weight, &self.bias)
    }
    fn params_mut(&mut self) -> (&mut [T], &mut [T]) {
        (&mut self.weight, &mut self.bias)
    }
    fn grads(&self) -> (&[T], &[T]) {
        (&self.grad_weight, &self.grad_bias)
    }
    fn forward(&self, x: MatRef<'_, T>, out: &mut [T]) -> mlpfast_core::Result<Vec<u8>> {
        Linear::forward(self, x, out).map(|()| Vec::new())
    }
    fn backward(
        &mut self,
        x: MatRef<'_, T>,
        dy: MatRef<'_, T>,
        _: &[u8],
        dx: &mut [T],
    ) -> mlpfast_core::Result<()> {
        Linear::backward(self, x, dy, Some(dx))
    }
}

impl<T: Elem> ParamLayer<T> for Maxout<T> {
    fn inputs(&self) -> usize {
        self.inputs
    }
    fn outputs(&self) -> usize {
        self.outputs
    }
    fn weight_shape(&self) -> Vec<usize> {
        vec![self.pieces, self.inputs, self.outputs]
    }
    fn bias_shape(&self) -> Vec<usize> {
        vec![self.pieces, self.outputs]
    }
    fn params(&self) -> (&[T], &[T]) {
        (&self.weight, &self.bias)
    }
    fn params_mut(&mut self) -> (&mut [T], &mut [T]) {
        (&mut self.weight, &mut self.bias)
    }
    fn grads(&self) -> (&[T], &[T]) {
        (&self.grad_weight, &self.grad_bias)
    }
    fn forward(&self, x: MatRef<'_, T>, out: &mut [T]) -> mlpfast_core::Result<Vec<u8>> {
        Maxout::forward(self, x, out)
    }
    fn backward(
        &mut self,
        x: MatRef<'_, T>,
        dy: MatRef<'_, T>,
        winners: &[u8],
        dx: &mut [T],
    ) -> mlpfast_core::Result<()> {
        Maxout::backward(self, x, dy, winners, Some(dx))
    }
}

/// A core layer plus what its last forward pass left for backward.
pub struct Slot<L, T> {
    /// The core layer.
    pub layer: L,
    input: Option<Py<PyArray2<T>>>,
    extra: Vec<u8>,
}

impl<T: Elem, L: ParamLayer<T>> Slot<L, T> {
    /// A slot with nothing cached yet.
    pub fn new(layer: L) -> Self {
        Slot {
            layer,
            input: None,
            extra: Vec::new(),
        }
    }

    /// `forward(x)`: converts x once, runs the core layer, keeps x for backward.
    pub fn forward<'py>(&mut self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<T>>> {
        let py = x.py();
        let xa = convert::matrix::<T>(x, "x", Some(self.layer.inputs()))?;
        let ro = xa.readonly();
        let xs = ro.as_slice()?;
        convert::check_finite(xs, "x")?;
        let rows = xa.shape()[0];
        let mut out = vec![T::ZERO; rows * self.layer.outputs()];
        let extra = self
            .layer
            .forward(MatRef::new(xs, rows, self.layer.inputs()), &mut out)
            .py()?;
        drop(ro);
        self.input = Some(xa.unbind());
        self.extra = extra;
        Ok(convert::new_array(py, (rows, self.layer.outputs()), out))
    }

    /// Rows of the input of the last forward, if any.
    pub fn cached_rows(&self, py: Python<'_>) -> Option<usize> {
        self.input.as_ref().map(|x| x.bind(py).shape()[0])
    }

    /// `backward(dout)`: gradient at the input of the last forward; fills the layer's grads.
    pub fn backward<'py>(&mut self, dout: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<T>>> {
        let py = dout.py();
        let Some(input) = &self.input else {
            return Err(PyValueError::new_err(
                "backward: called before forward (nothing to differentiate at)",
            ));
        };
        let x = input.bind(py).readonly();
        let xs = x.as_slice()?;
        let rows = x.shape()[0];
        let (n_in, n_out) = (self.layer.inputs(), self.layer.outputs());
        let dy = convert::matrix::<T>(dout, "dout", None)?;
        if dy.shape() != [rows, n_out] {
            return Err(PyValueError::new_err(format!(
                "dout: expected shape {} (the shape of forward's output), got {}",
                fmt_shape(&[rows, n_out]),
                fmt_shape(dy.shape())
            )));
        }
        let dro = dy.readonly();
        let ds = dro.as_slice()?;
        convert::check_finite(ds, "dout")?;
        let mut dx = vec![T::ZERO; rows * n_in];
        self.layer
            .backward(
                MatRef::new(xs, rows, n_in),
                MatRef::new(ds, rows, n_out),
                &self.extra,
                &mut dx,
            )
            .py()?;
        Ok(convert::new_array(py, (rows, n_in), dx))
    }

    /// A live view of the weights (`which` = 0) or biases (1), owned by `owner`.
    pub fn param_view<'py>(&self, which: usize, owner: Bound<'py, PyAny>) -> Bound<'py, PyAny> {
        let (w, b) = self.layer.params();
        let (data, shape) = match which {
            0 => (w, self.layer.weight_shape()),
            _ => (b, self.layer.bias_shape()),
        };
        // SAFETY: the slices live in the layer inside `owner`, whose vectors keep their
        // length (and so their allocation) for the layer's whole life: assignments copy into
        // them.
        unsafe { convert::view(data, IxDyn(&shape), owner) }.into_any()
    }

    /// Copies `value` into the weights (`which` = 0) or biases (1), after checking it.
    pub fn set_param(&mut self, which: usize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (arg, shape) = match which {
            0 => ("weight", self.layer.weight_shape()),
            _ => ("bias", self.layer.bias_shape()),
        };
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
        let new: Vec<T> = a.readonly().as_slice()?.to_vec();
        convert::check_finite(&new, arg)?;
        let (w, b) = self.layer.params_mut();
        match which {
            0 => w.copy_from_slice(&new),
            _ => b.copy_from_slice(&new),
        }
        Ok(())
    }

    /// A copy of the weight (`which` = 0) or bias (1) gradient.
    pub fn grad<'py>(&self, py: Python<'py>, which: usize) -> Bound<'py, PyAny> {
        let (gw, gb) = self.layer.grads();
        let (data, shape) = match which {
            0 => (gw, self.layer.weight_shape()),
            _ => (gb, self.layer.bias_shape()),
        };
        convert::new_array(py, IxDyn(&shape), data.to_vec()).into_any()
    }
}

/// The two dtypes' slots of one kind of parameter layer.
pub type SlotPair<L32, L64> = Typed<Slot<L32, f32>, Slot<L64, f64>>;

impl<L32: ParamLayer<f32>, L64: ParamLayer<f64>> SlotPair<L32, L64> {
    /// The slot for a core layer of either dtype (L is L32 or L64).
    pub fn from_layer<L: 'static>(layer: L) -> Self {
        let mut cell = Some(layer);
        let any: &mut dyn Any = &mut cell;
        if let Some(l) = any.downcast_mut::<Option<L32>>().and_then(Option::take) {
            return Typed::F32(Slot::new(l));
        }
        match any.downcast_mut::<Option<L64>>().and_then(Option::take) {
            Some(l) => Typed::F64(Slot::new(l)),
            None => unreachable!("a layer of another type than the pair's"),
        }
    }
}

fn seeded(seed: Option<u64>) -> Rng {
    seed.map_or_else(Rng::from_entropy, Rng::new)
}

fn check_features(arg: &str, n: usize) -> PyResult<()> {
    if n < 1 {
        return Err(PyValueError::new_err(format!(
            "{arg}: expected an integer >= 1, got {n}"
        )));
    }
    Ok(())
}

/// The methods Linear and Maxout share: parameters, gradients, forward and backward.
macro_rules! param_layer_methods {
    ($cls:ty, { $($extra:tt)* }) => {
        #[pymethods]
        impl $cls {
            /// Input features.
            #[getter]
            fn in_features(&self) -> usize {
                typed!(&self.slot, s => ParamLayer::inputs(&s.layer))
            }

            /// Output features.
            #[getter]
            fn out_features(&self) -> usize {
                typed!(&self.slot, s => ParamLayer::outputs(&s.layer))
            }

            /// "float32" or "float64".
            #[getter]
            fn dtype(&self) -> &'static str {
                self.slot.dtype().name()
            }

            /// The weights: a live view of the layer's memory; assigning copies in.
            #[getter]
            fn get_weight<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyAny> {
                typed!(&slf.borrow().slot, s => s.param_view(0, slf.clone().into_any()))
            }

            #[setter]
            fn set_weight(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
                typed!(&mut self.slot, s => s.set_param(0, value))
            }

            /// The biases: a live view of the layer's memory; assigning copies in.
            #[getter]
            fn get_bias<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyAny> {
                typed!(&slf.borrow().slot, s => s.param_view(1, slf.clone().into_any()))
            }

            #[setter]
            fn set_bias(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
                typed!(&mut self.slot, s => s.set_param(1, value))
            }

            /// dL/dweight from the last backward (a copy).
            #[getter]
            fn grad_weight<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
                typed!(&self.slot, s => s.grad(py, 0))
            }

            /// dL/dbias from the last backward (a copy).
            #[getter]
            fn grad_bias<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
                typed!(&self.slot, s => s.grad(py, 1))
            }

            /// The layer's output for x (N, in_features); keeps x for backward.
            fn forward<'py>(&mut self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                typed!(&mut self.slot, s => s.forward(x).map(Bound::into_any))
            }

            /// dx for the upstream gradient dout (N, out_features); fills grad_weight, grad_bias.
            fn backward<'py>(&mut self, dout: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                typed!(&mut self.slot, s => s.backward(dout).map(Bound::into_any))
            }

            $($extra)*
        }
    };
}

/// Fully-connected layer: `y = x @ weight + bias`, weight (in_features, out_features).
#[pyclass(name = "Linear", module = "mlpfast")]
pub struct PyLinear {
    /// The layer in its dtype.
    pub slot: SlotPair<Linear<f32>, Linear<f64>>,
}

param_layer_methods!(PyLinear, {
    #[new]
    #[pyo3(
        signature = (in_features, out_features, *, dtype = DType::F32, seed = None),
        text_signature = "(in_features, out_features, *, dtype='float32', seed=None)"
    )]
    fn new(
        in_features: usize,
        out_features: usize,
        dtype: DType,
        seed: Option<u64>,
    ) -> PyResult<Self> {
        check_features("in_features", in_features)?;
        check_features("out_features", out_features)?;
        let mut rng = seeded(seed);
        let slot = match dtype {
            DType::F32 => SlotPair::from_layer(Linear::<f32>::new(
                in_features,
                out_features,
                Init::Glorot,
                &mut rng,
            )),
            DType::F64 => SlotPair::from_layer(Linear::<f64>::new(
                in_features,
                out_features,
                Init::Glorot,
                &mut rng,
            )),
        };
        Ok(PyLinear { slot })
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
#[pyclass(name = "Maxout", module = "mlpfast")]
pub struct PyMaxout {
    /// The layer in its dtype.
    pub slot: SlotPair<Maxout<f32>, Maxout<f64>>,
}

param_layer_methods!(PyMaxout, {
    #[new]
    #[pyo3(
        signature = (in_features, out_features, pieces = 2, *, dtype = DType::F32, seed = None),
        text_signature = "(in_features, out_features, pieces=2, *, dtype='float32', seed=None)"
    )]
    fn new(
        in_features: usize,
        out_features: usize,
        pieces: usize,
        dtype: DType,
        seed: Option<u64>,
    ) -> PyResult<Self> {
        check_features("in_features", in_features)?;
        check_features("out_features", out_features)?;
        let mut rng = seeded(seed);
        let slot = match dtype {
            DType::F32 => SlotPair::from_layer(
                Maxout::<f32>::new(in_features, out_features, pieces, &mut rng).py()?,
            ),
            DType::F64 => SlotPair::from_layer(
                Maxout::<f64>::new(in_features, out_features, pieces, &mut rng).py()?,
            ),
        };
        Ok(PyMaxout { slot })
    }

    /// Number of affine pieces.
    #[getter]
    fn pieces(&self) -> usize {
        typed!(&self.slot, s => s.layer.pieces)
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
