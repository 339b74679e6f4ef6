//! The training / evaluation flag every layer carries, as PyTorch's `Module.train()` and
//! `Module.eval()` set it.
//!
//! Only Dropout and BatchNorm compute differently in the two modes; Linear, Maxout and the
//! activations carry the flag too, so that code switching a whole stack of layers need not
//! ask which ones care. The flag is an atomic because the layer objects are frozen (shared
//! across threads without a lock of their own). Each class's `train` / `eval` / `training`
//! are three one-line methods calling this (a `#[pymethods]` block cannot take methods from
//! a macro call inside it).

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBool;

/// A layer's mode: training (the default) or evaluation.
#[derive(Debug)]
pub(crate) struct Mode(AtomicBool);

impl Default for Mode {
    fn default() -> Self {
        Mode(AtomicBool::new(true))
    }
}

impl Mode {
    /// Whether the layer is in training mode.
    pub(crate) fn training(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// `train(mode=True)`: `mode` a bool (PyTorch refuses anything else too), stored.
    pub(crate) fn train(&self, mode: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let Some(mode) = mode else {
            self.0.store(true, Ordering::Release);
            return Ok(());
        };
        let Ok(b) = mode.cast::<PyBool>() else {
            return Err(PyTypeError::new_err(format!(
                "mode: expected a bool, got {} ({})",
                mode.repr()?,
                mode.get_type().name()?
            )));
        };
        self.0.store(b.is_true(), Ordering::Release);
        Ok(())
    }

    /// `eval()`: evaluation mode.
    pub(crate) fn eval(&self) {
        self.0.store(false, Ordering::Release);
    }
}
