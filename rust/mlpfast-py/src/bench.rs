//! `_gemm_seconds`: the GEMM kernel timed alone, for benches/ (faer's kernel against numpy's
//! on each of the training products).

use mlpfast_core::{Float, MatRef, alloc, gemm};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{DType, for_dtype};
use crate::error::IntoPyResult;

/// The best of `reps` runs of `dst (m × n) = a · b` on the calling thread, in seconds, where
/// `a` is m × k (stored k × m and read transposed when `ta`) and `b` is k × n (stored n × k
/// when `tb`): the three products of a dense layer's step are `x·W`, `xᵀ·dy` and `dy·Wᵀ`.
#[pyfunction]
#[pyo3(signature = (m, k, n, ta, tb, dtype, reps))]
#[allow(clippy::too_many_arguments)]
pub fn _gemm_seconds(
    py: Python<'_>,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    dtype: &Bound<'_, PyAny>,
    reps: usize,
) -> PyResult<f64> {
    if m == 0 || k == 0 || n == 0 || reps == 0 {
        return Err(PyValueError::new_err(format!(
            "m, k, n, reps: expected positive sizes, got {m}, {k}, {n}, {reps}"
        )));
    }
    for_dtype!(DType::parse(dtype)?, T => time::<T>(py, (m, k, n), (ta, tb), reps))
}

fn time<T: Float>(
    py: Python<'_>,
    (m, k, n): (usize, usize, usize),
    (ta, tb): (bool, bool),
    reps: usize,
) -> PyResult<f64> {
    let fill = |len: usize, what| -> PyResult<Vec<T>> {
        let mut v = alloc::zeros::<T>(len, what).py()?;
        v.iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = T::from_f64((i % 7) as f64 * 0.25 - 0.5));
        Ok(v)
    };
    let sizes = |r: usize, c: usize| {
        r.checked_mul(c)
            .ok_or_else(|| PyValueError::new_err("m, k, n: the product overflows"))
    };
    let a = fill(sizes(m, k)?, "a")?;
    let b = fill(sizes(k, n)?, "b")?;
    let mut dst = fill(sizes(m, n)?, "dst")?;
    let av = if ta {
        MatRef::new(&a, k, m).t()
    } else {
        MatRef::new(&a, m, k)
    };
    let bv = if tb {
        MatRef::new(&b, n, k).t()
    } else {
        MatRef::new(&b, k, n)
    };
    Ok(py.detach(|| {
        (0..reps)
            .map(|_| {
                let start = std::time::Instant::now();
                gemm::matmul(&mut dst, av, bv, false);
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    }))
}
