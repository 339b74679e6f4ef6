//! The one place core errors and Rust panics become Python exceptions.
//!
//! Shape, value and call-order errors are bad input: `ValueError`, with the core's message
//! (argument, expected, actual), and the argument's name and what it accepts as the
//! exception's `arg` and `expected` attributes (the estimators restate them in their own
//! parameter names). Memory the allocator refuses is `MemoryError`; a diverging fit is
//! `FloatingPointError` (an `ArithmeticError`) with the epoch and step as attributes. An
//! interrupted fit becomes `KeyboardInterrupt` unless the signal handler already raised
//! something more precise. A panic — a bug in mlpfast, never bad input — becomes a
//! `RuntimeError` through [`guarded`], never PyO3's `PanicException`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mlpfast_core::Error;
use pyo3::PyErr;
use pyo3::exceptions::{
    PyFloatingPointError, PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;

/// Converts a core error to the Python exception it stands for.
pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::Interrupted => PyKeyboardInterrupt::new_err("training interrupted"),
        Error::Memory { .. } => PyMemoryError::new_err(e.to_string()),
        Error::Diverged { epoch, step, .. } => {
            let err = PyFloatingPointError::new_err(e.to_string());
            Python::attach(|py| {
                let _ = err.value(py).setattr("epoch", epoch);
                let _ = err.value(py).setattr("step", step);
            });
            err
        }
        Error::Value {
            ref arg,
            ref expected,
            ..
        }
        | Error::Shape {
            ref arg,
            ref expected,
            ..
        } => {
            let err = PyValueError::new_err(e.to_string());
            Python::attach(|py| {
                // Best effort: an exception without the attributes is still the right one.
                let _ = err.value(py).setattr("arg", arg);
                let _ = err.value(py).setattr("expected", expected);
            });
            err
        }
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

/// Runs `f`, turning a panic into a `RuntimeError` that says mlpfast hit a bug (the panic's
/// own message goes to standard error, as Rust's panic hook prints it).
pub fn guarded<R>(f: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(PyRuntimeError::new_err(
            "mlpfast internal error: a bug, not your input (please report it with the \
             message printed above)",
        ))
    })
}
