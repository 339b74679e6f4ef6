//! Integer and real arguments from Python, checked by name.
//!
//! PyO3's own conversion of a Python int to `usize` or `u64` raises `OverflowError` for -1 or
//! 2**64, and to `f64` for 10**400, naming the argument only in a note. Sizes, seeds, counts
//! and real settings come through here instead: a value of the wrong type is a `TypeError`,
//! one outside the accepted range a `ValueError` with the `arg` and `expected` attributes —
//! both naming the argument and the value, before any work.

use mlpfast_core::Error;
use mlpfast_core::error::fmt_num;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyBool;

use crate::error::to_py;

/// `obj` as an integer of type `I`; errors name `arg` and say it expects `expected`.
pub(crate) fn int<I: TryFrom<i128>>(
    obj: &Bound<'_, PyAny>,
    arg: &str,
    expected: &str,
) -> PyResult<I> {
    // An int, or a numpy integer (both have __index__); floats and bools are not counts.
    if obj.is_instance_of::<PyBool>() || !obj.hasattr("__index__")? {
        return Err(wrong_type(obj, arg, expected));
    }
    obj.extract::<i128>()
        .ok()
        .and_then(|v| I::try_from(v).ok())
        .ok_or_else(|| to_py(Error::value(arg, expected, shown(obj))))
}

/// An optional seed: None, or an int in [0, 2**64).
pub(crate) fn seed(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match obj {
        Some(s) if !s.is_none() => int(s, "seed", "an int in [0, 2**64) or None").map(Some),
        _ => Ok(None),
    }
}

/// `obj` as a float: an int, a float or anything with `__float__` (as Python's `float()`);
/// errors name `arg`: a `TypeError` for anything else, a `ValueError` for an int beyond
/// float's range.
pub(crate) fn real(obj: &Bound<'_, PyAny>, arg: &str, expected: &str) -> PyResult<f64> {
    obj.extract::<f64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(obj.py()) {
            to_py(Error::value(arg, expected, shown(obj)))
        } else {
            wrong_type(obj, arg, expected)
        }
    })
}

/// The `TypeError` for a value of the wrong type: the argument, what it takes, the value
/// and its type.
fn wrong_type(obj: &Bound<'_, PyAny>, arg: &str, expected: &str) -> PyErr {
    let kind = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    PyTypeError::new_err(format!(
        "{arg}: expected {expected}, got {} ({kind})",
        shown(obj)
    ))
}

/// An optional real setting: its default when absent (or None), else [`real`].
pub(crate) fn real_or(
    obj: Option<&Bound<'_, PyAny>>,
    default: f64,
    arg: &str,
    expected: &str,
) -> PyResult<f64> {
    match obj {
        Some(v) if !v.is_none() => real(v, arg, expected),
        _ => Ok(default),
    }
}

/// λ of weight decay: a finite number >= 0 (0 when not given).
pub(crate) fn weight_decay(obj: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
    let expected = "a finite number >= 0";
    let v = match obj {
        Some(v) => real(v, "weight_decay", expected)?,
        None => 0.0,
    };
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(to_py(Error::value("weight_decay", expected, fmt_num(&v))))
    }
}

/// A value as an error message shows it: its repr, the middle of a long one elided (an int
/// of 400 digits is shown by its ends and its length).
fn shown(obj: &Bound<'_, PyAny>) -> String {
    let text = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into());
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 48 {
        return text;
    }
    let head: String = chars[..20].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    format!("{head}…{tail} ({} characters)", chars.len())
}
