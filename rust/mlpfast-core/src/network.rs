//! A multilayer perceptron: its architecture ([`Spec`]), inference, and the training
//! workspace whose buffers are allocated once per fit.
//!
//! A network is a stack of blocks. A dense block computes `a = f(a_prev · W + b)`; a maxout
//! block computes `a = max_p(a_prev · W_p + b_p)`; the last block is dense with the identity,
//! and its output (the scores) goes to the loss. Backward walks the blocks in reverse:
//!
//! ```text
//! δ_L = dLoss/dscores
//! dW_l = a_{l-1}ᵀ · δ_l,   db_l = Σ_rows δ_l,   δ_{l-1} = (δ_l · W_lᵀ) ⊙ f'_{l-1}
//! ```
//!
//! where f' is read off the kept output a_{l-1} (see `activation`), so no pre-activation is
//! stored. The parameters themselves live with the caller and are passed in as slices: the
//! Python layer objects own them, and the network borrows them for one call.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::linear::{affine_backward, affine_forward, check_buffer, check_matrix};
use crate::loss::{Loss, Targets};
use crate::matrix::MatRef;
use crate::maxout::{check_pieces, maxout_backward, maxout_forward};
use crate::rng::{Init, Rng};

/// One parameter layer of a network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Block {
    /// `f(x · W + b)`, W (inputs, outputs).
    Dense {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
        /// f, applied to the affine output.
        act: Activation,
    },
    /// `max_p(x · W_p + b_p)`, W (pieces, inputs, outputs).
    Maxout {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
        /// Number of pieces.
        pieces: usize,
    },
}

impl Block {
    /// Input features.
    pub fn inputs(&self) -> usize {
        match *self {
            Block::Dense { inputs, .. } | Block::Maxout { inputs, .. } => inputs,
        }
    }

    /// Output features.
    pub fn outputs(&self) -> usize {
        match *self {
            Block::Dense { outputs, .. } | Block::Maxout { outputs, .. } => outputs,
        }
    }

    fn pieces(&self) -> usize {
        match *self {
            Block::Dense { .. } => 1,
            Block::Maxout { pieces, .. } => pieces,
        }
    }

    /// Number of weights.
    pub fn weight_len(&self) -> usize {
        self.pieces() * self.inputs() * self.outputs()
    }

    /// Number of biases.
    pub fn bias_len(&self) -> usize {
        self.pieces() * self.outputs()
    }
}

/// What the hidden layers are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hidden {
    /// Dense layers followed by this activation.
    Activation(Activation),
    /// Maxout layers of this many pieces.
    Maxout(usize),
}

/// A validated network architecture and its loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    blocks: Vec<Block>,
    loss: Loss,
}

/// Borrowed parameters of one block.
#[derive(Debug, Clone, Copy)]
pub struct ParamsRef<'a, T> {
    /// Weights, laid out as the block's layer holds them.
    pub weight: &'a [T],
    /// Biases.
    pub bias: &'a [T],
}

/// Mutably borrowed parameters of one block.
#[derive(Debug)]
pub struct ParamsMut<'a, T> {
    /// Weights, laid out as the block's layer holds them.
    pub weight: &'a mut [T],
    /// Biases.
    pub bias: &'a mut [T],
}

/// Read access to one block's parameters, borrowed or mutably borrowed alike.
pub trait Params<T> {
    /// Weights.
    fn weight(&self) -> &[T];
    /// Biases.
    fn bias(&self) -> &[T];
}

impl<T> Params<T> for ParamsRef<'_, T> {
    fn weight(&self) -> &[T] {
        self.weight
    }
    fn bias(&self) -> &[T] {
        self.bias
    }
}

impl<T> Params<T> for ParamsMut<'_, T> {
    fn weight(&self) -> &[T] {
        self.weight
    }
    fn bias(&self) -> &[T] {
        self.bias
    }
}

