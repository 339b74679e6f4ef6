//! The `Dropout` layer as a Python class, on the core's [`Dropout`].
//!
//! Like the activations it has no dtype of its own: a float32 input is computed in float32,
//! anything else in float64. A training forward draws the mask of the layer's current step
//! and moves to the next step; `backward` recomputes the mask of the last forward from that
//! forward's step (the mask is never stored). In evaluation mode both are the identity.

use std::sync::{Mutex, MutexGuard, PoisonError};

use mlpfast_core::error::fmt_shape;
use mlpfast_core::{Dropout, Rng, alloc, dropout};
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::args;
use crate::convert::{self, DType, Elem, for_dtype};
use crate::error::{IntoPyResult, guarded, to_py};
use crate::mode::Mode;

/// What the last forward leaves for backward: its shape, its dtype and, in training, the
/// step whose mask it applied.
#[derive(Debug, Clone, Copy)]
struct Last {
    rows: usize,
    cols: usize,
    dtype: DType,
    step: Option<u64>,
}

/// The core layer and the record of its last forward.
struct State {
    layer: Dropout,
    last: Option<Last>,
}

/// Inverted dropout: in training, zeroes each unit with probability p and scales the others
/// by 1/(1 - p); in evaluation, the identity.
#[pyclass(frozen, name = "Dropout", module = "mlpfast")]
pub struct PyDropout {
    state: Mutex<State>,
    mode: Mode,
}

impl PyDropout {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The layer of rate `p` (already checked) that an `MLP(dropout=p)` lists after each
    /// hidden activation, its masks seeded by `seed`.
    pub(crate) fn for_model(p: f64, seed: u64) -> PyResult<Self> {
        Ok(PyDropout {
            state: Mutex::new(State {
                layer: Dropout::new(p, seed).map_err(to_py)?,
                last: None,
            }),
            mode: Mode::default(),
        })
    }
}

/// `forward` in `T`: converts x with the GIL, then applies the mask under the lock with the
/// GIL released (a thread holding the lock never waits for the GIL).
fn forward_typed<'py, T: Elem>(
    layer: &PyDropout,
    x: &Bound<'py, PyAny>,
    training: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    let xa = convert::matrix::<T>(x, "x", None)?;
    let (rows, cols) = (xa.shape()[0], xa.shape()[1]);
    let mut y = alloc::copied(xa.readonly().as_slice()?, "outputs").py()?;
    convert::check_finite(&y, "x")?;
    py.detach(|| {
        let mut state = layer.state();
        let step = training.then(|| state.layer.forward(&mut y, cols));
        state.last = Some(Last {
            rows,
            cols,
            dtype: T::DTYPE,
            step,
        });
    });
    Ok(convert::new_array(py, (rows, cols), y).into_any())
}

/// `backward` in `T`, for the forward described by `last` (masks depend on `layer`'s rate
/// and seed alone, so a copy of it serves).
fn backward_typed<'py, T: Elem>(
    layer: Dropout,
    last: Last,
    dout: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = dout.py();
    let arr = convert::as_numeric(dout, "dout", convert::Kinds::Numeric)?;
    if arr.shape() != [last.rows, last.cols] {
        return Err(PyValueError::new_err(format!(
            "dout: expected shape {} (the shape of forward's output), got {}",
            fmt_shape(&[last.rows, last.cols]),
            fmt_shape(arr.shape())
        )));
    }
    let dy = convert::contiguous::<T, numpy::Ix2>(&arr, "dout")?;
    let mut dx = alloc::copied(dy.readonly().as_slice()?, "gradients").py()?;
    convert::check_finite(&dx, "dout")?;
    if let Some(step) = last.step {
        py.detach(|| layer.backward(step, &mut dx, last.cols));
    }
    Ok(convert::new_array(py, (last.rows, last.cols), dx).into_any())
}

#[pymethods]
impl PyDropout {
    #[new]
    #[pyo3(
        signature = (p = None, *, seed = None),
        text_signature = "(p=0.5, *, seed=None)"
    )]
    fn new(p: Option<&Bound<'_, PyAny>>, seed: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let p = args::real_or(p, 0.5, "p", dropout::RATE_EXPECTED)?;
        let seed = args::seed(seed)?.unwrap_or_else(|| Rng::from_entropy().next_u64());
        Ok(PyDropout {
            state: Mutex::new(State {
                layer: Dropout::new(p, seed).map_err(to_py)?,
                last: None,
            }),
            mode: Mode::default(),
        })
    }

    /// The probability of dropping a unit.
    #[getter]
    fn p(&self, py: Python<'_>) -> f64 {
        py.detach(|| self.state().layer.p)
    }

    /// The seed of the masks (drawn from the system when the constructor got None).
    #[getter]
    fn seed(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.state().layer.seed)
    }

    /// Training forwards so far: the next one applies mask number `step` of the seed's
    /// sequence. Setting it replays (or skips to) a mask.
    #[getter]
    fn get_step(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.state().layer.step)
    }

    #[setter]
    fn set_step(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let step: u64 = args::int(value, "step", "an int in [0, 2**64)")?;
        value.py().detach(|| self.state().layer.step = step);
        Ok(())
    }

    /// In training, x times the mask of the current step, scaled by 1/(1 - p) (then the
    /// step advances); in evaluation, a copy of x. x is (N, features), computed in its
    /// dtype (float32 stays float32, else float64).
    pub(crate) fn forward<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let training = self.mode.training();
            for_dtype!(DType::of_input(x), T => forward_typed::<T>(self, x, training))
        })
    }

    /// dx: dout through the mask and scale of the last forward (the identity after an
    /// evaluation-mode forward).
    pub(crate) fn backward<'py>(&self, dout: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let (layer, last) = dout.py().detach(|| {
                let state = self.state();
                (state.layer, state.last)
            });
            let Some(last) = last else {
                return Err(PyValueError::new_err(
                    "backward: called before forward (nothing to differentiate at)",
                ));
            };
            for_dtype!(last.dtype, T => backward_typed::<T>(layer, last, dout))
        })
    }

    /// True in training mode (the default), False in evaluation mode (the identity).
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

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Dropout(p={})", mlpfast_core::error::fmt_num(&self.p(py)))
    }
}
