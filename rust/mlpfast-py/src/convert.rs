//! numpy ⇄ core: array conversion and the single f32/f64 dispatch.
//!
//! Every array argument accepts any integer or float numpy array (or nested list) of the
//! right shape. A C-contiguous array already in the wanted dtype is used as it is; anything
//! else (Fortran order, strides, another numeric dtype, a list) is converted once by numpy.
//! Non-numeric input is a `TypeError`, a wrong shape a `ValueError`, both naming the argument.

use mlpfast_core::Float;
use mlpfast_core::error::fmt_shape;

use crate::error::IntoPyResult;
use numpy::ndarray::{Array, ArrayView, Dimension, IntoDimension};
use numpy::{Element, PyArray, PyArrayDescrMethods, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyModule, PyString};

/// The two dtypes mlpfast computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// float32
    F32,
    /// float64
    F64,
}

impl DType {
    /// Parses "float32"/"float64", numpy's scalar types or dtype objects.
    pub fn parse(obj: &Bound<'_, PyAny>) -> PyResult<DType> {
        let py = obj.py();
        let name = numpy_module(py)?
            .getattr("dtype")?
            .call1((obj,))
            .and_then(|d| d.getattr("name")?.extract::<String>())
            .ok();
        match name.as_deref() {
            Some("float32") => Ok(DType::F32),
            Some("float64") => Ok(DType::F64),
            _ => Err(PyValueError::new_err(format!(
                "dtype: expected 'float32' or 'float64', got {}",
                obj.repr()?
            ))),
        }
    }

    /// numpy's name of the dtype.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// The dtype objects without a dtype of their own compute in: float32 input stays
    /// float32, anything else becomes float64.
    pub fn of_input(obj: &Bound<'_, PyAny>) -> DType {
        match obj.cast::<numpy::PyUntypedArray>() {
            Ok(a) if a.dtype().is_equiv_to(&numpy::dtype::<f32>(obj.py())) => DType::F32,
            _ => DType::F64,
        }
    }
}

/// One value per dtype: a model, or a layer's storage, in the dtype it computes in. The
/// dtype is chosen once, when the value is built ([`for_dtype!`]); [`by_dtype!`] runs generic
/// code on either arm.
pub enum ByDType<A, B> {
    /// The float32 value.
    F32(A),
    /// The float64 value.
    F64(B),
}

impl<A, B> ByDType<A, B> {
    /// Which dtype this is.
    pub fn dtype(&self) -> DType {
        match self {
            ByDType::F32(_) => DType::F32,
            ByDType::F64(_) => DType::F64,
        }
    }
}

/// Runs a generic expression on whichever arm a [`ByDType`] holds.
macro_rules! by_dtype {
    ($value:expr, $v:ident => $body:expr) => {
        match $value {
            $crate::convert::ByDType::F32($v) => $body,
            $crate::convert::ByDType::F64($v) => $body,
        }
    };
}
pub(crate) use by_dtype;

/// Runs generic code in a dtype chosen at run time: `$body` runs with `$t` the element type
/// and, in the second form, `$wrap` the matching [`ByDType`] arm (a constructor), as in
/// `for_dtype!(dtype, T => loss::<T>(..))` or `for_dtype!(dtype, T, Arm => Arm(..))`.
macro_rules! for_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::convert::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::convert::DType::F64 => {
                type $t = f64;
                $body
            }
        }
    };
    ($dtype:expr, $t:ident, $wrap:ident => $body:expr) => {
        match $dtype {
            $crate::convert::DType::F32 => {
                type $t = f32;
                use $crate::convert::ByDType::F32 as $wrap;
                $body
            }
            $crate::convert::DType::F64 => {
                type $t = f64;
                use $crate::convert::ByDType::F64 as $wrap;
                $body
            }
        }
    };
}
pub(crate) use for_dtype;

impl FromPyObject<'_, '_> for DType {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        DType::parse(&obj)
    }
}

/// A scalar the binding can hand to both numpy and the core.
pub trait Elem: Float + Element {
    /// The matching [`DType`].
    const DTYPE: DType;
}
impl Elem for f32 {
    const DTYPE: DType = DType::F32;
}
impl Elem for f64 {
    const DTYPE: DType = DType::F64;
}

/// The `numpy` Python module, imported once.
pub fn numpy_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    NUMPY
        .get_or_try_init(py, || py.import("numpy").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// Which dtype kinds an argument accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kinds {
    /// Integers and floats (numpy's numbers, without complex).
    Numeric,
    /// Integers, floats and booleans: labels, and the rows of X (numpy turns booleans into
    /// 0 and 1, as scikit-learn's validation does).
    WithBool,
}