impl Spec {
    /// The network `sizes[0] → … → sizes[last]`: hidden layers as `hidden` says, then a dense
    /// identity layer whose outputs feed `loss`.
    pub fn new(sizes: &[usize], hidden: Hidden, loss: Loss) -> Result<Spec> {
        if sizes.len() < 2 {
            return Err(Error::value(
                "layer_sizes",
                "at least two sizes [inputs, ..., outputs]",
                format!("{sizes:?}"),
            ));
        }
        if let Some(&bad) = sizes.iter().find(|&&s| s < 1) {
            return Err(Error::value(
                "layer_sizes",
                "sizes >= 1",
                format!("{bad} in {sizes:?}"),
            ));
        }
        match hidden {
            Hidden::Activation(act) => act.validate(true)?,
            Hidden::Maxout(pieces) => check_pieces(pieces)?,
        }
        if let Loss::Svm { margin } = loss {
            if !margin.is_finite() {
                return Err(Error::value("margin", "a finite number", margin));
            }
        }
        let last = sizes.len() - 2;
        let blocks = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let (inputs, outputs) = (w[0], w[1]);
                match hidden {
                    _ if i == last => Block::Dense {
                        inputs,
                        outputs,
                        act: Activation::Identity,
                    },
                    Hidden::Activation(act) => Block::Dense {
                        inputs,
                        outputs,
                        act,
                    },
                    Hidden::Maxout(pieces) => Block::Maxout {
                        inputs,
                        outputs,
                        pieces,
                    },
                }
            })
            .collect();
        Ok(Spec { blocks, loss })
    }

    /// The blocks, input side first.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// Input features.
    pub fn inputs(&self) -> usize {
        self.blocks[0].inputs()
    }

    /// Outputs (scores) per row.
    pub fn outputs(&self) -> usize {
        self.blocks[self.blocks.len() - 1].outputs()
    }

    /// Fresh parameters, (weight, bias) per block: weights drawn by `init` (or by each
    /// block's natural rule when `None`: He for maxout and the ReLU family, Glorot otherwise),
    /// biases zero.
    pub fn init_params<T: Float>(
        &self,
        init: Option<Init>,
        rng: &mut Rng,
    ) -> Vec<(Vec<T>, Vec<T>)> {
        self.blocks
            .iter()
            .map(|b| {
                let mut w = vec![T::ZERO; b.weight_len()];
                let rule = init.unwrap_or(match b {
                    Block::Maxout { .. } => Init::He,
                    Block::Dense { act, .. } => act.init(),
                });
                for piece in w.chunks_mut((b.inputs() * b.outputs()).max(1)) {
                    rule.fill(piece, b.inputs(), b.outputs(), rng);
                }
                (w, vec![T::ZERO; b.bias_len()])
            })
            .collect()
    }

    /// Checks there is one parameter pair per block, each of the right length.
    pub fn check_params<T>(&self, params: &[impl Params<T>]) -> Result<()> {
        if params.len() != self.blocks.len() {
            return Err(Error::value(
                "params",
                format!("{} parameter layers", self.blocks.len()),
                params.len(),
            ));
        }
        for (i, (b, p)) in self.blocks.iter().zip(params).enumerate() {
            if p.weight().len() != b.weight_len() || p.bias().len() != b.bias_len() {
                return Err(Error::value(
                    &format!("layer {i}"),
                    format!("{} weights and {} biases", b.weight_len(), b.bias_len()),
                    format!("{} and {}", p.weight().len(), p.bias().len()),
                ));
            }
        }
        Ok(())
    }

    /// Checks `x` is (N, inputs) with N ≥ 1 and finite values.
    pub fn check_input<T: Float>(&self, arg: &str, x: MatRef<'_, T>) -> Result<()> {
        check_matrix(arg, x, None, self.inputs())?;
        if x.rows() == 0 {
            return Err(Error::value(arg, "at least one sample", "0 rows"));
        }
        crate::loss::check_finite(arg, x)
    }

    /// Scores (N, outputs) for the rows of `x`, computed in chunks so that the buffers stay
    /// small whatever N is.
    pub fn predict_scores<T: Float>(
        &self,
        params: &[impl Params<T>],
        x: MatRef<'_, T>,
        out: &mut [T],
    ) -> Result<()> {
        self.check_params(params)?;
        self.check_input("X", x)?;
        let k = self.outputs();
        check_buffer("out", out, x.rows(), k)?;
        const CHUNK: usize = 256;
        let mut ws = Workspace::new(self, CHUNK.min(x.rows()));
        let mut start = 0;
        while start < x.rows() {
            let end = (start + CHUNK).min(x.rows());
            ws.forward(self, params, x.row_block(start, end));
            out[start * k..end * k].copy_from_slice(ws.scores(end - start).data());
            start = end;
        }
        Ok(())
    }
}

