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
    /// e^self. This and the other transcendental functions below that name [`crate::vmath`]
    /// are branch-free arithmetic there, so loops over them vectorize.
    fn exp(self) -> Self;
    /// e^self − 1 for self ≤ 0, accurate near 0 (positive self is taken as 0; [`crate::vmath`]).
    fn exp_m1_nonpositive(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + self), accurate near 0.
    fn ln_1p(self) -> Self;
    /// self · a + b, rounded once (an instruction where the CPU has one, else libm's).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent ([`crate::vmath`]).
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
    ($t:ident, $bits:ty, $name:literal) => {
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
                crate::vmath::$t::exp(self)
            }
            #[inline(always)]
            fn exp_m1_nonpositive(self) -> Self {
                crate::vmath::$t::exp_m1_nonpositive(self)
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
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                crate::vmath::$t::tanh(self)
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

impl_float!(f32, u32, "float32");
impl_float!(f64, u64, "float64");

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

#[cfg(test)]
mod tests {
    use super::*;

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
