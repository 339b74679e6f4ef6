//! The activation layers: `Identity`, `Sigmoid`, `Tanh`, `ReLU`, `LeakyReLU`, `ELU`.
//!
//! One base class, `Activation`, holds the core function and, after `forward`, a copy of its
//! input (behind a lock: the objects are shared, e.g. by several threads using one model);
//! each named subclass only constructs it. They have no parameters and no dtype of their
//! own: a float32 input is computed in float32, anything else in float64. `backward`
//! differentiates at exactly the input of the last `forward`.

use std::sync::{Mutex, PoisonError};

use mlpfast_core::error::fmt_shape;
use mlpfast_core::{Activation, alloc};
use numpy::{IxDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::PyClassInitializer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::args;
use crate::convert::{self, ByDType, DType, Elem, Kinds, by_dtype, for_dtype};
use crate::error::{IntoPyResult, guarded};
use crate::mode::Mode;

/// A copy of forward's input and its shape.
type Kept<T> = (Vec<T>, Vec<usize>);

/// An elementwise activation layer (base class of the named activations).
#[pyclass(frozen, subclass, name = "Activation", module = "mlpfast")]
pub struct PyActivation {
    /// The function.
    pub act: Activation,
    input: Mutex<Option<ByDType<Kept<f32>, Kept<f64>>>>,
    mode: Mode,
}

fn forward_typed<'py, T: Elem>(
    act: Activation,
    arr: &Bound<'py, numpy::PyUntypedArray>,
) -> PyResult<(Kept<T>, Bound<'py, PyAny>)> {
    act.validate_for::<T>().py()?;
    let x = convert::contiguous::<T, IxDyn>(arr, "x")?;
    let shape = x.shape().to_vec();
    let xs = alloc::copied(x.readonly().as_slice()?, "the kept input").py()?;
    convert::check_finite(&xs, "x")?;
    let mut y = alloc::zeros(xs.len(), "outputs").py()?;
    act.forward(&xs, &mut y);
    let out = convert::new_array(arr.py(), IxDyn(&shape), y).into_any();
    Ok(((xs, shape), out))
}

fn backward_typed<'py, T: Elem>(
    act: Activation,
    (x, shape): &Kept<T>,
    dout: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let arr = convert::as_numeric(dout, "dout", Kinds::Numeric)?;
    if arr.shape() != shape.as_slice() {
        return Err(PyValueError::new_err(format!(
            "dout: expected shape {} (the shape of forward's output), got {}",
            fmt_shape(shape),
            fmt_shape(arr.shape())
        )));
    }
    let dy = convert::contiguous::<T, IxDyn>(&arr, "dout")?;
    let dr = dy.readonly();
    let ds = dr.as_slice()?;
    convert::check_finite(ds, "dout")?;
    let mut dx = alloc::zeros(ds.len(), "gradients").py()?;
    act.backward_from_input(x, ds, &mut dx);
    Ok(convert::new_array(dout.py(), IxDyn(shape), dx).into_any())
}

impl PyActivation {
    /// The base object for `act`.
    pub fn new(act: Activation) -> PyResult<Self> {
        act.validate(false).py()?;
        Ok(PyActivation {
            act,
            input: Mutex::new(None),
            mode: Mode::default(),
        })
    }

