//! Integer arguments from Python, checked by name.
//!
//! PyO3's own conversion of a Python int to `usize` or `u64` raises `OverflowError` for -1 or
//! 2**64 and names the argument only in a note. Sizes, seeds and counts come through here
//! instead: anything but an integer (a bool included) is a `TypeError`, an integer outside
//! the accepted range a `ValueError` with the `arg` and `expected` attributes — both naming
//! the argument and the value, before any work.

use mlpfast_core::Error;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBool;

use crate::error::to_py;

/// `obj` as an integer of type `I`; errors name `arg` and say it expects `expected`.
pub(crate) fn int<I: TryFrom<i128>>(
    obj: &Bound<'_, PyAny>,
    arg: &str,
    expected: &str,
) -> PyResult<I> {
    let shown = || {
        obj.repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".into())
    };
    // An int, or a numpy integer (both have __index__); floats and bools are not counts.
    if obj.is_instance_of::<PyBool>() || !obj.hasattr("__index__")? {
        let kind = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        return Err(PyTypeError::new_err(format!(
            "{arg}: expected {expected}, got {} ({kind})",
            shown()
        )));
    }
    obj.extract::<i128>()
        .ok()
        .and_then(|v| I::try_from(v).ok())
        .ok_or_else(|| to_py(Error::value(arg, expected, shown())))
}

/// An optional seed: None, or an int in [0, 2**64).
pub(crate) fn seed(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match obj {
        Some(s) if !s.is_none() => int(s, "seed", "an int in [0, 2**64) or None").map(Some),
        _ => Ok(None),
    }
}
