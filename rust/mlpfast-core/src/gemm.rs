//! The one place that calls the GEMM kernel.
//!
//! `dst (m × n) = a (m × k) · b (k × n)`, or `dst += a · b`, where `a` and `b` are strided
//! views: `xᵀ · dy` and `dy · Wᵀ` in backward pass transposed views, never copies. The kernel is
//! the `gemm` crate (pure Rust, runtime-dispatched SIMD, no system BLAS). Products large enough
//! to repay the hand-off run on mlpfast's pool; the kernel splits them over blocks of the
//! output, so every element is summed in the same order whatever the thread count.

use gemm::Parallelism;

use crate::float::Float;
use crate::matrix::MatRef;
use crate::threads;

/// Below this many multiply-adds a product runs on the calling thread: handing it to the
/// pool costs more than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 20;

/// `dst = a · b` (or `dst += a · b` when `accumulate`), `dst` row-major `a.rows() × b.cols()`.
///
/// # Panics
/// When the shapes disagree: callers derive them from validated layer sizes, so a mismatch is
/// a bug in mlpfast.
pub fn matmul<T: Float>(dst: &mut [T], a: MatRef<'_, T>, b: MatRef<'_, T>, accumulate: bool) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    assert_eq!(b.rows(), k, "matmul: inner dimensions {k} and {}", b.rows());
    assert_eq!(
        dst.len(),
        m * n,
        "matmul: destination of {} for {m}x{n}",
        dst.len()
    );
    assert!(a.in_bounds() && b.in_bounds(), "matmul: view out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(T::ZERO);
        }
        return;
    }
    let mut run = |parallelism: Parallelism| {
        // SAFETY: `dst` holds m*n elements, row-major (row stride n, column stride 1);
        // `in_bounds` checked that every element the views address lies inside their slices;
        // `dst` is a unique borrow, so it overlaps neither operand.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                accumulate,
                a.data().as_ptr(),
                a.col_stride() as isize,
                a.row_stride() as isize,
                b.data().as_ptr(),
                b.col_stride() as isize,
                b.row_stride() as isize,
                T::ONE,
                T::ONE,
                false,
                false,
                false,
                parallelism,
            )
        }
    };
    let pool = if m * n * k >= PARALLEL_MIN_WORK {
        threads::pool()
    } else {
        None
    };
    match pool {
        Some(pool) => {
            let nt = pool.current_num_threads();
            pool.install(|| run(Parallelism::Rayon(nt)));
        }
        None => run(Parallelism::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Vec<f64> {
        let mut out = vec![0.0; a.rows() * b.cols()];
        for i in 0..a.rows() {
            for j in 0..b.cols() {
                out[i * b.cols() + j] = (0..a.cols()).map(|p| a.at(i, p) * b.at(p, j)).sum();
            }
        }
        out
    }

    #[test]
    fn strided_and_transposed_operands_match_naive_product() {
        let a: Vec<f64> = (0..12).map(|v| v as f64 * 0.5 - 2.0).collect();
        let b: Vec<f64> = (0..12).map(|v| (v as f64).sin()).collect();
        let a = MatRef::new(&a, 3, 4);
        let b = MatRef::new(&b, 4, 3);
        let mut out = vec![0.0; 9];
        matmul(&mut out, a, b, false);
        for (x, y) in out.iter().zip(naive(a, b)) {
            assert!((x - y).abs() < 1e-12);
        }
        // aᵀ (4×3) · bᵀ (3×4) through strides alone
        let mut out_t = vec![0.0; 16];
        matmul(&mut out_t, a.t(), b.t(), false);
        let expect = naive(a.t(), b.t());
        for (x, y) in out_t.iter().zip(&expect) {
            assert!((x - y).abs() < 1e-12);
        }
        // accumulate adds to what is there
        let mut acc = vec![1.0; 9];
        matmul(&mut acc, a, b, true);
        for (x, y) in acc.iter().zip(naive(a, b)) {
            assert!((x - (y + 1.0)).abs() < 1e-12);
        }
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let a: Vec<f32> = vec![];
        let mut out = vec![5.0f32; 4];
        matmul(
            &mut out,
            MatRef::new(&a, 2, 0),
            MatRef::new(&a, 0, 2),
            false,
        );
        assert_eq!(out, vec![0.0; 4]);
    }
}