/// Per-batch buffers of a network: each block's output, maxout scratch, the two gradient
/// buffers backward alternates between, and the parameter gradients. Allocated once for a
/// largest batch; smaller batches use the front of each buffer.
#[derive(Debug)]
pub struct Workspace<T> {
    capacity: usize,
    outputs: usize,
    acts: Vec<Vec<T>>,
    pieces: Vec<Vec<T>>,
    winners: Vec<Vec<u8>>,
    delta: Vec<T>,
    delta_prev: Vec<T>,
    scratch: Vec<T>,
    grads: Vec<(Vec<T>, Vec<T>)>,
}

impl<T: Float> Workspace<T> {
    /// Buffers for batches of up to `capacity` rows.
    pub fn new(spec: &Spec, capacity: usize) -> Self {
        let blocks = spec.blocks();
        let widest = blocks
            .iter()
            .map(|b| b.inputs().max(b.outputs()))
            .max()
            .unwrap_or(0);
        let maxout_widest = blocks
            .iter()
            .filter(|b| matches!(b, Block::Maxout { .. }))
            .map(|b| b.outputs())
            .max()
            .unwrap_or(0);
        Workspace {
            capacity,
            outputs: spec.outputs(),
            acts: blocks
                .iter()
                .map(|b| vec![T::ZERO; capacity * b.outputs()])
                .collect(),
            pieces: blocks
                .iter()
                .map(|b| match b {
                    Block::Maxout {
                        pieces, outputs, ..
                    } => vec![T::ZERO; pieces * capacity * outputs],
                    Block::Dense { .. } => Vec::new(),
                })
                .collect(),
            winners: blocks
                .iter()
                .map(|b| match b {
                    Block::Maxout { outputs, .. } => vec![0u8; capacity * outputs],
                    Block::Dense { .. } => Vec::new(),
                })
                .collect(),
            delta: vec![T::ZERO; capacity * widest],
            delta_prev: vec![T::ZERO; capacity * widest],
            scratch: vec![T::ZERO; capacity * maxout_widest],
            grads: blocks
                .iter()
                .map(|b| (vec![T::ZERO; b.weight_len()], vec![T::ZERO; b.bias_len()]))
                .collect(),
        }
    }

    /// The largest batch the buffers hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forward pass of `x` (at most `capacity` rows), keeping every block's output.
    pub fn forward(&mut self, spec: &Spec, params: &[impl Params<T>], x: MatRef<'_, T>) {
        let rows = x.rows();
        assert!(
            rows <= self.capacity,
            "batch of {rows} rows in a workspace of {}",
            self.capacity
        );
        for (l, (block, p)) in spec.blocks().iter().zip(params).enumerate() {
            let (done, rest) = self.acts.split_at_mut(l);
            let input = match l {
                0 => x,
                _ => MatRef::new(&done[l - 1][..rows * block.inputs()], rows, block.inputs()),
            };
            let out = &mut rest[0][..rows * block.outputs()];
            match *block {
                Block::Dense { act, .. } => affine_forward(input, p.weight(), p.bias(), act, out),
                Block::Maxout {
                    pieces, outputs, ..
                } => maxout_forward(
                    input,
                    p.weight(),
                    p.bias(),
                    pieces,
                    &mut self.pieces[l][..pieces * rows * outputs],
                    out,
                    &mut self.winners[l][..rows * outputs],
                ),
            }
        }
    }

