//! e^x, e^x − 1 and tanh in plain branch-free arithmetic, so that loops of them vectorize at
//! whatever width the CPU has (see [`crate::simd`]) and give the same bits at every width.
//!
//! A libm call is a scalar call per element, several times the cost of the vector loop it
//! interrupts: with libm's tanh a tanh network trained slower than numpy's.
//!
//! Method: x = n·ln 2 + r with n = round(x / ln 2) and |r| ≤ ln 2 / 2 (ln 2 split in a high
//! part whose products with n are exact and a low part); e^r − 1 is a Taylor polynomial
//! truncated below a tenth of an ulp on that interval (e^r is 1 plus it); 2^n is built from its
//! bits. n is rounded by adding and subtracting 1.5·2^m (m the mantissa's bits), and the
//! integer n is read from the bits of that sum: no float-to-integer conversion, which x86
//! has for f64 vectors only with AVX-512. No fused multiply-add, so no width changes a bit.
//!
//! Accuracy over the whole range, against a reference in higher precision (tests below and
//! tests/test_activation_kernels.py): exp and e^x − 1 within 2 ulp, tanh within 3 (measured:
//! 2); the activations built on them within 4.

macro_rules! vmath {
    (
        $modname:ident, $t:ident, mantissa = $m:expr, bias = $bias:expr,
        ln2 = ($hi:expr, $lo:expr),
        exp_range = ($elo:expr, $ehi:expr),
        exp_m1_floor = $m1lo:expr,
        exp_m1_poly = $mp:expr $(,)?
    ) => {
        pub mod $modname {
            //! The functions for this float type.

            const LOG2E: $t = std::$t::consts::LOG2_E;
            const LN2_HI: $t = $hi;
            const LN2_LO: $t = $lo;
            /// 1.5·2^m: adding it rounds to an integer (ties to even) and keeps that integer,
            /// in two's complement, in the low bits of the sum.
            const ROUND: $t = 1.5 * (1u64 << $m) as $t;

            /// round(v), for |v| < 2^(m−1).
            #[inline(always)]
            fn round(v: $t) -> $t {
                (v + ROUND) - ROUND
            }

            /// 2^h for an integral h whose power is a normal number.
            #[inline(always)]
            fn pow2(h: $t) -> $t {
                let n = (h + ROUND).to_bits().wrapping_sub(ROUND.to_bits());
                $t::from_bits(n.wrapping_add($bias) << $m)
            }

            /// (n, r) with x = n·ln 2 + r, |r| ≤ ln 2 / 2.
            #[inline(always)]
            fn reduce(x: $t) -> ($t, $t) {
                let n = round(x * LOG2E);
                (n, (x - n * LN2_HI) - n * LN2_LO)
            }

            /// e^r − 1 for |r| ≤ ln 2 / 2: r + r²·(1/2 + r/6 + …) by Horner's rule, r itself
            /// (exact) added last.
            #[inline(always)]
            fn exp_m1_reduced(r: $t) -> $t {
                let q = $mp[1..].iter().fold($mp[0], |p, &c| p * r + c);
                r + r * (r * q)
            }

            /// e^x; NaN stays NaN, +∞ gives +∞, −∞ gives 0, subnormal results are rounded once.
            #[inline(always)]
            pub fn exp(x: $t) -> $t {
                // Beyond the clamp the result is 0 or ∞ already; inside, n·ln 2 stays exact.
                let (n, r) = reduce(x.clamp($elo, $ehi));
                let p = 1.0 + exp_m1_reduced(r);
                // 2^n in two factors, each normal: a result in the subnormal range is then
                // rounded once, by the last product.
                let h = round(n * 0.5);
                p * pow2(h) * pow2(n - h)
            }

            /// e^x − 1 for x ≤ 0, accurate relative to the result near 0 (where e^x − 1
            /// would cancel); a positive x is taken as 0, NaN stays NaN.
            #[inline(always)]
            pub fn exp_m1_nonpositive(x: $t) -> $t {
                // e^x − 1 rounds to −1 below the floor; n stays in 2^n's normal range.
                let x = x.clamp($m1lo, 0.0);
                let (n, r) = reduce(x);
                let p = exp_m1_reduced(r);
                // e^x − 1 = 2^n·(e^r − 1) − (1 − 2^n), which is p when n = 0. The result has
                // x's sign, and taking it from x keeps e^−0 − 1 = −0 (r + r²·… gives +0).
                let s = pow2(n);
                (s * p - (1.0 - s)).copysign(x)
            }

            /// tanh x = −t / (2 + t) with t = e^(−2|x|) − 1, signed as x: no cancellation
            /// near 0, exactly ±1 for large |x|, ±0 and NaN kept.
            #[inline(always)]
            pub fn tanh(x: $t) -> $t {
                let t = exp_m1_nonpositive(-2.0 * x.abs());
                (-t / (2.0 + t)).copysign(x)
            }
        }
    };
}

vmath!(
    f32,
    f32,
    mantissa = 23,
    bias = 127,
    ln2 = (0.693_145_75, 1.428_606_8e-6),
    // exp(−104) is below half the smallest subnormal; exp(88.8) overflows.
    exp_range = (-104.0, 88.8),
    exp_m1_floor = -30.0,
    // Degree 8: truncation below 1e-9 relative on |r| ≤ ln 2 / 2.
    exp_m1_poly = [
        1.0 / 40320.0,
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5
    ],
);

