//! The loss functions: `softmax_loss`, `svm_loss`, `mse_loss`, `bce_loss`.
//!
//! Each returns `(loss, gradient)`: the mean loss as a Python float and its gradient with
//! respect to the first argument, in that argument's dtype (float32 stays float32, anything
//! else becomes float64).

use mlpfast_core::Error;
use mlpfast_core::error::{fmt_num, fmt_shape};
use mlpfast_core::{Loss, MatRef, Targets, alloc};
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::args;
use crate::convert::{self, DType, Elem, Kinds, for_dtype};
use crate::error::{IntoPyResult, to_py};

fn class_loss_typed<'py, T: Elem>(
    loss: Loss,
    scores: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    weights: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    let s = convert::matrix::<T>(scores, "scores", None)?;
    let (n, c) = (s.shape()[0], s.shape()[1]);
    mlpfast_core::loss::check_columns("scores", c).py()?;
    let labels = convert::labels(y, "y", n, c)?;
    let w = convert::weights::<T>(weights, "sample_weight", n)?;
    let wr = w.as_ref().map(|w| w.readonly());
    let ro = s.readonly();
    let mut grad = alloc::zeros2(n, c, "gradients").py()?;
    let value = loss
        .mean_and_grad(
            MatRef::new(ro.as_slice()?, n, c),
            &Targets::Classes(&labels),
            wr.as_ref().map(|w| w.as_slice()).transpose()?,
            Some(&mut grad),
        )
        .py()?;
    Ok((
        value,
        convert::new_array(scores.py(), (n, c), grad).into_any(),
    ))
}

fn class_loss<'py>(
    loss: Loss,
    scores: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    weights: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    for_dtype!(DType::of_input(scores), T => class_loss_typed::<T>(loss, scores, y, weights))
}

fn value_loss_typed<'py, T: Elem>(
    loss: Loss,
    (pred, pred_arg): (&Bound<'py, PyAny>, &str),
    (target, target_arg): (&Bound<'py, PyAny>, &str),
    weights: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    let arr = convert::as_numeric(pred, pred_arg, Kinds::Numeric)?;
    let shape = arr.shape().to_vec();
    let (n, k) = match shape[..] {
        [n] => (n, 1),
        [n, k] => (n, k),
        _ => {
            return Err(PyValueError::new_err(format!(
                "{pred_arg}: expected shape (N,) or (N, K), got {}",
                fmt_shape(&shape)
            )));
        }
    };
    let p = convert::contiguous::<T, numpy::IxDyn>(&arr, pred_arg)?;
    let kinds = if loss == Loss::Bce {
        Kinds::WithBool
    } else {
        Kinds::Numeric
    };
    let t = convert::targets::<T>(target, target_arg, n, k, kinds)?;
    let w = convert::weights::<T>(weights, "sample_weight", n)?;
    let wr = w.as_ref().map(|w| w.readonly());
    let (pr, tr) = (p.readonly(), t.readonly());
    let mut grad = alloc::zeros2(n, k, "gradients").py()?;
    let value = loss
        .mean_and_grad(
            MatRef::new(pr.as_slice()?, n, k),
            &Targets::Values(MatRef::new(tr.as_slice()?, n, k)),
            wr.as_ref().map(|w| w.as_slice()).transpose()?,
            Some(&mut grad),
        )
        .map_err(|e| match e {
            mlpfast_core::Error::Value {
                arg,
                expected,
                actual,
            } if arg == "scores" => {
                PyValueError::new_err(format!("{pred_arg}: expected {expected}, got {actual}"))
            }
            other => crate::error::to_py(other),
        })?;
    Ok((
        value,
        convert::new_array(pred.py(), numpy::IxDyn(&shape), grad).into_any(),
    ))
}

fn value_loss<'py>(
    loss: Loss,
    pred: (&Bound<'py, PyAny>, &str),
    target: (&Bound<'py, PyAny>, &str),
    weights: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    for_dtype!(DType::of_input(pred.0), T => value_loss_typed::<T>(loss, pred, target, weights))
}

/// Softmax cross-entropy: mean over rows of −log softmax(scores)[y]; returns (loss, dscores).
#[pyfunction]
pub fn softmax_loss<'py>(
    scores: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    class_loss(Loss::Softmax, scores, y, None)
}

/// Multiclass SVM loss: mean over rows of Σ_{j≠y} max(0, s_j − s_y + margin); (loss, dscores).
#[pyfunction]
#[pyo3(signature = (scores, y, margin = None), text_signature = "(scores, y, margin=1.0)")]
pub fn svm_loss<'py>(
    scores: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    margin: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    let expected = "a finite number";
    let margin = args::real_or(margin, 1.0, "margin", expected)?;
    if !margin.is_finite() {
        return Err(to_py(Error::value("margin", expected, fmt_num(&margin))));
    }
    class_loss(Loss::Svm { margin }, scores, y, None)
}

/// Mean squared error over all N·K elements; returns (loss, dpred).
#[pyfunction]
pub fn mse_loss<'py>(
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    value_loss(Loss::Mse, (pred, "pred"), (target, "target"), None)
}

/// Sigmoid cross-entropy on logits (N,) or (N, K) with 0/1 targets, mean over rows;
/// returns (loss, dlogits).
#[pyfunction]
pub fn bce_loss<'py>(
    logits: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    value_loss(Loss::Bce, (logits, "logits"), (y, "y"), None)
}

/// The loss `loss` of `scores` against `y`, as the matching function above computes it;
/// the weighted mean over rows with `sample_weight`.
pub fn apply<'py>(
    loss: Loss,
    scores: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    sample_weight: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    match loss {
        Loss::Softmax | Loss::Svm { .. } => class_loss(loss, scores, y, sample_weight),
        _ => value_loss(loss, (scores, "scores"), (y, "y"), sample_weight),
    }
}
