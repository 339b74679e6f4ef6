//! The maxout layer: k affine pieces, the elementwise maximum of them.
//!
//! Shapes: x (N, in), W (k, in, out), b (k, out), y (N, out) with
//!
//! ```text
//! z_p = x · W_p + b_p            p = 0..k
//! y   = max_p z_p                 (elementwise; the first maximal piece wins ties)
//! ```
//!
//! The max gate routes the gradient: only the winning piece of each output sees dy. With
//! dz_p = dy where piece p won and 0 elsewhere,
//!
//! ```text
//! dW_p = xᵀ · dz_p,   db_p = Σ_rows dz_p,   dx = Σ_p dz_p · W_pᵀ
//! ```
//!
//! The winners are kept as one byte per output, so k ≤ 255.

use crate::activation::Activation;
use crate::alloc;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::gemm::matmul;
use crate::linear::{affine_forward, check_buffer, check_matrix, column_sums};
use crate::matrix::MatRef;
use crate::rng::{Init, Rng};

/// Pieces per unit of the maxout layers `MLP(activation="maxout")` builds.
pub const MAXOUT_PIECES: usize = 2;

/// The largest number of pieces (the winner index is stored in a byte).
pub const MAX_PIECES: usize = 255;

/// `out = max_p (x · W_p + b_p)`, recording the winning piece of each element in `argmax`.
/// `z` is scratch of `pieces × N × out`.
pub(crate) fn maxout_forward<T: Float>(
    x: MatRef<'_, T>,
    weight: &[T],
    bias: &[T],
    pieces: usize,
    z: &mut [T],
    out: &mut [T],
    argmax: &mut [u8],
) {
    let outputs = bias.len() / pieces;
    let wsize = x.cols() * outputs;
    let zsize = x.rows() * outputs;
    for p in 0..pieces {
        affine_forward(
            x,
            &weight[p * wsize..(p + 1) * wsize],
            &bias[p * outputs..(p + 1) * outputs],
            Activation::Identity,
            &mut z[p * zsize..(p + 1) * zsize],
        );
    }
    out.copy_from_slice(&z[..zsize]);
    argmax.fill(0);
    for p in 1..pieces {
        let zp = &z[p * zsize..(p + 1) * zsize];
        for ((o, a), &v) in out.iter_mut().zip(argmax.iter_mut()).zip(zp) {
            // A NaN piece wins and stays (as PyTorch's max): NaN weights are never hidden.
            if v > *o || v.is_nan() {
                *o = v;
                *a = p as u8;
            }
        }
    }
}

/// Gradients of maxout from `dy` (N, out) and the winners of the forward pass.
/// `dz` is scratch of `N × out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn maxout_backward<T: Float>(
    x: MatRef<'_, T>,
    weight: &[T],
    pieces: usize,
    dy: MatRef<'_, T>,
    argmax: &[u8],
    dz: &mut [T],
    dw: &mut [T],
    db: &mut [T],
    mut dx: Option<&mut [T]>,
) {
    let outputs = dy.cols();
    let wsize = x.cols() * outputs;
    let dy = dy.as_row_major().expect("maxout gradient is row-major");
    for p in 0..pieces {
        for ((d, &g), &a) in dz.iter_mut().zip(dy).zip(argmax) {
            *d = if a as usize == p { g } else { T::ZERO };
        }
        let dzm = MatRef::new(dz, x.rows(), outputs);
        let wp = &weight[p * wsize..(p + 1) * wsize];
        matmul(&mut dw[p * wsize..(p + 1) * wsize], x.t(), dzm, false);
        column_sums(dzm, &mut db[p * outputs..(p + 1) * outputs]);
        if let Some(dx) = dx.as_deref_mut() {
            matmul(dx, dzm, MatRef::new(wp, x.cols(), outputs).t(), p > 0);
        }
    }
}

/// A maxout layer holding its parameters and their gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct Maxout<T> {
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    /// Number of affine pieces k.
    pub pieces: usize,
    /// W, row-major (k, in, out).
    pub weight: Vec<T>,
    /// b, (k, out).
    pub bias: Vec<T>,
    /// dL/dW from the last backward.
    pub grad_weight: Vec<T>,
    /// dL/db from the last backward.
    pub grad_bias: Vec<T>,
}

impl<T: Float> Maxout<T> {
    /// A layer of `pieces` affine maps (He-initialized, zero biases); `pieces` in 1..=255.
    pub fn new(inputs: usize, outputs: usize, pieces: usize, rng: &mut Rng) -> Result<Self> {
        check_pieces(pieces)?;
        let n = alloc::check_dims(
            &[pieces, inputs, outputs],
            "pieces × in_features × out_features",
        )?;
        let mut weight = alloc::zeros(n, "weights")?;
        for w in weight.chunks_mut((inputs * outputs).max(1)) {
            Init::He.fill(w, inputs, outputs, rng);
        }
        Ok(Maxout {
            inputs,
            outputs,
            pieces,
            grad_weight: alloc::zeros(n, "weight gradients")?,
            weight,
            bias: alloc::zeros(pieces * outputs, "biases")?,
            grad_bias: alloc::zeros(pieces * outputs, "bias gradients")?,
        })
    }

