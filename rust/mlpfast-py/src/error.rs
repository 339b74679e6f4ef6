//! The one place core errors become Python exceptions.
//!
//! Shape, value and call-order errors are bad input: `ValueError`, with the core's message
//! (argument, expected, actual). An interrupted fit becomes `KeyboardInterrupt` unless the
//! signal handler already raised something more precise.

use mlpfast_core::Error;
use pyo3::PyErr;
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};

/// Converts a core error to the Python exception it stands for.
pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::Interrupted => PyKeyboardInterrupt::new_err("training interrupted"),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// `?`-friendly conversion of core results.
pub trait IntoPyResult<T> {
    /// The result with its error mapped by [`to_py`].
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for mlpfast_core::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
