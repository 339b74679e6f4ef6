//! The affine (fully-connected) layer: `y = x · W + b`.
//!
//! Shapes: x (N, in), W (in, out), b (out,), y (N, out). Given the upstream gradient
//! dy (N, out), the chain rule gives
//!
//! ```text
//! dW = xᵀ · dy      (in, out)
//! db = Σ_rows dy    (out,)
//! dx = dy · Wᵀ      (N, in)
//! ```
//!
//! Both transposes are strided views handed to the GEMM kernel, not copies. The kernels here
//! serve the stand-alone [`Linear`] layer and the fused network path alike.

use crate::activation::Activation;
use crate::alloc;
use crate::error::{Error, Result, fmt_shape};
use crate::float::Float;
use crate::gemm::matmul;
use crate::matrix::MatRef;
use crate::rng::{Init, Rng};

/// `out = act(x · W + b)`: the product, then bias and activation in one pass.
pub(crate) fn affine_forward<T: Float>(
    x: MatRef<'_, T>,
    weight: &[T],
    bias: &[T],
    act: Activation,
    out: &mut [T],
) {
    let outputs = bias.len();
    matmul(out, x, MatRef::new(weight, x.cols(), outputs), false);
    act.bias_forward_inplace(out, bias);
}

/// `out[j] = Σ_i d[i, j]`, summed row after row (a fixed order, whatever the threads).
pub(crate) fn column_sums<T: Float>(d: MatRef<'_, T>, out: &mut [T]) {
    crate::simd::wide(
        #[inline(always)]
        || {
            out.fill(T::ZERO);
            for i in 0..d.rows() {
                out.iter_mut().zip(d.row(i)).for_each(|(o, &v)| *o += v);
            }
        },
    )
}

/// Gradients of an affine map from the gradient `d` (N, out) at its output:
/// `dw = xᵀ·d`, `db = Σ_rows d`, and `dx = d·Wᵀ` when asked for.
pub(crate) fn affine_backward<T: Float>(
    x: MatRef<'_, T>,
    weight: &[T],
    d: MatRef<'_, T>,
    dw: &mut [T],
    db: &mut [T],
    dx: Option<&mut [T]>,
) {
    matmul(dw, x.t(), d, false);
    column_sums(d, db);
    if let Some(dx) = dx {
        matmul(dx, d, MatRef::new(weight, x.cols(), d.cols()).t(), false);
    }
}

/// Checks that `m` is (N, `cols`) and, when given, has `rows` rows.
pub(crate) fn check_matrix<T: Copy>(
    arg: &str,
    m: MatRef<'_, T>,
    rows: Option<usize>,
    cols: usize,
) -> Result<()> {
    if m.cols() != cols || rows.is_some_and(|r| r != m.rows()) {
        let expected = match rows {
            Some(r) => fmt_shape(&[r, cols]),
            None => format!("(N, {cols})"),
        };
        return Err(Error::shape(
            arg,
            expected,
            fmt_shape(&[m.rows(), m.cols()]),
        ));
    }
    Ok(())
}

/// Checks an output buffer `arg` holds `rows × cols` elements.
pub(crate) fn check_buffer<T>(arg: &str, buf: &[T], rows: usize, cols: usize) -> Result<()> {
    if buf.len() != rows * cols {
        return Err(Error::shape(
            arg,
            fmt_shape(&[rows, cols]),
            format!("{} elements", buf.len()),
        ));
    }
    Ok(())
}

/// A fully-connected layer holding its parameters and their gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear<T> {
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    /// W, row-major (in, out).
    pub weight: Vec<T>,
    /// b, (out,).
    pub bias: Vec<T>,
    /// dL/dW from the last backward.
    pub grad_weight: Vec<T>,
    /// dL/db from the last backward.
    pub grad_bias: Vec<T>,
}