    /// `out = max_p (x · W_p + b_p)`; returns the winning piece of each output element,
    /// which [`Maxout::backward`] needs.
    pub fn forward(&self, x: MatRef<'_, T>, out: &mut [T]) -> Result<Vec<u8>> {
        check_matrix("x", x, None, self.inputs)?;
        check_buffer("out", out, x.rows(), self.outputs)?;
        let n = x.rows() * self.outputs;
        let mut z = alloc::zeros2(self.pieces, n, "maxout pieces")?;
        let mut argmax = alloc::zeros(n, "maxout winners")?;
        maxout_forward(
            x,
            &self.weight,
            &self.bias,
            self.pieces,
            &mut z,
            out,
            &mut argmax,
        );
        Ok(argmax)
    }

    /// Fills the gradients and (when given) `dx` from the forward input `x`, the upstream
    /// gradient `dy` (N, out) and the winners `forward` returned.
    pub fn backward(
        &mut self,
        x: MatRef<'_, T>,
        dy: MatRef<'_, T>,
        argmax: &[u8],
        dx: Option<&mut [T]>,
    ) -> Result<()> {
        check_matrix("x", x, None, self.inputs)?;
        check_matrix("dout", dy, Some(x.rows()), self.outputs)?;
        if argmax.len() != x.rows() * self.outputs {
            return Err(Error::State(
                "maxout backward: the winners do not come from a forward of this shape".into(),
            ));
        }
        if let Some(dx) = &dx {
            check_buffer("dx", dx, x.rows(), self.inputs)?;
        }
        let mut dz = alloc::zeros(x.rows() * self.outputs, "maxout gradients")?;
        maxout_backward(
            x,
            &self.weight,
            self.pieces,
            dy,
            argmax,
            &mut dz,
            &mut self.grad_weight,
            &mut self.grad_bias,
            dx,
        );
        Ok(())
    }
}

/// Checks a piece count.
pub fn check_pieces(pieces: usize) -> Result<()> {
    if !(1..=MAX_PIECES).contains(&pieces) {
        return Err(Error::value(
            "pieces",
            format!("an integer in [1, {MAX_PIECES}]"),
            pieces,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_centered_difference() {
        let mut rng = Rng::new(11);
        let mut layer = Maxout::<f64>::new(3, 2, 3, &mut rng).unwrap();
        layer
            .bias
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = 0.1 * i as f64);
        let x: Vec<f64> = (0..12).map(|_| rng.normal()).collect();
        let dy: Vec<f64> = (0..8).map(|_| rng.normal()).collect();
        let xm = MatRef::new(&x, 4, 3);
        let mut out = vec![0.0; 8];
        let argmax = layer.forward(xm, &mut out).unwrap();
        let mut dx = vec![0.0; 12];
        layer
            .backward(xm, MatRef::new(&dy, 4, 2), &argmax, Some(&mut dx))
            .unwrap();
        // f(W) = Σ y · dy; perturb every weight
        let f = |l: &Maxout<f64>, x: &[f64]| {
            let mut o = vec![0.0; 8];
            l.forward(MatRef::new(x, 4, 3), &mut o).unwrap();
            o.iter().zip(&dy).map(|(a, b)| a * b).sum::<f64>()
        };
        let h = 1e-6;
        for i in 0..layer.weight.len() {
            let mut lp = layer.clone();
            lp.weight[i] += h;
            let mut lm = layer.clone();
            lm.weight[i] -= h;
            let num = (f(&lp, &x) - f(&lm, &x)) / (2.0 * h);
            assert!((num - layer.grad_weight[i]).abs() < 1e-7, "dW[{i}]");
        }
        for i in 0..x.len() {
            let mut xp = x.clone();
            xp[i] += h;
            let mut xm2 = x.clone();
            xm2[i] -= h;
            let num = (f(&layer, &xp) - f(&layer, &xm2)) / (2.0 * h);
            assert!((num - dx[i]).abs() < 1e-7, "dx[{i}]");
        }
    }

    #[test]
    fn piece_count_is_checked() {
        let mut rng = Rng::new(0);
        assert!(Maxout::<f32>::new(2, 2, 0, &mut rng).is_err());
        assert!(Maxout::<f32>::new(2, 2, 256, &mut rng).is_err());
    }
}
