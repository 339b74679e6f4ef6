//! The one place that calls the GEMM kernel.
//!
//! `dst (m × n) = a (m × k) · b (k × n)`, or `dst += a · b`, where `a` and `b` are strided
//! views: `xᵀ · dy` and `dy · Wᵀ` in backward pass transposed views, never copies. The kernel
//! is faer's matrix product (pure Rust, runtime-dispatched SIMD, no system BLAS), always run
//! on the calling thread: mlpfast splits its work into independent products itself (see
//! `step`), so that the split — and so every sum's order — depends on the shapes alone, never
//! on the number of threads.

use faer::{Accum, MatMut, MatRef as FaerRef, Par};

use crate::float::Float;
use crate::matrix::MatRef;

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
    if m <= FEW_ROWS && b.col_stride() == 1 {
        few_rows(dst, a, b, accumulate);
        return;
    }
    let view = |m: MatRef<'_, T>| {
        // SAFETY: `in_bounds` (checked above) means every index the shape and strides reach
        // is inside the slice.
        unsafe {
            FaerRef::<T>::from_raw_parts(
                m.data().as_ptr(),
                m.rows(),
                m.cols(),
                m.row_stride() as isize,
                m.col_stride() as isize,
            )
        }
    };
    // SAFETY: `dst` holds m × n elements (checked above), row-major, and is borrowed
    // exclusively, so disjoint from the operands.
    let out = unsafe { MatMut::<T>::from_raw_parts_mut(dst.as_mut_ptr(), m, n, n as isize, 1) };
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer::linalg::matmul::matmul(out, accum, view(a), view(b), T::ONE, Par::Seq);
}

/// Products with at most this many rows (one-row inference, above all) take [`few_rows`].
const FEW_ROWS: usize = 2;

/// Output columns [`few_rows`] keeps in registers at once: 8 AVX-512 registers of f32.
const COLUMNS: usize = 128;

/// `dst (+)= a · b` for a few rows and a row-major `b`. A general kernel packs its operands
/// into blocks first, which for one row is most of the time; here each block of output
/// columns is summed in registers while `b`'s rows stream past, in vector loops at the CPU's
/// full width. Each output is summed over `b`'s rows in order (no fused multiply-add), so
/// every width gives the same bits.
fn few_rows<T: Float>(dst: &mut [T], a: MatRef<'_, T>, b: MatRef<'_, T>, accumulate: bool) {
    let (k, n) = (a.cols(), b.cols());
    let (rs, data) = (b.row_stride(), b.data());
    crate::simd::wide(
        #[inline(always)]
        || {
            for (r, out) in dst.chunks_exact_mut(n).enumerate() {
                let mut blocks = out.chunks_exact_mut(COLUMNS);
                let mut j0 = 0;
                for block in &mut blocks {
                    column_block::<T, COLUMNS>(block, a, r, data, rs, j0, k, accumulate);
                    j0 += COLUMNS;
                }
                let tail = blocks.into_remainder();
                let mut tails = tail.chunks_exact_mut(8);
                for block in &mut tails {
                    column_block::<T, 8>(block, a, r, data, rs, j0, k, accumulate);
                    j0 += 8;
                }
                for (c, o) in tails.into_remainder().iter_mut().enumerate() {
                    let mut acc = if accumulate { *o } else { T::ZERO };
                    for i in 0..k {
                        acc += a.at(r, i) * data[i * rs + j0 + c];
                    }
                    *o = acc;
                }
            }
        },
    )
}