/// `obj` as a numpy array (any dtype, any layout), refusing non-numeric data.
pub fn as_numeric<'py>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    kinds: Kinds,
) -> PyResult<Bound<'py, numpy::PyUntypedArray>> {
    let py = obj.py();
    let arr =
        match obj.cast::<numpy::PyUntypedArray>() {
            Ok(a) => a.clone(),
            Err(_) => {
                if obj.is_instance_of::<PyString>() {
                    return Err(PyTypeError::new_err(format!(
                        "{arg}: expected a numeric array, got a string"
                    )));
                }
                numpy_module(py)?
                .getattr("asarray")?
                .call1((obj,))
                .map_err(|e| {
                    PyValueError::new_err(format!(
                        "{arg}: expected a numeric array, got {} that numpy cannot convert ({e})",
                        obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                    ))
                })?
                .cast_into::<numpy::PyUntypedArray>()
                .map_err(|_| PyTypeError::new_err(format!("{arg}: expected a numeric array")))?
            }
        };
    let dtype = arr.dtype();
    let ok = match dtype.kind() {
        b'f' | b'i' | b'u' => true,
        b'b' => kinds == Kinds::WithBool,
        _ => false,
    };
    if !ok {
        return Err(PyTypeError::new_err(format!(
            "{arg}: expected an integer or float array, got dtype {}",
            dtype.str()?
        )));
    }
    Ok(arr)
}

/// `arr` as a C-contiguous, aligned array of `T`, without copying when it already is one.
pub fn contiguous<'py, T: Elem, D: Dimension>(
    arr: &Bound<'py, numpy::PyUntypedArray>,
    arg: &str,
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    if let Ok(a) = arr.cast::<PyArray<T, D>>() {
        if a.is_c_contiguous() && a.is_aligned() {
            return Ok(a.clone());
        }
    }
    // numpy.require with C order and alignment copies exactly when it must (a contiguous but
    // misaligned buffer, e.g. from frombuffer at an odd offset, gets copied too).
    numpy_module(arr.py())?
        .getattr("require")?
        .call1((arr, T::DTYPE.name(), ["C", "A"]))?
        .cast_into::<PyArray<T, D>>()
        .map_err(|_| {
            PyValueError::new_err(format!("{arg}: could not convert to {}", T::DTYPE.name()))
        })
}

/// A (N, cols) matrix argument (cols checked when given), N ≥ 1, converted to `T`.
pub fn matrix<'py, T: Elem>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    cols: Option<usize>,
) -> PyResult<Bound<'py, numpy::PyArray2<T>>> {
    let arr = as_numeric(obj, arg, Kinds::WithBool)?;
    let shape = arr.shape().to_vec();
    let expected = match cols {
        Some(c) => format!("(N, {c})"),
        None => "(N, features)".to_owned(),
    };
    if shape.len() != 2 || cols.is_some_and(|c| c != shape[1]) {
        return Err(PyValueError::new_err(format!(
            "{arg}: expected shape {expected}, got {}",
            fmt_shape(&shape)
        )));
    }
    if shape[0] == 0 {
        return Err(PyValueError::new_err(format!(
            "{arg}: expected at least one row, got shape {}",
            fmt_shape(&shape)
        )));
    }
    contiguous(&arr, arg)
}

/// Fails with a `ValueError` naming `arg` when `values` holds NaN or infinity.
pub fn check_finite<T: Float>(values: &[T], arg: &str) -> PyResult<()> {
    if mlpfast_core::float::all_finite(values) {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{arg}: expected finite values, got NaN or infinity"
        )))
    }
}

/// A new numpy array of the given shape that takes ownership of `data` (no copy).
pub fn new_array<T: Elem, Sh: IntoDimension>(
    py: Python<'_>,
    shape: Sh,
    data: Vec<T>,
) -> Bound<'_, PyArray<T, Sh::Dim>> {
    let arr = Array::from_shape_vec(shape, data).expect("data length matches the shape");
    PyArray::from_owned_array(py, arr)
}

/// A writeable numpy view of `data` (shape `shape`) that keeps `owner` alive.
///
/// # Safety
/// `data` must live inside `owner` and must not be reallocated while `owner` lives.
pub unsafe fn view<'py, T: Elem, Sh: IntoDimension>(
    data: &[T],
    shape: Sh,
    owner: Bound<'py, PyAny>,
) -> Bound<'py, PyArray<T, Sh::Dim>> {
    let v = ArrayView::from_shape(shape, data).expect("data length matches the shape");
    // SAFETY: forwarded to the caller.
    unsafe { PyArray::borrow_from_array(&v, owner) }
}

