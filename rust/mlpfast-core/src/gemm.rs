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
    if m == 1 && n >= 2 && !accumulate && b.col_stride() == 1 && one_row(dst, a, b) {
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

/// Output columns [`one_row`] keeps in registers at once: 8 AVX-512 registers of f32.
const COLUMNS: usize = 128;

/// `dst = a · b` for one row `a` and a row-major `b`, the product of one-row inference.
/// faer packs its operands even then, which is most of the time for one row; here each block
/// of output columns is summed in registers while `b`'s rows stream past once. Each output is
/// `fma(a_k−1, b_k−1, … fma(a_1, b_1, a_0·b_0))`, in order: exactly what faer computes for
/// one row of two or more columns (one column is a dot product there, summed in lanes, and
/// stays faer's), so a row's result does not depend on which kernel ran: scikit-learn checks
/// that predicting rows one by one gives what predicting them together gives. It runs with
/// AVX2 and FMA or wider (see [`crate::simd`]) and returns false without them, leaving the
/// product to faer.
fn one_row<T: Float>(dst: &mut [T], a: MatRef<'_, T>, b: MatRef<'_, T>) -> bool {
    if crate::simd::active() < crate::simd::Level::Avx2 {
        return false;
    }
    let k = a.cols();
    let (rs, data) = (b.row_stride(), b.data());
    crate::simd::wide(
        #[inline(always)]
        || {
            let mut blocks = dst.chunks_exact_mut(COLUMNS);
            let mut j0 = 0;
            for block in &mut blocks {
                column_block::<T, COLUMNS>(block, a, data, rs, j0, k);
                j0 += COLUMNS;
            }
            let mut tails = blocks.into_remainder().chunks_exact_mut(8);
            for block in &mut tails {
                column_block::<T, 8>(block, a, data, rs, j0, k);
                j0 += 8;
            }
            for (c, o) in tails.into_remainder().iter_mut().enumerate() {
                *o = (0..k).fold(T::ZERO, |acc, i| {
                    a.at(0, i).mul_add(data[i * rs + j0 + c], acc)
                });
            }
        },
    );
    true
}

/// `out = Σ_i a[0, i] · b[i, j0..j0 + W]` by fused multiply-adds in order, the W sums kept in
/// registers.
#[inline(always)]
fn column_block<T: Float, const W: usize>(
    out: &mut [T],
    a: MatRef<'_, T>,
    data: &[T],
    rs: usize,
    j0: usize,
    k: usize,
) {
    let mut acc = [T::ZERO; W];
    for i in 0..k {
        let x = a.at(0, i);
        let w: &[T; W] = data[i * rs + j0..][..W].try_into().expect("W columns");
        for c in 0..W {
            acc[c] = x.mul_add(w[c], acc[c]);
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

    /// faer's product, which [`one_row`] stands in for.
    fn faer_product<T: Float>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> Vec<T> {
        let mut out = vec![T::ZERO; a.rows() * b.cols()];
        let (ad, bd) = (
            &a.data()[..a.rows() * a.cols()],
            &b.data()[..b.rows() * b.cols()],
        );
        let av = FaerRef::<T>::from_row_major_slice(ad, a.rows(), a.cols());
        let bv = FaerRef::<T>::from_row_major_slice(bd, b.rows(), b.cols());
        let dst = MatMut::<T>::from_row_major_slice_mut(&mut out, a.rows(), b.cols());
        faer::linalg::matmul::matmul(dst, Accum::Replace, av, bv, T::ONE, Par::Seq);
        out
    }

    fn one_row_agrees_with_faer<T: Float>() {
        use crate::simd::{Level, at_level, detected};
        // Column counts that exercise the 128-wide blocks, the 8-wide tail and the last few.
        for (k, n) in [
            (784, 256),
            (37, 1),
            (100, 1),
            (100, 2),
            (100, 3),
            (3, 100),
            (37, 7),
            (5, 10),
            (300, 130),
            (64, 1000),
        ] {
            // Pseudo-random values: smooth ones can hide a different order of summation.
            let mut rng = crate::rng::Rng::new((k * n) as u64);
            let a: Vec<T> = (0..k).map(|_| T::from_f64(rng.normal())).collect();
            let b: Vec<T> = (0..k * n).map(|_| T::from_f64(rng.normal())).collect();
            let (a, b) = (MatRef::new(&a, 1, k), MatRef::new(&b, k, n));
            let want = faer_product(a, b);
            for level in [Level::Baseline, Level::Avx2, Level::Avx512] {
                if level > detected() {
                    continue;
                }
                let mut out = vec![T::ZERO; n];
                at_level(level, || matmul(&mut out, a, b, false));
                let same = out.iter().zip(&want).all(|(x, y)| x.to_f64() == y.to_f64());
                assert!(same, "{} {level:?} 1x{k}x{n}", T::NAME);
            }
        }
    }

    #[test]
    fn one_row_products_give_faers_bits_at_every_width() {
        one_row_agrees_with_faer::<f32>();
        one_row_agrees_with_faer::<f64>();
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
