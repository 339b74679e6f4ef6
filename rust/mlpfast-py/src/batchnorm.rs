//! The `BatchNorm` layer as a Python class, on the core's [`BatchNorm`].
//!
//! Its storage is a [`NormCell`]: the core layer and what its last forward saved, behind a
//! lock, in an `Arc` (so that a model can share it with the Python object, as Linear's
//! `LayerCell` is shared). `weight` (γ), `bias` (β), `running_mean` and `running_var` are
//! live numpy views of the layer's buffers, which never move; assigning to them copies new
//! values in after checking them. Locks are taken with the GIL released, as in `layers`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use mlpfast_core::error::{fmt_num, fmt_shape};
use mlpfast_core::norm_layer::{self, Saved};
use mlpfast_core::{BatchNorm, Error, MatRef, alloc};
use numpy::ndarray::IxDyn;
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::args;
use crate::convert::{self, ByDType, DType, Elem, Kinds, by_dtype, for_dtype};
use crate::error::{IntoPyResult, guarded, to_py};
use crate::layers::Fixed;
use crate::mode::Mode;

/// One of the layer's per-feature vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Weight,
    Bias,
    RunningMean,
    RunningVar,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Weight => "weight",
            Part::Bias => "bias",
            Part::RunningMean => "running_mean",
            Part::RunningVar => "running_var",
        }
    }

    fn of<T>(self, layer: &BatchNorm<T>) -> &[T] {
        match self {
            Part::Weight => &layer.weight,
            Part::Bias => &layer.bias,
            Part::RunningMean => &layer.running[..layer.features],
            Part::RunningVar => &layer.running[layer.features..],
        }
    }

    fn of_mut<T>(self, layer: &mut BatchNorm<T>) -> &mut [T] {
        match self {
            Part::Weight => &mut layer.weight,
            Part::Bias => &mut layer.bias,
            Part::RunningMean => &mut layer.running[..layer.features],
            Part::RunningVar => &mut layer.running[layer.features..],
        }
    }
}

/// The core layer and what its last forward saved for backward.
pub(crate) struct NormState<T> {
    pub(crate) layer: BatchNorm<T>,
    saved: Option<Saved<T>>,
}

/// A batch-norm layer's storage, shareable between its Python object and a model.
pub(crate) struct NormCell<T> {
    pub(crate) features: usize,
    state: RwLock<NormState<T>>,
    /// The buffers' addresses, in `Part` order (fixed: the vectors are never resized).
    buffers: [Fixed<T>; 4],
    /// The model holding this layer is being fitted: the vectors are given as copies (as
    /// `Linear`'s weights are, see `layers`).
    in_fit: AtomicBool,
}

impl<T: Elem> NormCell<T> {
    pub(crate) fn new(layer: BatchNorm<T>) -> Arc<Self> {
        let ptr = |p: Part| Fixed(p.of(&layer).as_ptr());
        let buffers = [
            ptr(Part::Weight),
            ptr(Part::Bias),
            ptr(Part::RunningMean),
            ptr(Part::RunningVar),
        ];
        Arc::new(NormCell {
            features: layer.features,
            state: RwLock::new(NormState { layer, saved: None }),
            buffers,
            in_fit: AtomicBool::new(false),
        })
    }

    /// Set while a fit of the model holding this layer runs.
    pub(crate) fn set_in_fit(&self, on: bool) {
        self.in_fit.store(on, Ordering::Release);
    }