/// `out (+)= Σ_i a[r, i] · b[i, j0..j0 + W]`, the W sums kept in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn column_block<T: Float, const W: usize>(
    out: &mut [T],
    a: MatRef<'_, T>,
    r: usize,
    data: &[T],
    rs: usize,
    j0: usize,
    k: usize,
    accumulate: bool,
) {
    let mut acc = [T::ZERO; W];
    if accumulate {
        acc.copy_from_slice(out);
    }
    for i in 0..k {
        let x = a.at(r, i);
        let w: &[T; W] = data[i * rs + j0..][..W].try_into().expect("W columns");
        for c in 0..W {
            acc[c] += x * w[c];
        }
    }
    out.copy_from_slice(&acc);
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

    fn close(x: &[f64], y: &[f64]) -> bool {
        x.len() == y.len() && x.iter().zip(y).all(|(a, b)| (a - b).abs() < 1e-12)
    }

    #[test]
    fn strided_and_transposed_operands_match_naive_product() {
        let a: Vec<f64> = (0..12).map(|v| v as f64 * 0.5 - 2.0).collect();
        let b: Vec<f64> = (0..12).map(|v| (v as f64).sin()).collect();
        let a = MatRef::new(&a, 3, 4);
        let b = MatRef::new(&b, 4, 3);
        let mut out = vec![0.0; 9];
        matmul(&mut out, a, b, false);
        assert!(close(&out, &naive(a, b)));
        // aᵀ (4×3) · bᵀ (3×4) through strides alone
        let mut out_t = vec![0.0; 16];
        matmul(&mut out_t, a.t(), b.t(), false);
        assert!(close(&out_t, &naive(a.t(), b.t())));
        // a column block, transposed: what the weight-gradient tasks read
        let mut out_c = vec![0.0; 4];
        let blk = a.col_block(1, 3);
        matmul(
            &mut out_c,
            blk.t(),
            MatRef::new(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0][..], 3, 2),
            false,
        );
        assert!(close(
            &out_c,
            &naive(
                blk.t(),
                MatRef::new(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0][..], 3, 2)
            )
        ));
        // accumulate adds to what is there
        let mut acc = vec![1.0; 9];
        matmul(&mut acc, a, b, true);
        let expect: Vec<f64> = naive(a, b).iter().map(|v| v + 1.0).collect();
        assert!(close(&acc, &expect));
    }

    #[test]
    fn few_rows_match_the_naive_product_and_agree_at_every_width() {
        use crate::simd::{Level, at_level, detected};
        // Column counts that exercise the 64-wide blocks, the 8-wide tail and the last few.
        for n in [1, 7, 8, 10, 64, 75, 130, 256] {
            for rows in 1..=FEW_ROWS {
                let k = 37;
                let a: Vec<f64> = (0..rows * k).map(|v| (v as f64 * 0.37).sin()).collect();
                let b: Vec<f64> = (0..k * n).map(|v| (v as f64 * 0.11).cos()).collect();
                let (a, b) = (MatRef::new(&a, rows, k), MatRef::new(&b, k, n));
                let mut out = vec![0.0; rows * n];
                matmul(&mut out, a, b, false);
                assert!(close(&out, &naive(a, b)), "{rows}x{k}x{n}");
                let mut acc = vec![0.5; rows * n];
                matmul(&mut acc, a, b, true);
                let expect: Vec<f64> = naive(a, b).iter().map(|v| v + 0.5).collect();
                assert!(close(&acc, &expect), "accumulate {rows}x{k}x{n}");
                // A transposed (strided) left operand takes the same path.
                let at: Vec<f64> = (0..k * rows).map(|v| (v as f64).sqrt()).collect();
                let at = MatRef::new(&at, k, rows).t();
                let mut out_t = vec![0.0; rows * n];
                matmul(&mut out_t, at, b, false);
                assert!(close(&out_t, &naive(at, b)), "transposed {rows}x{k}x{n}");
                for level in [Level::Baseline, Level::Avx2, Level::Avx512] {
                    if level > detected() {
                        continue;
                    }
                    let mut at_l = vec![0.0; rows * n];
                    at_level(level, || matmul(&mut at_l, a, b, false));
                    assert!(at_l == out, "{level:?} {rows}x{k}x{n}");
                    let b32: Vec<f32> = b.data().iter().map(|&v| v as f32).collect();
                    let a32: Vec<f32> = a.data().iter().map(|&v| v as f32).collect();
                    let (a32, b32) = (MatRef::new(&a32, rows, k), MatRef::new(&b32, k, n));
                    let mut base = vec![0.0f32; rows * n];
                    at_level(Level::Baseline, || matmul(&mut base, a32, b32, false));
                    let mut wide = vec![0.0f32; rows * n];
                    at_level(level, || matmul(&mut wide, a32, b32, false));
                    assert!(base == wide, "f32 {level:?} {rows}x{k}x{n}");
                }
            }
        }
    }

    #[test]
    fn single_precision_matches_too() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let mut out = vec![0.0f32; 4];
        matmul(
            &mut out,
            MatRef::new(&a, 2, 3),
            MatRef::new(&a, 2, 3).t(),
            false,
        );
        assert_eq!(out, vec![5.0, 14.0, 14.0, 50.0]);
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
