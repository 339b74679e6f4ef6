//! Elementwise activation functions, each forward beside its derivative.
//!
//! | name       | f(x)                              | f'(x)                       | f' from y = f(x)        |
//! |------------|-----------------------------------|-----------------------------|-------------------------|
//! | identity   | x                                 | 1                           | 1                       |
//! | sigmoid    | σ(x) = 1 / (1 + e^-x)             | σ(x)(1 − σ(x))              | y(1 − y)                |
//! | tanh       | tanh x                            | 1 − tanh² x                 | 1 − y²                  |
//! | relu       | max(0, x)                         | 1 if x > 0 else 0           | 1 if y > 0 else 0       |
//! | leaky_relu | x if x > 0 else αx                | 1 if x > 0 else α           | 1 if y > 0 else α       |
//! | elu        | x if x > 0 else α(e^x − 1)        | 1 if x > 0 else αe^x        | 1 if y > 0 else y + α   |
//!
//! The layer API ([`Activation::backward_from_input`]) differentiates at the cached input, which
//! is exact for every α. Inside a network the derivative is taken from the output, so the
//! pre-activation need not be kept: that needs α ≥ 0 (then y > 0 exactly when x > 0).
//! At x = 0 the ReLU family uses the derivative of the x ≤ 0 side, as PyTorch does.
//!
//! tanh and the exponentials of sigmoid and ELU are [`crate::vmath`]'s, a few ulp from exact,
//! so every pass here is one vector loop (run at the CPU's full width by [`wide`]).

use crate::error::{Error, Result};
use crate::float::Float;
use crate::rng::Init;
use crate::simd::wide;

/// An elementwise activation function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// f(x) = x.
    Identity,
    /// The logistic function.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// max(0, x).
    Relu,
    /// x for x > 0, αx otherwise.
    LeakyRelu(f64),
    /// x for x > 0, α(e^x − 1) otherwise.
    Elu(f64),
}

/// The names [`Activation::from_name`] accepts.
pub const ACTIVATION_NAMES: &str = "identity, sigmoid, tanh, relu, leaky_relu, elu";

#[inline(always)]
fn sigmoid<T: Float>(v: T) -> T {
    sigmoid_given(v, (-v.abs()).exp())
}

/// σ(v) from `e = e^-|v|`, which never overflows (the two branches are the same function);
/// for callers that need `e` as well, such as the binary cross-entropy.
#[inline(always)]
pub(crate) fn sigmoid_given<T: Float>(v: T, e: T) -> T {
    let r = T::ONE / (T::ONE + e);
    if v >= T::ZERO { r } else { e * r }
}

#[inline(always)]
fn map_inplace<T: Float>(v: &mut [T], f: impl Fn(T) -> T) {
    v.iter_mut().for_each(|x| *x = f(*x));
}

#[inline(always)]
fn bias_map_inplace<T: Float>(z: &mut [T], bias: &[T], f: impl Fn(T) -> T) {
    for row in z.chunks_exact_mut(bias.len()) {
        for (x, &b) in row.iter_mut().zip(bias) {
            *x = f(*x + b);
        }
    }
}

#[inline(always)]
fn scale_by<T: Float>(d: &mut [T], v: &[T], f: impl Fn(T) -> T) {
    d.iter_mut().zip(v).for_each(|(d, &v)| *d *= f(v));
}

/// Runs `$body` with `$f` bound to this activation's f(x), one monomorphized loop per arm.
macro_rules! with_forward {
    ($act:expr, $T:ty, |$f:ident| $body:expr) => {{
        let zero = <$T>::ZERO;
        match $act {
            Activation::Identity => {
                let $f = |v: $T| v;
                $body
            }
            Activation::Sigmoid => {
                let $f = |v: $T| sigmoid(v);
                $body
            }
            Activation::Tanh => {
                let $f = |v: $T| v.tanh();
                $body
            }
            Activation::Relu => {
                // NaN passes through (as numpy's maximum and PyTorch's relu): a NaN weight
                // shows in the outputs instead of vanishing behind the unit.
                let $f = |v: $T| if v <= zero { zero } else { v };
                $body
            }
            Activation::LeakyRelu(a) => {
                let a = <$T>::from_f64(a);
                let $f = |v: $T| if v > zero { v } else { a * v };
                $body
            }
            Activation::Elu(a) => {
                let a = <$T>::from_f64(a);
                let $f = |v: $T| {
                    if v > zero {
                        v
                    } else {
                        a * v.exp_m1_nonpositive()
                    }
                };
                $body
            }
        }
    }};
}

