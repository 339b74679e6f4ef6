//! Targets and histories between Python and the core: labels or value matrices converted
//! once for a loss, and a session's epochs as a dict of lists.

use mlpfast_core::{History, Loss};
use numpy::PyArray2;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{self, Elem, Kinds};

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
        Loss::Bce => {
            OwnedTargets::Values(convert::targets(y, arg, rows, outputs, Kinds::WithBool)?)
        }
        _ => OwnedTargets::Values(convert::targets(y, arg, rows, outputs, Kinds::Numeric)?),
    })
}

/// Runs `$body` with `$t` a view of the owned targets.
macro_rules! with_targets_impl {
    ($owned:expr, $t:ident => $body:expr) => {{
        match $owned {
            $crate::targets::OwnedTargets::Classes(c) => {
                let $t = mlpfast_core::Targets::Classes(c);
                $body
            }
            $crate::targets::OwnedTargets::Values(v) => {
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

/// The history key of the validation metric.
pub(crate) fn metric_name(loss: Loss) -> &'static str {
    if loss.is_regression() {
        "val_r2"
    } else {
        "val_accuracy"
    }
}

/// Epochs `from..` of `history` as a dict of lists: `loss`; `lr` when `with_lr`; and, when
/// `with_validation`, `val_loss` and the metric (of the epochs that had validation data).
pub(crate) fn history_dict<'py>(
    py: Python<'py>,
    history: &History,
    from: usize,
    metric: &str,
    (with_lr, with_validation): (bool, bool),
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("loss", PyList::new(py, history.losses(from))?)?;
    if with_lr {
        let lrs: Vec<f64> = history.epochs[from..].iter().map(|e| e.lr).collect();
        out.set_item("lr", PyList::new(py, lrs)?)?;
    }
    if with_validation {
        let (val_loss, val_metric) = history.validation(from);
        out.set_item("val_loss", PyList::new(py, val_loss)?)?;
        out.set_item(metric, PyList::new(py, val_metric)?)?;
    }
    Ok(out)
}