    /// What the layer's attributes give: a live view of one vector; while the model holding
    /// the layer is being fitted, a read-only copy of the published epoch, taken under the
    /// lock.
    fn part_array<'py>(
        &self,
        which: Part,
        owner: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !self.in_fit.load(Ordering::Acquire) {
            return Ok(self.view(which, owner));
        }
        let py = owner.py();
        let data = py
            .detach(|| alloc::copied(which.of(&self.read().layer), "a copy of the layer's values"))
            .py()?;
        let arr = convert::new_array(py, IxDyn(&[self.features]), data).into_any();
        arr.getattr("flags")?.setattr("writeable", false)?;
        Ok(arr)
    }

    /// The lock, to read (take it with the GIL released).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, NormState<T>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock, to write (take it with the GIL released).
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, NormState<T>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// A live, writeable numpy view of one vector, keeping `owner` alive.
    fn view<'py>(&self, which: Part, owner: Bound<'py, PyAny>) -> Bound<'py, PyAny> {
        let ptr = self.buffers[which as usize].0;
        // SAFETY: the buffer lives in this cell, which `owner` keeps alive through its Arc,
        // and is never reallocated; views read and write it without the lock, as views of a
        // numpy array's own memory do (the same contract as Linear's weights).
        let data = unsafe { std::slice::from_raw_parts(ptr, self.features) };
        // SAFETY: as above.
        unsafe { convert::view(data, IxDyn(&[self.features]), owner) }.into_any()
    }

    /// Copies checked `values` into one vector.
    fn set(&self, which: Part, values: &[T]) {
        which
            .of_mut(&mut self.write().layer)
            .copy_from_slice(values);
    }

    /// The forward pass on `rows` rows of `x`; keeps what backward needs.
    fn forward(&self, x: &[T], rows: usize, training: bool) -> mlpfast_core::Result<Vec<T>> {
        let mut out = alloc::zeros2(rows, self.features, "outputs")?;
        let mut state = self.write();
        let saved = state
            .layer
            .forward(MatRef::new(x, rows, self.features), &mut out, training)?;
        state.saved = Some(saved);
        Ok(out)
    }

    /// The backward pass for `dout` (shape `shape`): dx; fills the gradients.
    fn backward(&self, dout: &[T], shape: &[usize]) -> mlpfast_core::Result<Vec<T>> {
        let mut state = self.write();
        let NormState { layer, saved } = &mut *state;
        let Some(saved) = saved else {
            return Err(Error::State(
                "backward: called before forward (nothing to differentiate at)".into(),
            ));
        };
        if shape != [saved.rows, self.features] {
            return Err(Error::shape(
                "dout",
                format!(
                    "{} (the shape of forward's output)",
                    fmt_shape(&[saved.rows, self.features])
                ),
                fmt_shape(shape),
            ));
        }
        let mut dx = alloc::zeros2(saved.rows, self.features, "gradients")?;
        layer.backward(saved, MatRef::new(dout, shape[0], shape[1]), &mut dx)?;
        Ok(dx)
    }
}

/// A batch-norm layer's storage in its dtype.
pub(crate) type AnyNormCell = ByDType<Arc<NormCell<f32>>, Arc<NormCell<f64>>>;

fn forward_typed<'py, T: Elem>(
    cell: &NormCell<T>,
    x: &Bound<'py, PyAny>,
    training: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    let xa = convert::matrix::<T>(x, "x", Some(cell.features))?;
    let rows = xa.shape()[0];
    let xs = alloc::copied(xa.readonly().as_slice()?, "the input").py()?;
    convert::check_finite(&xs, "x")?;
    let out = py.detach(|| cell.forward(&xs, rows, training)).py()?;
    Ok(convert::new_array(py, (rows, cell.features), out).into_any())
}

fn backward_typed<'py, T: Elem>(
    cell: &NormCell<T>,
    dout: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = dout.py();
    let dy = convert::matrix::<T>(dout, "dout", None)?;
    let shape = dy.shape().to_vec();
    let ds = alloc::copied(dy.readonly().as_slice()?, "dout").py()?;
    convert::check_finite(&ds, "dout")?;
    let dx = py.detach(|| cell.backward(&ds, &shape)).py()?;
    Ok(convert::new_array(py, (shape[0], cell.features), dx).into_any())
}

fn set_part<T: Elem>(cell: &NormCell<T>, which: Part, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let arg = which.name();
    let arr = convert::as_numeric(value, arg, Kinds::Numeric)?;
    if arr.shape() != [cell.features] {
        return Err(PyValueError::new_err(format!(
            "{arg}: expected shape {}, got {}",
            fmt_shape(&[cell.features]),
            fmt_shape(arr.shape())
        )));
    }
    let a = convert::contiguous::<T, IxDyn>(&arr, arg)?;
    // Copied out first: `value` may be a view of this very vector.
    let new: Vec<T> = alloc::copied(a.readonly().as_slice()?, arg).py()?;
    convert::check_finite(&new, arg)?;
    if which == Part::RunningVar && new.iter().any(|v| v.to_f64() < 0.0) {
        return Err(PyValueError::new_err(
            "running_var: expected values >= 0 (variances), got a negative one",
        ));
    }
    value.py().detach(|| cell.set(which, &new));
    Ok(())
}

fn part_view<'py>(slf: &Bound<'py, PyBatchNorm>, which: Part) -> PyResult<Bound<'py, PyAny>> {
    let owner = slf.clone().into_any();
    guarded(|| by_dtype!(&slf.get().cell, c => c.part_array(which, owner)))
}

fn grad_array<'py, T: Elem>(
    py: Python<'py>,
    cell: &NormCell<T>,
    which: Part,
) -> PyResult<Bound<'py, PyAny>> {
    let g = py
        .detach(|| {
            let state = cell.read();
            let grad = match which {
                Part::Weight => &state.layer.grad_weight,
                _ => &state.layer.grad_bias,
            };
            alloc::copied(grad, "a copy of the gradients")
        })
        .py()?;
    Ok(convert::new_array(py, cell.features, g).into_any())
}

