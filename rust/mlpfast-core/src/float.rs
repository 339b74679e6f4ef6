//! The scalar trait every kernel is written against.
//!
//! mlpfast computes in `f32` (the default, for speed) or `f64` (what gradient checks use).
//! Each kernel is written once over [`Float`]; the binding crate picks the type once, at the edge.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar: `f32` or `f64`.
pub trait Float:
    Copy
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

    /// Converts from `f64`, rounding to nearest.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// e^self.
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
}

macro_rules! impl_float {
    ($t:ty, $name:literal) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = $name;

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
                <$t>::exp(self)
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
        }
    };
}

impl_float!(f32, "float32");
impl_float!(f64, "float64");

/// True when every value is finite (no NaN, no infinity).
pub fn all_finite<T: Float>(values: &[T]) -> bool {
    // Summing x·0 is 0 for finite x and NaN otherwise; the branch-free loop vectorizes,
    // which matters when fit() scans a 200 MB training set.
    values
        .chunks(1024)
        .all(|chunk| chunk.iter().fold(T::ZERO, |acc, &v| acc + v * T::ZERO) == T::ZERO)
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
