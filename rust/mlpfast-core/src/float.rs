//! The scalar trait every kernel is written against.
//!
//! mlpfast computes in `f32` (the default, for speed) or `f64` (what gradient checks use).
//! Each kernel is written once over [`Float`]; the binding crate picks the type once, at the edge.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar: `f32` or `f64`. (Being one of faer's fields is what lets the one
/// GEMM call site, `gemm::matmul`, stay generic.)
pub trait Float:
    faer::traits::ComplexField
    + crate::alloc::Zeroed
    + Copy
    + Send
    + Sync
    + Default
    + Debug
    + Display
    + PartialOrd
    + Sum
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// The type's name as numpy spells it ("float32", "float64").
    const NAME: &'static str;
    /// The largest finite value, as an f64.
    const MAX_F64: f64;
    /// The smallest positive (subnormal) value, as an f64.
    const MIN_POSITIVE_F64: f64;

    /// Converts from `f64`, rounding to nearest.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// e^self, by [`exp_f32`] / [`exp_f64`]: branch-free, so loops over it vectorize.
    fn exp(self) -> Self;
    /// e^self - 1, accurate near 0.
    fn exp_m1(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + self), accurate near 0.
    fn ln_1p(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Larger of the two (NaN-ignoring, as `f32::max`).
    fn max(self, other: Self) -> Self;
    /// Neither NaN nor infinite.
    fn is_finite(self) -> bool;
    /// Not a number.
    fn is_nan(self) -> bool;
    /// `self` where `keep`, else +0; by bit masking, so that a loop of these stores every
    /// element (compilers turn a select into masked stores, which some CPUs run slowly).
    fn keep_if(self, keep: bool) -> Self;
}

macro_rules! impl_float {
    ($t:ty, $bits:ty, $name:literal, $exp:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = $name;
            const MAX_F64: f64 = <$t>::MAX as f64;
            const MIN_POSITIVE_F64: f64 = <$t>::from_bits(1) as f64;

            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn keep_if(self, keep: bool) -> Self {
                let mask = (keep as $bits).wrapping_neg();
                <$t>::from_bits(self.to_bits() & mask)
            }
        }
    };
}

impl_float!(f32, u32, "float32", exp_f32);
impl_float!(f64, u64, "float64", exp_f64);

/// True when every value is finite (no NaN, no infinity).
pub fn all_finite<T: Float>(values: &[T]) -> bool {
    crate::simd::wide(
        #[inline(always)]
        || {
            // x·0 is 0 for finite x and NaN otherwise. Eight independent sums (a vector's
            // worth) keep the loop free of a serial dependency, so it vectorizes; chunks let
            // a NaN early in a 200 MB training set end the scan early.
            values.chunks(1 << 14).all(|chunk| {
                let mut acc = [T::ZERO; 8];
                let mut lanes = chunk.chunks_exact(8);
                for c in &mut lanes {
                    for (a, &v) in acc.iter_mut().zip(c) {
                        *a += v * T::ZERO;
                    }
                }
                let tail = lanes
                    .remainder()
                    .iter()
                    .fold(T::ZERO, |a, &v| a + v * T::ZERO);
                acc.iter().fold(tail, |a, &v| a + v) == T::ZERO
            })
        },
    )
}

// e^x = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln 2 / 2, where e^r is a Taylor polynomial
// (degree 7 for f32, 12 for f64: truncation below half an ulp) and 2^n is built from its bits.
// Rounding uses the add-and-subtract-a-large-constant trick, and 2^n is applied in two halves
// so that results down in the subnormal range come out right; no branch, no libm call, so a
// loop of these compiles to vector code. NaN goes through as NaN (the polynomial sees it).

/// e^x in single precision (within 2 ulp of the true value; 0 below −104, ∞ above 88.8).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23
    let x = x.clamp(-104.0, 88.8);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let n = n as i32;
    let half = n >> 1;
    let scale1 = f32::from_bits(((half + 127) as u32) << 23);
    let scale2 = f32::from_bits(((n - half + 127) as u32) << 23);
    p * scale1 * scale2
}

/// e^x in double precision (within 2 ulp of the true value; 0 below −746, ∞ above 709.8).
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const ROUND: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    const C: [f64; 11] = [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
    ];
    let x = x.clamp(-746.0, 709.8);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = C[0];
    for c in &C[1..] {
        p = p * r + c;
    }
    p = p * r + 1.0;
    p = p * r + 1.0;
    let n = n as i64;
    let half = n >> 1;
    let scale1 = f64::from_bits(((half + 1023) as u64) << 52);
    let scale2 = f64::from_bits(((n - half + 1023) as u64) << 52);
    p * scale1 * scale2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let ulps32 = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let ulps64 = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let mut x = -103.0f64;
        while x < 709.0 {
            if x < 88.0 {
                let xf = x as f32;
                let (ours, libm) = (exp_f32(xf), xf.exp());
                if libm.is_normal() {
                    assert!(ulps32(ours, libm) <= 2, "exp_f32({xf}) = {ours} vs {libm}");
                }
            }
            let (ours, libm) = (exp_f64(x), x.exp());
            assert!(ulps64(ours, libm) <= 2, "exp_f64({x}) = {ours} vs {libm}");
            x += 0.013_7;
        }
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f64(-800.0), 0.0);
        assert!(exp_f32(100.0).is_infinite() && exp_f64(800.0).is_infinite());
        assert!(exp_f32(f32::NAN).is_nan() && exp_f64(f64::NAN).is_nan());
        // subnormal results
        assert!((exp_f64(-740.0) / (-740.0f64).exp() - 1.0).abs() < 1e-3);
    }

    #[test]
    fn finite_scan_finds_nan_and_inf() {
        let mut v = vec![1.0f32; 3000];
        assert!(all_finite(&v));
        v[2500] = f32::NAN;
        assert!(!all_finite(&v));
        v[2500] = f32::INFINITY;
        assert!(!all_finite(&v));
        v[2500] = f32::MAX;
        assert!(all_finite(&v));
    }
}