    /// The scores of the last forward pass of `rows` rows.
    pub fn scores(&self, rows: usize) -> MatRef<'_, T> {
        let k = self.outputs;
        MatRef::new(&self.acts[self.acts.len() - 1][..rows * k], rows, k)
    }

    /// Loss of the last forward pass summed over its rows; the gradient of `scale ·` that sum
    /// with respect to the scores goes to the backward buffer.
    pub(crate) fn loss_and_seed(
        &mut self,
        loss: Loss,
        targets: &Targets<'_, T>,
        rows: usize,
        scale: T,
    ) -> f64 {
        let k = self.outputs;
        let scores = MatRef::new(&self.acts[self.acts.len() - 1][..rows * k], rows, k);
        loss.sum_rows(scores, targets, Some(&mut self.delta[..rows * k]), scale)
    }

    /// Sets the gradient at the scores (rows × outputs) to start backward from.
    pub fn seed_gradient(&mut self, dscores: &[T]) {
        self.delta[..dscores.len()].copy_from_slice(dscores);
    }

    /// Backward pass from the seeded score gradient, for the `x` and parameters of the last
    /// forward pass; fills [`Workspace::grads`].
    pub fn backward(&mut self, spec: &Spec, params: &[impl Params<T>], x: MatRef<'_, T>) {
        let rows = x.rows();
        let blocks = spec.blocks();
        for l in (0..blocks.len()).rev() {
            let block = blocks[l];
            let input = match l {
                0 => x,
                _ => MatRef::new(
                    &self.acts[l - 1][..rows * block.inputs()],
                    rows,
                    block.inputs(),
                ),
            };
            let d = MatRef::new(&self.delta[..rows * block.outputs()], rows, block.outputs());
            let dx = (l > 0).then(|| &mut self.delta_prev[..rows * block.inputs()]);
            let (dw, db) = &mut self.grads[l];
            match block {
                Block::Dense { .. } => affine_backward(input, params[l].weight(), d, dw, db, dx),
                Block::Maxout {
                    pieces, outputs, ..
                } => maxout_backward(
                    input,
                    params[l].weight(),
                    pieces,
                    d,
                    &self.winners[l][..rows * outputs],
                    &mut self.scratch[..rows * outputs],
                    dw,
                    db,
                    dx,
                ),
            }
            if l > 0 {
                if let Block::Dense { act, .. } = blocks[l - 1] {
                    let n = rows * block.inputs();
                    act.backward_from_output_inplace(
                        &self.acts[l - 1][..n],
                        &mut self.delta_prev[..n],
                    );
                }
                std::mem::swap(&mut self.delta, &mut self.delta_prev);
            }
        }
    }

    /// The parameter gradients of the last backward pass, (dW, db) per block.
    pub fn grads(&self) -> &[(Vec<T>, Vec<T>)] {
        &self.grads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::Linear;

    #[test]
    fn spec_validation_names_the_problem() {
        let e = Spec::new(&[4], Hidden::Activation(Activation::Relu), Loss::Softmax).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("layer_sizes: expected at least two sizes")
        );
        let e = Spec::new(
            &[4, 0, 2],
            Hidden::Activation(Activation::Relu),
            Loss::Softmax,
        )
        .unwrap_err();
        assert!(e.to_string().contains("sizes >= 1"));
        let s = Spec::new(&[4, 3, 2], Hidden::Maxout(2), Loss::Softmax).unwrap();
        assert!(matches!(s.blocks()[0], Block::Maxout { pieces: 2, .. }));
        assert!(matches!(
            s.blocks()[1],
            Block::Dense {
                act: Activation::Identity,
                ..
            }
        ));
    }

    /// The workspace's fused backward agrees with chaining the stand-alone layers.
    #[test]
    fn workspace_gradients_match_layer_by_layer_chain() {
        let spec = Spec::new(&[3, 4, 2], Hidden::Activation(Activation::Tanh), Loss::Mse).unwrap();
        let mut rng = Rng::new(2);
        let params: Vec<(Vec<f64>, Vec<f64>)> = spec.init_params(None, &mut rng);
        let x: Vec<f64> = (0..15).map(|_| rng.normal()).collect();
        let dscores: Vec<f64> = (0..10).map(|_| rng.normal()).collect();
        let xm = MatRef::new(&x, 5, 3);
        let refs: Vec<ParamsRef<'_, f64>> = params
            .iter()
            .map(|(w, b)| ParamsRef { weight: w, bias: b })
            .collect();
        let mut ws = Workspace::new(&spec, 8);
        ws.forward(&spec, &refs, xm);
        ws.seed_gradient(&dscores);
        ws.backward(&spec, &refs, xm);

        let mut l1 = Linear::<f64>::new(3, 4, Init::He, &mut rng);
        l1.weight.clone_from(&params[0].0);
        let mut l2 = Linear::<f64>::new(4, 2, Init::He, &mut rng);
        l2.weight.clone_from(&params[1].0);
        let mut h = vec![0.0; 20];
        l1.forward(xm, &mut h).unwrap();
        let z1 = h.clone();
        Activation::Tanh.forward_inplace(&mut h);
        let mut dh = vec![0.0; 20];
        l2.backward(
            MatRef::new(&h, 5, 4),
            MatRef::new(&dscores, 5, 2),
            Some(&mut dh),
        )
        .unwrap();
        let mut dz = vec![0.0; 20];
        Activation::Tanh.backward_from_input(&z1, &dh, &mut dz);
        l1.backward(xm, MatRef::new(&dz, 5, 4), None).unwrap();
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(&ws.grads()[1].0, &l2.grad_weight));
        assert!(close(&ws.grads()[1].1, &l2.grad_bias));
        assert!(close(&ws.grads()[0].0, &l1.grad_weight));
        assert!(close(&ws.grads()[0].1, &l1.grad_bias));
    }
}
