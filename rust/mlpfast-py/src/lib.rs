//! mlpfast's native module, `mlpfast._core`: registration only.
//!
//! The classes and functions live one concept per file (`layers`, `activations`, `dropout`,
//! `batchnorm`, `losses`, `model`, `fit`; `mode` is the train/eval flag they all carry);
//! `state` holds a model's shared storage and training session, `targets`
//! turns labels and targets into the core's form; `convert` turns numpy arrays into core
//! views and back and holds the one dtype enum (`ByDType`, with `for_dtype!` and
//! `by_dtype!`), and `error` maps core errors and panics to Python exceptions; `bench` times
//! the GEMM kernel alone, for benches/. No numeric loop lives in this crate.

mod activations;
mod args;
mod batchnorm;
mod bench;
mod convert;
mod dropout;
mod error;
mod fit;
mod layers;
mod losses;
mod mode;
mod model;
mod state;
mod targets;

use std::ffi::c_int;

use mlpfast_core::threads;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyInt;

/// Sets the number of threads mlpfast may use (1 to 1024), process-wide.
#[pyfunction]
fn set_num_threads(n: &Bound<'_, PyAny>) -> PyResult<()> {
    if !n.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "n: expected an integer, got {}",
            n.get_type().name()?
        )));
    }
    // Any int outside 1..=1024 is refused with its own value, however large.
    let count = n.extract::<usize>().unwrap_or(0);
    threads::set_num_threads(count).map_err(|_| error::to_py(threads::bad_count(n)))
}

/// The number of threads mlpfast may use: set_num_threads, else MLPFAST_NUM_THREADS, else
/// OMP_NUM_THREADS, else the cores available to the process.
#[pyfunction]
fn get_num_threads() -> usize {
    threads::num_threads()
}

/// Where the thread limit comes from, and the cores available: what threadpoolctl shows.
#[pyfunction]
fn _thread_info() -> (&'static str, usize) {
    (threads::limit().1.name(), threads::cores())
}

/// The vector instructions elementwise loops use, and the widest this CPU has: what the
/// benchmark reports and what the tests of each path check (`MLPFAST_SIMD` caps the first).
#[pyfunction]
fn _simd_level() -> (&'static str, &'static str) {
    (
        mlpfast_core::simd::level().name(),
        mlpfast_core::simd::detected().name(),
    )
}

/// The thread limit, for threadpoolctl, which calls through the C ABI as it does for BLAS
/// libraries (its controller finds this module by this symbol).
#[unsafe(no_mangle)]
pub extern "C" fn mlpfast_get_num_threads() -> c_int {
    c_int::try_from(threads::num_threads()).unwrap_or(c_int::MAX)
}

/// Sets the thread limit, for threadpoolctl; a count outside 1 to 1024 is clamped to it.
#[unsafe(no_mangle)]
pub extern "C" fn mlpfast_set_num_threads(n: c_int) {
    let n = usize::try_from(n)
        .unwrap_or(1)
        .clamp(1, threads::MAX_THREADS);
    // In range by construction.
    let _ = threads::set_num_threads(n);
}

/// The hidden activations `MLP` accepts, maxout included.
fn activation_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = mlpfast_core::activation::ACTIVATION_NAMES
        .split(", ")
        .collect();
    names.push("maxout");
    names
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<layers::PyLinear>()?;
    m.add_class::<layers::PyMaxout>()?;
    m.add_class::<dropout::PyDropout>()?;
    m.add_class::<batchnorm::PyBatchNorm>()?;
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
    m.add_function(wrap_pyfunction!(_thread_info, m)?)?;
    m.add_function(wrap_pyfunction!(_simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(bench::_gemm_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(fit::_check_fit_settings, m)?)?;
    m.add_function(wrap_pyfunction!(fit::_fit_defaults, m)?)?;
    // The vocabulary the Python side (model files, estimators) takes from here.
    m.add("ACTIVATIONS", activation_names())?;
    m.add(
        "LOSSES",
        mlpfast_core::loss::LOSS_NAMES
            .split(", ")
            .collect::<Vec<_>>(),
    )?;
    m.add("MAXOUT_PIECES", mlpfast_core::maxout::MAXOUT_PIECES)?;
    Ok(())
}