    /// A Python object of the named subclass matching `act`.
    pub fn instance(py: Python<'_>, act: Activation) -> PyResult<Py<PyActivation>> {
        let base = PyClassInitializer::from(PyActivation::new(act)?);
        let obj = match act {
            Activation::Identity => Py::new(py, base.add_subclass(PyIdentity))?.into_any(),
            Activation::Sigmoid => Py::new(py, base.add_subclass(PySigmoid))?.into_any(),
            Activation::Tanh => Py::new(py, base.add_subclass(PyTanh))?.into_any(),
            Activation::Relu => Py::new(py, base.add_subclass(PyReLU))?.into_any(),
            Activation::LeakyRelu(_) => Py::new(py, base.add_subclass(PyLeakyReLU))?.into_any(),
            Activation::Elu(_) => Py::new(py, base.add_subclass(PyELU))?.into_any(),
        };
        Ok(obj.bind(py).cast::<PyActivation>()?.clone().unbind())
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Option<ByDType<Kept<f32>, Kept<f64>>>> {
        self.input.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl PyActivation {
    /// The activation's name ("relu", "leaky_relu", ...).
    #[getter]
    fn name(&self) -> &'static str {
        self.act.name()
    }

    /// y = f(x), elementwise, in x's dtype (float32 stays float32, else float64); keeps a
    /// copy of x.
    pub fn forward<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let arr = convert::as_numeric(x, "x", Kinds::Numeric)?;
            if arr.ndim() == 0 {
                return Err(PyValueError::new_err(
                    "x: expected an array of at least one dimension, got a scalar",
                ));
            }
            let (kept, y) = for_dtype!(DType::of_input(&arr.clone().into_any()), T, Arm => {
                let (k, y) = forward_typed::<T>(self.act, &arr)?;
                (Arm(k), y)
            });
            *self.kept() = Some(kept);
            Ok(y)
        })
    }

    /// dx = dout · f'(x) at the input of the last forward.
    pub fn backward<'py>(&self, dout: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let kept = self.kept();
            match &*kept {
                None => Err(PyValueError::new_err(
                    "backward: called before forward (nothing to differentiate at)",
                )),
                Some(k) => by_dtype!(k, x => backward_typed(self.act, x, dout)),
            }
        })
    }

    /// True in training mode (the default); an activation computes the same in both.
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

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let cls = slf.get_type().name()?.to_string();
        Ok(match slf.get().act {
            Activation::LeakyRelu(a) | Activation::Elu(a) => format!("{cls}(alpha={a})"),
            _ => format!("{cls}()"),
        })
    }
}

/// Declares a parameterless activation subclass.
macro_rules! simple_activation {
    ($name:ident, $py_name:literal, $variant:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(frozen, extends = PyActivation, name = $py_name, module = "mlpfast")]
        pub struct $name;

        #[pymethods]
        impl $name {
            #[new]
            fn new() -> PyResult<PyClassInitializer<Self>> {
                Ok(PyClassInitializer::from(PyActivation::new($variant)?).add_subclass($name))
            }
        }
    };
}

simple_activation!(PyIdentity, "Identity", Activation::Identity, "f(x) = x.");
simple_activation!(
    PySigmoid,
    "Sigmoid",
    Activation::Sigmoid,
    "f(x) = 1 / (1 + exp(-x))."
);
simple_activation!(PyTanh, "Tanh", Activation::Tanh, "f(x) = tanh(x).");
simple_activation!(PyReLU, "ReLU", Activation::Relu, "f(x) = max(0, x).");

/// f(x) = x for x > 0, alpha * x otherwise.
#[pyclass(frozen, extends = PyActivation, name = "LeakyReLU", module = "mlpfast")]
pub struct PyLeakyReLU;

#[pymethods]
impl PyLeakyReLU {
    #[new]
    #[pyo3(signature = (alpha = None), text_signature = "(alpha=0.01)")]
    fn new(alpha: Option<&Bound<'_, PyAny>>) -> PyResult<PyClassInitializer<Self>> {
        let alpha = args::real_or(alpha, 0.01, "alpha", "a finite number")?;
        Ok(
            PyClassInitializer::from(PyActivation::new(Activation::LeakyRelu(alpha))?)
                .add_subclass(PyLeakyReLU),
        )
    }

    /// The slope for x <= 0.
    #[getter]
    fn alpha(slf: &Bound<'_, Self>) -> f64 {
        match slf.as_super().get().act {
            Activation::LeakyRelu(a) => a,
            _ => f64::NAN,
        }
    }
}

/// f(x) = x for x > 0, alpha * (exp(x) - 1) otherwise.
#[pyclass(frozen, extends = PyActivation, name = "ELU", module = "mlpfast")]
pub struct PyELU;

#[pymethods]
impl PyELU {
    #[new]
    #[pyo3(signature = (alpha = None), text_signature = "(alpha=1.0)")]
    fn new(alpha: Option<&Bound<'_, PyAny>>) -> PyResult<PyClassInitializer<Self>> {
        let alpha = args::real_or(alpha, 1.0, "alpha", "a finite number")?;
        Ok(
            PyClassInitializer::from(PyActivation::new(Activation::Elu(alpha))?)
                .add_subclass(PyELU),
        )
    }

    /// The scale of the negative side.
    #[getter]
    fn alpha(slf: &Bound<'_, Self>) -> f64 {
        match slf.as_super().get().act {
            Activation::Elu(a) => a,
            _ => f64::NAN,
        }
    }
}