impl<T: Float> Linear<T> {
    /// A layer with weights drawn by `init` and zero biases; an error (naming `in_features`)
    /// when the sizes' product overflows or the memory cannot be had.
    pub fn new(inputs: usize, outputs: usize, init: Init, rng: &mut Rng) -> Result<Self> {
        let n = alloc::check_dims(&[inputs, outputs], "in_features × out_features")?;
        let mut weight = alloc::zeros(n, "weights")?;
        init.fill(&mut weight, inputs, outputs, rng);
        Ok(Linear {
            inputs,
            outputs,
            weight,
            bias: alloc::zeros(outputs, "biases")?,
            grad_weight: alloc::zeros(n, "weight gradients")?,
            grad_bias: alloc::zeros(outputs, "bias gradients")?,
        })
    }

    /// `out = x · W + b`; x is (N, in), out is (N, out) row-major.
    pub fn forward(&self, x: MatRef<'_, T>, out: &mut [T]) -> Result<()> {
        check_matrix("x", x, None, self.inputs)?;
        check_buffer("out", out, x.rows(), self.outputs)?;
        affine_forward(x, &self.weight, &self.bias, Activation::Identity, out);
        Ok(())
    }

    /// Fills `grad_weight`, `grad_bias` and (when given) `dx` from the input `x` of the
    /// forward pass and the upstream gradient `dy` (N, out).
    pub fn backward(
        &mut self,
        x: MatRef<'_, T>,
        dy: MatRef<'_, T>,
        dx: Option<&mut [T]>,
    ) -> Result<()> {
        check_matrix("x", x, None, self.inputs)?;
        check_matrix("dout", dy, Some(x.rows()), self.outputs)?;
        if let Some(dx) = &dx {
            check_buffer("dx", dx, x.rows(), self.inputs)?;
        }
        affine_backward(
            x,
            &self.weight,
            dy,
            &mut self.grad_weight,
            &mut self.grad_bias,
            dx,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lecture's neuron: w = [2, -3], b = -3, x = [-1, -2] gives w·x + b = 1.
    #[test]
    fn lecture_neuron_forward_and_backward() {
        let mut layer = Linear::<f64>::new(2, 1, Init::Glorot, &mut Rng::new(0)).unwrap();
        layer.weight = vec![2.0, -3.0];
        layer.bias = vec![-3.0];
        let x = [-1.0, -2.0];
        let mut out = [0.0];
        layer.forward(MatRef::new(&x, 1, 2), &mut out).unwrap();
        assert_eq!(out, [1.0]);
        // upstream gradient of the sigmoid at 1: σ(1)(1 − σ(1)) ≈ 0.20
        let g = 0.196_611_933_241_481_85;
        let mut dx = [0.0; 2];
        layer
            .backward(
                MatRef::new(&x, 1, 2),
                MatRef::new(&[g], 1, 1),
                Some(&mut dx),
            )
            .unwrap();
        assert!((layer.grad_weight[0] - (-g)).abs() < 1e-15);
        assert!((layer.grad_weight[1] - (-2.0 * g)).abs() < 1e-15);
        assert!((layer.grad_bias[0] - g).abs() < 1e-15);
        assert!((dx[0] - 2.0 * g).abs() < 1e-15 && (dx[1] - (-3.0 * g)).abs() < 1e-15);
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        let mut layer = Linear::<f32>::new(3, 2, Init::He, &mut Rng::new(0)).unwrap();
        let x = [0.0f32; 4];
        let mut out = [0.0f32; 4];
        let err = layer.forward(MatRef::new(&x, 2, 2), &mut out).unwrap_err();
        assert_eq!(err.to_string(), "x: expected shape (N, 3), got (2, 2)");
        let x = [0.0f32; 6];
        let dy = [0.0f32; 6];
        let err = layer
            .backward(MatRef::new(&x, 2, 3), MatRef::new(&dy, 2, 3), None)
            .unwrap_err();
        assert_eq!(err.to_string(), "dout: expected shape (2, 2), got (2, 3)");
    }
}