/// Batch normalization over the features of (N, features) inputs (PyTorch's BatchNorm1d):
/// `y = weight * (x - mean) / sqrt(var + eps) + bias`, with the batch's statistics in
/// training (which also update the running ones) and the running ones in evaluation.
#[pyclass(frozen, name = "BatchNorm", module = "mlpfast")]
pub struct PyBatchNorm {
    /// The layer's storage in its dtype.
    pub(crate) cell: AnyNormCell,
    /// Training or evaluation mode.
    pub(crate) mode: Mode,
}

#[pymethods]
impl PyBatchNorm {
    #[new]
    #[pyo3(
        signature = (features, *, momentum = None, eps = None, dtype = DType::F32),
        text_signature = "(features, *, momentum=0.1, eps=1e-05, dtype='float32')"
    )]
    fn new(
        features: &Bound<'_, PyAny>,
        momentum: Option<&Bound<'_, PyAny>>,
        eps: Option<&Bound<'_, PyAny>>,
        dtype: DType,
    ) -> PyResult<Self> {
        let expected = "an int >= 1 (a size that fits in memory)";
        let n: usize = args::int(features, "features", expected)?;
        if n < 1 {
            return Err(to_py(Error::value("features", expected, n)));
        }
        let momentum = args::real_or(momentum, 0.1, "momentum", norm_layer::MOMENTUM_EXPECTED)?;
        let eps = args::real_or(eps, 1e-5, "eps", norm_layer::EPS_EXPECTED)?;
        let cell = for_dtype!(dtype, T, Arm => Arm(NormCell::new(
            BatchNorm::<T>::new(n, momentum, eps).py()?
        )));
        Ok(PyBatchNorm {
            cell,
            mode: Mode::default(),
        })
    }

    /// Features normalized (the width of x).
    #[getter]
    fn features(&self) -> usize {
        by_dtype!(&self.cell, c => c.features)
    }

    /// Features normalized (PyTorch's name).
    #[getter]
    fn num_features(&self) -> usize {
        self.features()
    }

    /// Weight of a batch's statistics in the running ones.
    #[getter]
    fn momentum(&self, py: Python<'_>) -> f64 {
        by_dtype!(&self.cell, c => py.detach(|| c.read().layer.momentum))
    }

    /// Added to the variance before its square root.
    #[getter]
    fn eps(&self, py: Python<'_>) -> f64 {
        by_dtype!(&self.cell, c => py.detach(|| c.read().layer.eps))
    }

    /// "float32" or "float64".
    #[getter]
    fn dtype(&self) -> &'static str {
        self.cell.dtype().name()
    }

    /// gamma, the scale (features,): a live view of the layer's memory; assigning copies in.
    #[getter]
    fn get_weight<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        part_view(slf, Part::Weight)
    }

    #[setter]
    fn set_weight(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        guarded(|| by_dtype!(&self.cell, c => set_part(c, Part::Weight, value)))
    }

    /// beta, the shift (features,): a live view of the layer's memory; assigning copies in.
    #[getter]
    fn get_bias<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        part_view(slf, Part::Bias)
    }

    #[setter]
    fn set_bias(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        guarded(|| by_dtype!(&self.cell, c => set_part(c, Part::Bias, value)))
    }

    /// The running mean used in evaluation: a live view; assigning copies in.
    #[getter]
    fn get_running_mean<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        part_view(slf, Part::RunningMean)
    }

    #[setter]
    fn set_running_mean(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        guarded(|| by_dtype!(&self.cell, c => set_part(c, Part::RunningMean, value)))
    }

    /// The running unbiased variance used in evaluation: a live view; assigning copies in.
    #[getter]
    fn get_running_var<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        part_view(slf, Part::RunningVar)
    }

    #[setter]
    fn set_running_var(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        guarded(|| by_dtype!(&self.cell, c => set_part(c, Part::RunningVar, value)))
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

    /// The normalized x (N, features). In training mode (N >= 2) by the batch's statistics,
    /// which also move the running ones; in evaluation mode by the running statistics.
    pub(crate) fn forward<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let training = self.mode.training();
        guarded(|| by_dtype!(&self.cell, c => forward_typed(c, x, training)))
    }

    /// dx for the upstream gradient dout (N, features); fills grad_weight and grad_bias.
    pub(crate) fn backward<'py>(&self, dout: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| by_dtype!(&self.cell, c => backward_typed(c, dout)))
    }

    /// True in training mode (the default), False in evaluation mode.
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
        format!(
            "BatchNorm({}, momentum={}, eps={}, dtype='{}')",
            self.features(),
            fmt_num(&self.momentum(py)),
            fmt_num(&self.eps(py)),
            self.dtype()
        )
    }
}