vmath!(
    f64,
    f64,
    mantissa = 52,
    bias = 1023,
    ln2 = (6.931_471_803_691_238e-1, 1.908_214_929_270_587_7e-10),
    exp_range = (-746.0, 709.8),
    exp_m1_floor = -60.0,
    // Degree 13: truncation below 2e-17 relative.
    exp_m1_poly = [
        1.0 / 6_227_020_800.0,
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
        0.5
    ],
);

#[cfg(test)]
mod tests {
    /// Distance in ulps between two floats of the same sign (or both zero).
    fn ulps32(a: f32, b: f32) -> i64 {
        (a.to_bits() as i32 as i64 - b.to_bits() as i32 as i64).abs()
    }

    fn ulps64(a: f64, b: f64) -> i64 {
        (a.to_bits() as i64).wrapping_sub(b.to_bits() as i64).abs()
    }

    /// Points spread over [lo, hi]: a fine uniform grid plus every power of two in range.
    fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        let mut v: Vec<f64> = (0..=n)
            .map(|i| lo + (hi - lo) * i as f64 / n as f64)
            .collect();
        for e in -1074..1024 {
            let p = 2f64.powi(e);
            for s in [p, -p] {
                if (lo..=hi).contains(&s) {
                    v.push(s);
                }
            }
        }
        v
    }

    #[test]
    fn exp_is_within_two_ulp_of_a_float64_reference_in_float32() {
        for x in grid(-104.0, 89.0, 400_000) {
            let xf = x as f32;
            let want = (xf as f64).exp() as f32;
            let got = super::f32::exp(xf);
            if want.is_normal() {
                assert!(ulps32(got, want) <= 2, "exp({xf}) = {got}, want {want}");
            } else {
                // Subnormal (spacing 2^-149) or 0 or inf: one spacing.
                assert!(ulps32(got, want) <= 1, "exp({xf}) = {got}, want {want}");
            }
        }
    }

    #[test]
    fn exp_m1_and_tanh_are_within_a_few_ulp_of_a_float64_reference_in_float32() {
        for x in grid(-40.0, 40.0, 400_000) {
            let xf = x as f32;
            if xf <= 0.0 {
                let want = (xf as f64).exp_m1() as f32;
                let got = super::f32::exp_m1_nonpositive(xf);
                assert!(ulps32(got, want) <= 2, "exp_m1({xf}) = {got}, want {want}");
            }
            let want = (xf as f64).tanh() as f32;
            let got = super::f32::tanh(xf);
            assert!(ulps32(got, want) <= 3, "tanh({xf}) = {got}, want {want}");
        }
    }

    #[test]
    fn float64_functions_are_within_a_few_ulp_of_libm() {
        // libm's exp, expm1 and tanh are within an ulp of the exact value.
        for x in grid(-745.0, 709.0, 400_000) {
            let (got, want) = (super::f64::exp(x), x.exp());
            let tol = if want.is_normal() { 3 } else { 1 };
            assert!(ulps64(got, want) <= tol, "exp({x}) = {got}, want {want}");
        }
        for x in grid(-80.0, 80.0, 400_000) {
            if x <= 0.0 {
                let (got, want) = (super::f64::exp_m1_nonpositive(x), x.exp_m1());
                assert!(ulps64(got, want) <= 3, "exp_m1({x}) = {got}, want {want}");
            }
            let (got, want) = (super::f64::tanh(x), x.tanh());
            assert!(ulps64(got, want) <= 4, "tanh({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn special_values() {
        use super::{f32 as s, f64 as d};
        for (got, want) in [
            (s::exp(0.0), 1.0),
            (s::exp(-0.0), 1.0),
            (s::exp(f32::NEG_INFINITY), 0.0),
            (s::exp(f32::INFINITY), f32::INFINITY),
            (s::exp(100.0), f32::INFINITY),
            (s::exp_m1_nonpositive(f32::NEG_INFINITY), -1.0),
            (s::exp_m1_nonpositive(-1e30), -1.0),
            (s::tanh(f32::INFINITY), 1.0),
            (s::tanh(f32::NEG_INFINITY), -1.0),
            (s::tanh(f32::MAX), 1.0),
            (s::tanh(1e-40), 1e-40),
            (s::tanh(-f32::from_bits(1)), -f32::from_bits(1)),
        ] {
            assert_eq!(got.to_bits(), want.to_bits(), "{got} vs {want}");
        }
        for (got, want) in [
            (d::exp(f64::NEG_INFINITY), 0.0),
            (d::exp(800.0), f64::INFINITY),
            (d::exp_m1_nonpositive(f64::NEG_INFINITY), -1.0),
            (d::tanh(f64::INFINITY), 1.0),
            (d::tanh(-f64::MAX), -1.0),
            (d::tanh(1e-310), 1e-310),
        ] {
            assert_eq!(got.to_bits(), want.to_bits(), "{got} vs {want}");
        }
        // Signed zeros.
        assert_eq!(s::exp_m1_nonpositive(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(s::tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(s::tanh(0.0).to_bits(), 0);
        assert_eq!(d::exp_m1_nonpositive(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(d::tanh(-0.0).to_bits(), (-0.0f64).to_bits());
        // NaN in, NaN out.
        assert!(s::exp(f32::NAN).is_nan() && d::exp(f64::NAN).is_nan());
        assert!(s::exp_m1_nonpositive(f32::NAN).is_nan());
        assert!(d::exp_m1_nonpositive(f64::NAN).is_nan());
        assert!(s::tanh(f32::NAN).is_nan() && d::tanh(f64::NAN).is_nan());
    }
}