impl Activation {
    /// Parses a name from [`ACTIVATION_NAMES`], with the default α (0.01 leaky, 1.0 ELU).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "identity" => Activation::Identity,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu(0.01),
            "elu" => Activation::Elu(1.0),
            _ => {
                return Err(Error::value(
                    "activation",
                    format!("one of {ACTIVATION_NAMES}"),
                    format!("{name:?}"),
                ));
            }
        })
    }

    /// The name [`Activation::from_name`] accepts.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Elu(_) => "elu",
        }
    }

    /// The weight initialization suited to layers feeding this activation.
    pub fn init(self) -> Init {
        match self {
            Activation::Relu | Activation::LeakyRelu(_) | Activation::Elu(_) => Init::He,
            Activation::Identity | Activation::Sigmoid | Activation::Tanh => Init::Glorot,
        }
    }

    /// Checks α: finite for the layer API; inside a network also ≥ 0 (see the module notes).
    pub fn validate(self, in_network: bool) -> Result<()> {
        if let Activation::LeakyRelu(a) | Activation::Elu(a) = self {
            if !a.is_finite() {
                return Err(Error::value(
                    "alpha",
                    "a finite number",
                    crate::error::fmt_num(&a),
                ));
            }
            if in_network && a < 0.0 {
                return Err(Error::value(
                    "alpha",
                    "a number >= 0 inside a network",
                    crate::error::fmt_num(&a),
                ));
            }
        }
        Ok(())
    }

    /// Checks that alpha is finite in `T`, the dtype the function computes in (1e39 is a
    /// finite float64 but an infinite float32, which would turn outputs into ±inf or NaN).
    pub fn validate_for<T: Float>(self) -> Result<()> {
        if let Activation::LeakyRelu(a) | Activation::Elu(a) = self {
            if !T::from_f64(a).is_finite() {
                let expected = format!(
                    "a number representable in {} (at most {})",
                    T::NAME,
                    crate::error::fmt_num(&T::MAX_F64)
                );
                return Err(Error::value("alpha", expected, crate::error::fmt_num(&a)));
            }
        }
        Ok(())
    }

    /// y = f(x), elementwise.
    pub fn forward<T: Float>(self, x: &[T], y: &mut [T]) {
        y.copy_from_slice(x);
        self.forward_inplace(y);
    }

    /// v = f(v), elementwise.
    pub fn forward_inplace<T: Float>(self, v: &mut [T]) {
        wide(
            #[inline(always)]
            || with_forward!(self, T, |f| map_inplace(v, f)),
        )
    }

    /// z = f(z + bias) for a row-major z with `bias.len()` columns: the bias add and the
    /// activation in one pass over the GEMM output.
    pub fn bias_forward_inplace<T: Float>(self, z: &mut [T], bias: &[T]) {
        debug_assert!(bias.is_empty() || z.len() % bias.len() == 0);
        if bias.is_empty() {
            return;
        }
        wide(
            #[inline(always)]
            || with_forward!(self, T, |f| bias_map_inplace(z, bias, f)),
        )
    }

    /// dx = dy · f'(x), differentiating at the input x.
    pub fn backward_from_input<T: Float>(self, x: &[T], dy: &[T], dx: &mut [T]) {
        dx.copy_from_slice(dy);
        wide(
            #[inline(always)]
            || self.backward_from_input_narrow(x, dx),
        )
    }

    #[inline(always)]
    fn backward_from_input_narrow<T: Float>(self, x: &[T], dx: &mut [T]) {
        let (zero, one) = (T::ZERO, T::ONE);
        match self {
            Activation::Identity => {}
            // At the input the derivatives can be written without the cancellation of
            // s(1 − s) and 1 − t² where s, t → 1: σ' = e/(1 + e)² with e = e^−|x|, and
            // tanh' = 4e/(1 + e)² with e = e^−2|x|, each a few ulp from exact.
            Activation::Sigmoid => scale_by(dx, x, |v| {
                let e = (-v.abs()).exp();
                let d = one + e;
                e / (d * d)
            }),
            Activation::Tanh => scale_by(dx, x, |v| {
                let e = (-(v.abs() + v.abs())).exp();
                let d = one + e;
                T::from_f64(4.0) * e / (d * d)
            }),
            Activation::Relu => scale_by(dx, x, |v| if v > zero { one } else { zero }),
            Activation::LeakyRelu(a) => {
                let a = T::from_f64(a);
                scale_by(dx, x, |v| if v > zero { one } else { a })
            }
            Activation::Elu(a) => {
                let a = T::from_f64(a);
                scale_by(dx, x, |v| if v > zero { one } else { a * v.exp() })
            }
        }
    }

    /// d = d · f'(x) where y = f(x) is all that was kept (α ≥ 0, see the module notes).
    pub fn backward_from_output_inplace<T: Float>(self, y: &[T], d: &mut [T]) {
        wide(
            #[inline(always)]
            || self.backward_from_output_narrow(y, d),
        )
    }

    #[inline(always)]
    fn backward_from_output_narrow<T: Float>(self, y: &[T], d: &mut [T]) {
        let (zero, one) = (T::ZERO, T::ONE);
        match self {
            Activation::Identity => {}
            Activation::Sigmoid => scale_by(d, y, |y| y * (one - y)),
            Activation::Tanh => scale_by(d, y, |y| one - y * y),
            Activation::Relu => {
                // A mask, not a multiply: 0 · ∞ would be NaN where the unit is off.
                d.iter_mut()
                    .zip(y)
                    .for_each(|(d, &y)| *d = d.keep_if(y > zero));
            }
            Activation::LeakyRelu(a) => {
                let a = T::from_f64(a);
                scale_by(d, y, |y| if y > zero { one } else { a })
            }
            Activation::Elu(a) => {
                let a = T::from_f64(a);
                scale_by(d, y, |y| if y > zero { one } else { y + a })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activation; 6] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Elu(1.3),
    ];

    #[test]
    fn derivative_matches_centered_difference_off_the_kink() {
        let x: Vec<f64> = vec![-2.5, -0.7, -0.1, 0.2, 0.9, 3.0];
        let ones = vec![1.0; x.len()];
        let h = 1e-6;
        for act in ALL {
            let mut dx = vec![0.0; x.len()];
            act.backward_from_input(&x, &ones, &mut dx);
            let mut y = vec![0.0; x.len()];
            act.forward(&x, &mut y);
            let mut d_out = ones.clone();
            act.backward_from_output_inplace(&y, &mut d_out);
            let f = |v: f64| {
                let mut v = [v];
                act.forward_inplace(&mut v);
                v[0]
            };
            for i in 0..x.len() {
                let num = (f(x[i] + h) - f(x[i] - h)) / (2.0 * h);
                assert!(
                    (num - dx[i]).abs() < 1e-8,
                    "{act:?} at {}: {num} vs {}",
                    x[i],
                    dx[i]
                );
                assert!(
                    (d_out[i] - dx[i]).abs() < 1e-12,
                    "{act:?} from output at {}",
                    x[i]
                );
            }
        }
    }

    /// Inputs over the whole range: signed zeros, subnormals, the extremes, ±∞, NaN and a
    /// spread of ordinary values.
    fn edge_and_spread<T: Float>() -> Vec<T> {
        let mut v: Vec<f64> = vec![
            0.0,
            -0.0,
            1e-310,
            -1e-310,
            1e-40,
            -1e-40,
            f64::MAX,
            -f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let mut rng = crate::rng::Rng::new(7);
        for i in 0..997 {
            let scale = [1e-6, 0.1, 1.0, 5.0, 30.0, 1e3][i % 6];
            v.push(rng.normal() * scale);
        }
        v.into_iter().map(T::from_f64).collect()
    }

    fn bits<T: Float>(v: &[T]) -> Vec<u64> {
        v.iter().map(|x| x.to_f64().to_bits()).collect()
    }

    /// Every pass of every activation at each vector width the CPU has.
    fn all_passes_at<T: Float>(level: crate::simd::Level) -> Vec<Vec<u64>> {
        let x = edge_and_spread::<T>();
        let dy: Vec<T> = x.iter().rev().copied().collect();
        let bias: Vec<T> = x[..7].iter().map(|&b| b * T::from_f64(0.5)).collect();
        let n = x.len() / 7 * 7;
        crate::simd::at_level(level, || {
            let mut out = Vec::new();
            for act in ALL {
                let mut y = vec![T::ZERO; x.len()];
                act.forward(&x, &mut y);
                let mut z = x[..n].to_vec();
                act.bias_forward_inplace(&mut z, &bias);
                let mut dx = vec![T::ZERO; x.len()];
                act.backward_from_input(&x, &dy, &mut dx);
                let mut d = dy.clone();
                act.backward_from_output_inplace(&y, &mut d);
                out.extend([bits(&y), bits(&z), bits(&dx), bits(&d)]);
            }
            out
        })
    }

    #[test]
    fn every_vector_width_gives_the_same_bits() {
        use crate::simd::Level;
        let detected = crate::simd::detected();
        let base32 = all_passes_at::<f32>(Level::Baseline);
        let base64 = all_passes_at::<f64>(Level::Baseline);
        for level in [Level::Avx2, Level::Avx512] {
            if level > detected {
                continue;
            }
            assert!(all_passes_at::<f32>(level) == base32, "f32 at {level:?}");
            assert!(all_passes_at::<f64>(level) == base64, "f64 at {level:?}");
        }
    }

    #[test]
    fn sigmoid_is_stable_for_large_inputs() {
        let mut v = vec![-1000.0f32, 1000.0, 0.0];
        Activation::Sigmoid.forward_inplace(&mut v);
        assert_eq!(v, vec![0.0, 1.0, 0.5]);
    }

    #[test]
    fn bias_forward_adds_each_column_bias() {
        let mut z = vec![-1.0f64, 0.5, 2.0, -3.0];
        Activation::Relu.bias_forward_inplace(&mut z, &[0.5, -1.0]);
        assert_eq!(z, vec![0.0, 0.0, 2.5, 0.0]);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for act in ALL {
            assert_eq!(
                Activation::from_name(act.name()).unwrap().name(),
                act.name()
            );
        }
        let err = Activation::from_name("swish").unwrap_err().to_string();
        assert!(err.contains("activation") && err.contains("swish") && err.contains("relu"));
        assert!(Activation::LeakyRelu(-0.1).validate(true).is_err());
        assert!(Activation::LeakyRelu(-0.1).validate(false).is_ok());
    }
}