/// Class labels for `classes` classes, one per row: integers (or integral floats, or
/// booleans) in [0, classes). Returns them as indices.
pub fn labels(
    obj: &Bound<'_, PyAny>,
    arg: &str,
    rows: usize,
    classes: usize,
) -> PyResult<Vec<u32>> {
    let arr = as_numeric(obj, arg, Kinds::WithBool)?;
    let shape = arr.shape().to_vec();
    if shape.len() != 1 || shape[0] != rows {
        return Err(PyValueError::new_err(format!(
            "{arg}: expected shape ({rows},) (one label per row), got {}",
            fmt_shape(&shape)
        )));
    }
    let out_of_range = |v: &dyn std::fmt::Display| {
        PyValueError::new_err(format!(
            "{arg}: expected class labels in [0, {}], got {v}",
            classes.saturating_sub(1)
        ))
    };
    if arr.dtype().kind() == b'f' {
        let a = contiguous::<f64, numpy::Ix1>(&arr, arg)?;
        let ro = a.readonly();
        let vals = ro.as_slice()?;
        vals.iter()
            .map(|&v| {
                if !v.is_finite() {
                    Err(PyValueError::new_err(format!(
                        "{arg}: expected finite integer class labels, got {v}"
                    )))
                } else if v.fract() != 0.0 {
                    Err(PyValueError::new_err(format!(
                        "{arg}: expected integer class labels, got {v}"
                    )))
                } else if v < 0.0 || v >= classes as f64 {
                    Err(out_of_range(&v))
                } else {
                    Ok(v as u32)
                }
            })
            .collect()
    } else if arr.dtype().kind() == b'u' {
        // Unsigned labels as they are: 2**63 read as int64 would show as a negative number.
        let a = numpy_module(arr.py())?
            .getattr("require")?
            .call1((&arr, "uint64", ["C", "A"]))?
            .cast_into::<numpy::PyArray1<u64>>()
            .map_err(|_| PyTypeError::new_err(format!("{arg}: could not convert to uint64")))?;
        let ro = a.readonly();
        ro.as_slice()?
            .iter()
            .map(|&v| {
                if v >= classes as u64 {
                    Err(out_of_range(&v))
                } else {
                    Ok(v as u32)
                }
            })
            .collect()
    } else {
        let a = numpy_module(arr.py())?
            .getattr("require")?
            .call1((&arr, "int64", ["C", "A"]))?
            .cast_into::<numpy::PyArray1<i64>>()
            .map_err(|_| PyTypeError::new_err(format!("{arg}: could not convert to int64")))?;
        let ro = a.readonly();
        let vals = ro.as_slice()?;
        vals.iter()
            .map(|&v| {
                if v < 0 || v as u64 >= classes as u64 {
                    Err(out_of_range(&v))
                } else {
                    Ok(v as u32)
                }
            })
            .collect()
    }
}

/// Per-row weights (`sample_weight`): None when absent or None, else a vector of `rows`
/// numbers converted to `T`, finite, >= 0 and not all zero.
pub fn weights<'py, T: Elem>(
    obj: Option<&Bound<'py, PyAny>>,
    arg: &str,
    rows: usize,
) -> PyResult<Option<Bound<'py, numpy::PyArray1<T>>>> {
    let Some(obj) = obj.filter(|w| !w.is_none()) else {
        return Ok(None);
    };
    let arr = as_numeric(obj, arg, Kinds::Numeric)?;
    if arr.shape() != [rows] {
        return Err(PyValueError::new_err(format!(
            "{arg}: expected shape ({rows},), got {}",
            fmt_shape(arr.shape())
        )));
    }
    let a = contiguous::<T, numpy::Ix1>(&arr, arg)?;
    mlpfast_core::loss::check_weights(arg, a.readonly().as_slice()?, rows).py()?;
    Ok(Some(a))
}

/// Real-valued targets, (rows, cols); when cols is 1 a vector of `rows` is accepted too.
/// Finite values only.
pub fn targets<'py, T: Elem>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    rows: usize,
    cols: usize,
    kinds: Kinds,
) -> PyResult<Bound<'py, numpy::PyArray2<T>>> {
    let arr = as_numeric(obj, arg, kinds)?;
    let shape = arr.shape().to_vec();
    let ok = shape == [rows, cols] || (cols == 1 && shape == [rows]);
    if !ok {
        let alt = if cols == 1 {
            format!(" or ({rows},)")
        } else {
            String::new()
        };
        return Err(PyValueError::new_err(format!(
            "{arg}: expected shape ({rows}, {cols}){alt}, got {}",
            fmt_shape(&shape)
        )));
    }
    let arr = if shape.len() == 1 {
        arr.call_method1("reshape", ((rows, 1),))?
            .cast_into::<numpy::PyUntypedArray>()?
    } else {
        arr
    };
    let a = contiguous::<T, numpy::Ix2>(&arr, arg)?;
    check_finite(a.readonly().as_slice()?, arg)?;
    Ok(a)
}
