//! mlpfast's native module, `mlpfast._core`: registration only.
//!
//! The classes and functions live one concept per file (`layers`, `activations`, `losses`,
//! `model`); `convert` turns numpy arrays into core views and back, and `error` maps core
//! errors to Python exceptions. No numeric loop lives in this crate.

mod activations;
mod convert;
mod error;
mod fit;
mod layers;
mod losses;
mod model;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Sets the number of threads mlpfast's own pool uses (n >= 1).
#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    if n < 1 {
        return Err(PyValueError::new_err(format!(
            "n: expected an integer >= 1, got {n}"
        )));
    }
    mlpfast_core::threads::set_num_threads(n as usize).map_err(error::to_py)
}

/// The number of threads mlpfast uses (default: the cores available, or MLPFAST_NUM_THREADS).
#[pyfunction]
fn get_num_threads() -> usize {
    mlpfast_core::threads::num_threads()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<layers::PyLinear>()?;
    m.add_class::<layers::PyMaxout>()?;
    m.add_class::<activations::PyActivation>()?;
    m.add_class::<activations::PyIdentity>()?;
    m.add_class::<activations::PySigmoid>()?;
    m.add_class::<activations::PyTanh>()?;
    m.add_class::<activations::PyReLU>()?;
    m.add_class::<activations::PyLeakyReLU>()?;
    m.add_class::<activations::PyELU>()?;
    m.add_class::<model::PyMLP>()?;
    m.add_function(wrap_pyfunction!(losses::softmax_loss, m)?)?;
    m.add_function(wrap_pyfunction!(losses::svm_loss, m)?)?;
    m.add_function(wrap_pyfunction!(losses::mse_loss, m)?)?;
    m.add_function(wrap_pyfunction!(losses::bce_loss, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    Ok(())
}
