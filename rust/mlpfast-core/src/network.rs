//! A multilayer perceptron: its architecture ([`Spec`]) and its parameters as borrowed
//! slices (the forward pass and inference are in `forward`, the training step in `step`).
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
//! stored (the training step itself is in `step`). The parameters live with the caller and
//! are passed in as slices: the Python layer objects own them, and the network borrows them
//! for one call.

use crate::activation::Activation;
use crate::alloc;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::linear::check_matrix;
use crate::loss::Loss;
use crate::matrix::MatRef;
use crate::maxout::check_pieces;
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
    /// Batch normalization of the block before's output, then `f`: `f(γ·x̂ + β)`, its
    /// weights γ and biases β (features each), its state the running mean and variance
    /// (features each, in that order; see `batchnorm`).
    Norm {
        /// Features normalized (in and out).
        features: usize,
        /// f, applied to the normalized output.
        act: Activation,
    },
}

impl Block {
    /// Input features.
    pub fn inputs(&self) -> usize {
        match *self {
            Block::Dense { inputs, .. } | Block::Maxout { inputs, .. } => inputs,
            Block::Norm { features, .. } => features,
        }
    }

    /// Output features.
    pub fn outputs(&self) -> usize {
        match *self {
            Block::Dense { outputs, .. } | Block::Maxout { outputs, .. } => outputs,
            Block::Norm { features, .. } => features,
        }
    }

    fn pieces(&self) -> usize {
        match *self {
            Block::Dense { .. } | Block::Norm { .. } => 1,
            Block::Maxout { pieces, .. } => pieces,
        }
    }

    /// Number of weights (γ for batch normalization).
    pub fn weight_len(&self) -> usize {
        match *self {
            Block::Norm { features, .. } => features,
            _ => self.pieces() * self.inputs() * self.outputs(),
        }
    }

    /// Length of the state a block keeps besides its parameters: batch normalization's
    /// running mean and variance; nothing for the others.
    pub fn state_len(&self) -> usize {
        match *self {
            Block::Norm { features, .. } => 2 * features,
            _ => 0,
        }
    }

    /// Whether the block holds a weight matrix (the blocks weight decay applies to and whose
    /// gradients are matrix products): dense and maxout blocks, not batch normalization.
    pub fn is_matrix(&self) -> bool {
        !matches!(self, Block::Norm { .. })
    }

    /// Flops of one row's forward product (a matrix block's; a few per feature for batch
    /// normalization).
    pub fn forward_flops(&self) -> f64 {
        match *self {
            Block::Norm { features, .. } => 8.0 * features as f64,
            _ => 2.0 * (self.inputs() * self.bias_len()) as f64,
        }
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
    /// Inverted dropout's rate after every hidden block's activation, in training (0: none).
    dropout: f64,
    /// Whether every hidden layer is followed by batch normalization (see `with_batch_norm`).
    batch_norm: bool,
}

/// Batch normalization's momentum and ε inside a network: PyTorch's defaults.
pub const NORM_MOMENTUM: f64 = 0.1;
/// See [`NORM_MOMENTUM`].
pub const NORM_EPS: f64 = 1e-5;

/// Dropout's masks for one training step: the rate, the fit's seed and the step, from which
/// every hidden block draws its own mask (see `dropout`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dropping {
    pub(crate) p: f64,
    pub(crate) seed: u64,
    pub(crate) step: u64,
}

impl Dropping {
    /// The mask after hidden block `block`.
    pub(crate) fn mask(&self, block: usize) -> crate::dropout::Mask {
        // Each block's own seed: the fit's, moved by the block's index.
        let seed = self
            .seed
            .wrapping_add((block as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        crate::dropout::Mask::new(self.p, seed, self.step)
    }
}

/// Checks `x` holds no NaN or infinity. (Large inputs are checked where their rows pass
/// anyway: by the first epoch of a fit, by each chunk of a prediction.)
pub fn check_values<T: Float>(arg: &str, x: MatRef<'_, T>) -> Result<()> {
    crate::loss::check_finite(arg, x)
}

/// The L2 term of weight decay on one weight tensor: returns ½λ‖w‖² and, when `grad` is
/// given, adds its gradient λw to it (what a full-batch loss and gradient, e.g. for L-BFGS,
/// adds; the training step computes the same term block by block).
pub fn l2_term<T: Float>(w: &[T], grad: Option<&mut [T]>, lambda: f64) -> f64 {
    if let Some(g) = grad {
        let l = T::from_f64(lambda);
        for (g, &v) in g.iter_mut().zip(w) {
            *g += l * v;
        }
    }
    if lambda == 0.0 {
        return 0.0; // not 0 · ∞ when a float64 weight's square overflows
    }
    0.5 * lambda * sum_of_squares(w)
}

/// ‖w‖², each square and the sum in float64: a float32 weight's square is exact there, where
/// in float32 it would overflow above 1.8e19 or vanish below 1e-23.
pub(crate) fn sum_of_squares<T: Float>(w: &[T]) -> f64 {
    w.iter()
        .map(|&v| {
            let v = v.to_f64();
            v * v
        })
        .sum()
}

/// The error for NaN or infinity in argument `arg`.
pub(crate) fn non_finite(arg: &str) -> Error {
    Error::value(arg, "finite values", "NaN or infinity")
}

/// Borrowed parameters of one block.
#[derive(Debug, Clone, Copy)]
pub struct ParamsRef<'a, T> {
    /// Weights, laid out as the block's layer holds them.
    pub weight: &'a [T],
    /// Biases.
    pub bias: &'a [T],
    /// State besides the parameters (batch normalization's running mean and variance;
    /// empty for the other blocks).
    pub state: &'a [T],
}

/// Mutably borrowed parameters of one block.
#[derive(Debug)]
pub struct ParamsMut<'a, T> {
    /// Weights, laid out as the block's layer holds them.
    pub weight: &'a mut [T],
    /// Biases.
    pub bias: &'a mut [T],
    /// State besides the parameters, which training moves too (see [`ParamsRef::state`]).
    pub state: &'a mut [T],
}

/// Read access to one block's parameters, borrowed or mutably borrowed alike.
pub trait Params<T> {
    /// Weights.
    fn weight(&self) -> &[T];
    /// Biases.
    fn bias(&self) -> &[T];
    /// State besides the parameters.
    fn state(&self) -> &[T];
}

impl<T> Params<T> for ParamsRef<'_, T> {
    fn weight(&self) -> &[T] {
        self.weight
    }
    fn bias(&self) -> &[T] {
        self.bias
    }
    fn state(&self) -> &[T] {
        self.state
    }
}

impl<T> Params<T> for ParamsMut<'_, T> {
    fn weight(&self) -> &[T] {
        self.weight
    }
    fn bias(&self) -> &[T] {
        self.bias
    }
    fn state(&self) -> &[T] {
        self.state
    }
}

/// One block's parameters and state, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Owned<T> {
    /// Weights.
    pub weight: Vec<T>,
    /// Biases.
    pub bias: Vec<T>,
    /// State besides the parameters.
    pub state: Vec<T>,
}

impl<T: Float> Owned<T> {
    /// A copy of `p` (allocation failures are errors).
    pub fn copy_of(p: &impl Params<T>) -> Result<Self> {
        let copy = |v| alloc::copied(v, "a copy of the parameters");
        Ok(Owned {
            weight: copy(p.weight())?,
            bias: copy(p.bias())?,
            state: copy(p.state())?,
        })
    }

    /// Copies `p` (of the same lengths) into `self`.
    pub fn copy_from(&mut self, p: &impl Params<T>) {
        self.weight.copy_from_slice(p.weight());
        self.bias.copy_from_slice(p.bias());
        self.state.copy_from_slice(p.state());
    }

    /// Copies `self` into `p` (of the same lengths).
    pub fn copy_into(&self, p: &mut ParamsMut<'_, T>) {
        p.weight.copy_from_slice(&self.weight);
        p.bias.copy_from_slice(&self.bias);
        p.state.copy_from_slice(&self.state);
    }

    /// Borrowed.
    pub fn view(&self) -> ParamsRef<'_, T> {
        ParamsRef {
            weight: &self.weight,
            bias: &self.bias,
            state: &self.state,
        }
    }

    /// Mutably borrowed.
    pub fn view_mut(&mut self) -> ParamsMut<'_, T> {
        ParamsMut {
            weight: &mut self.weight,
            bias: &mut self.bias,
            state: &mut self.state,
        }
    }

    /// Whether every value is finite.
    pub fn all_finite(&self) -> bool {
        use crate::float::all_finite;
        all_finite(&self.weight) && all_finite(&self.bias) && all_finite(&self.state)
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
                return Err(Error::value(
                    "margin",
                    "a finite number",
                    crate::error::fmt_num(&margin),
                ));
            }
        }
        let last = sizes.len() - 2;
        for w in sizes.windows(2) {
            // The largest tensor of a block is its weights (pieces × in × out); the batch
            // buffers are checked when they are sized.
            match hidden {
                Hidden::Maxout(pieces) => alloc::check_dims(&[pieces, w[0], w[1]], "layer_sizes"),
                Hidden::Activation(_) => alloc::check_dims(w, "layer_sizes"),
            }?;
        }
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
        Ok(Spec {
            blocks,
            loss,
            dropout: 0.0,
            batch_norm: false,
        })
    }

    /// The same network with batch normalization after every hidden layer: a dense layer
    /// then computes `x · W + b` and the normalization after it applies the activation, as
    /// `Linear → BatchNorm1d → f` does; a maxout layer (its own activation) is followed by
    /// the normalization of its output. Momentum and ε are [`NORM_MOMENTUM`], [`NORM_EPS`].
    pub fn with_batch_norm(mut self, on: bool) -> Spec {
        if on == self.batch_norm {
            return self;
        }
        assert!(on, "batch normalization is added once, not removed");
        let last = self.blocks.len() - 1;
        let mut blocks = Vec::with_capacity(2 * self.blocks.len());
        for (i, b) in self.blocks.iter().enumerate() {
            match *b {
                _ if i == last => blocks.push(*b),
                Block::Dense {
                    inputs,
                    outputs,
                    act,
                } => {
                    blocks.push(Block::Dense {
                        inputs,
                        outputs,
                        act: Activation::Identity,
                    });
                    blocks.push(Block::Norm {
                        features: outputs,
                        act,
                    });
                }
                Block::Maxout { outputs, .. } => {
                    blocks.push(*b);
                    blocks.push(Block::Norm {
                        features: outputs,
                        act: Activation::Identity,
                    });
                }
                Block::Norm { .. } => unreachable!("a network without normalization"),
            }
        }
        self.blocks = blocks;
        self.batch_norm = true;
        self
    }

    /// Whether every hidden layer is followed by batch normalization (as asked: also for a
    /// network without hidden layers).
    pub fn batch_norm(&self) -> bool {
        self.batch_norm
    }

    /// Whether the network holds a batch normalization (which a batch of one row cannot
    /// train).
    pub fn normalizes(&self) -> bool {
        self.blocks.iter().any(|b| matches!(b, Block::Norm { .. }))
    }

    /// Whether block `l`'s output is a hidden activation (dropout's place): a hidden block
    /// not followed by batch normalization.
    pub(crate) fn is_hidden_output(&self, l: usize) -> bool {
        l + 1 < self.blocks.len() && !matches!(self.blocks[l + 1], Block::Norm { .. })
    }

    /// Whether block `l` is followed by batch normalization.
    pub fn feeds_norm(&self, l: usize) -> bool {
        matches!(self.blocks.get(l + 1), Some(Block::Norm { .. }))
    }

    /// Whether block `l`'s biases have the gradient 0: a dense block followed by batch
    /// normalization, which subtracts the batch's mean of `x · W + b`, b and all. (A maxout
    /// block's biases pick the winning pieces, so theirs is not 0.)
    pub(crate) fn bias_grad_is_zero(&self, l: usize) -> bool {
        matches!(self.blocks[l], Block::Dense { .. }) && self.feeds_norm(l)
    }

    /// The same network with inverted dropout of rate `p` (in [0, 1)) after every hidden
    /// block's activation, in training.
    pub fn with_dropout(mut self, p: f64) -> Result<Spec> {
        if !(p.is_finite() && (0.0..1.0).contains(&p)) {
            return Err(Error::value(
                "dropout",
                "a rate in [0, 1)",
                crate::error::fmt_num(&p),
            ));
        }
        self.dropout = p;
        Ok(self)
    }

    /// Dropout's rate after every hidden block (0: none).
    pub fn dropout(&self) -> f64 {
        self.dropout
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

    /// Fresh parameters per block: weights drawn by `init` (or by each block's natural rule
    /// when `None`: He for maxout and the ReLU family, Glorot otherwise; the activation after
    /// a batch normalization decides for the dense layer before it), biases zero; batch
    /// normalization's γ = 1, β = 0, running mean 0 and variance 1.
    pub fn init_params<T: Float>(
        &self,
        init: Option<Init>,
        rng: &mut Rng,
    ) -> Result<Vec<Owned<T>>> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(l, b)| {
                let mut weight = alloc::zeros(b.weight_len(), "weights")?;
                let mut state = alloc::zeros(b.state_len(), "running statistics")?;
                match *b {
                    Block::Norm { features, .. } => {
                        weight.fill(T::ONE);
                        state[features..].fill(T::ONE);
                    }
                    _ => {
                        // A dense block before a normalization takes the activation after it.
                        let rule = init.unwrap_or(match (b, self.blocks.get(l + 1)) {
                            (Block::Maxout { .. }, _) => Init::He,
                            (_, Some(Block::Norm { act, .. })) | (Block::Dense { act, .. }, _) => {
                                act.init()
                            }
                            (Block::Norm { .. }, _) => unreachable!("normalizations draw nothing"),
                        });
                        for piece in weight.chunks_mut((b.inputs() * b.outputs()).max(1)) {
                            rule.fill(piece, b.inputs(), b.outputs(), rng);
                        }
                    }
                }
                let bias = alloc::zeros(b.bias_len(), "biases")?;
                Ok(Owned {
                    weight,
                    bias,
                    state,
                })
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
            if p.state().len() != b.state_len() {
                return Err(Error::value(
                    &format!("layer {i}"),
                    format!("{} running statistics", b.state_len()),
                    p.state().len(),
                ));
            }
        }
        Ok(())
    }

    /// Checks `x` is (N, inputs) with N ≥ 1 and finite values.
    pub fn check_input<T: Float>(&self, arg: &str, x: MatRef<'_, T>) -> Result<()> {
        self.check_shape(arg, x)?;
        check_values(arg, x)
    }

    /// Checks `x` is (N, inputs) with N ≥ 1.
    pub fn check_shape<T: Float>(&self, arg: &str, x: MatRef<'_, T>) -> Result<()> {
        check_matrix(arg, x, None, self.inputs())?;
        if x.rows() == 0 {
            return Err(Error::value(arg, "at least one sample", "0 rows"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::Linear;
    use crate::loss::Targets;

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

    /// One SGD step with lr = 1 moves every weight by exactly its gradient: the sharded,
    /// task-split step agrees with chaining the stand-alone layers by hand.
    #[test]
    fn training_step_gradients_match_layer_by_layer_chain() {
        use crate::optim::{OptimState, Optimizer};
        use crate::step::{Batch, Rows, Trainer};
        let spec = Spec::new(&[3, 4, 2], Hidden::Activation(Activation::Tanh), Loss::Mse).unwrap();
        let mut rng = Rng::new(2);
        let n = 40;
        let mut params: Vec<crate::network::Owned<f64>> = spec.init_params(None, &mut rng).unwrap();
        let start = params.clone();
        let x: Vec<f64> = (0..n * 3).map(|_| rng.normal()).collect();
        let t: Vec<f64> = (0..n * 2).map(|_| rng.normal()).collect();
        let xm = MatRef::new(&x, n, 3);
        let targets = Targets::Values(MatRef::new(&t, n, 2));
        let sgd = Optimizer::Sgd {
            momentum: 0.0,
            nesterov: false,
        };
        let mut optim = OptimState::new(sgd, &[(12, 4), (8, 2)]).unwrap();
        let mut trainer = Trainer::new(&spec, n, crate::step::Gather::No, false).unwrap();
        let mut pm: Vec<ParamsMut<'_, f64>> = params.iter_mut().map(|p| p.view_mut()).collect();
        let batch = Batch {
            x: xm,
            y: &targets,
            w: None,
            drop: None,
            rows: Rows::Range(0, n),
            next: &[],
        };
        let mut team = crate::team::Team::new(crate::team::Kind::Call, None);
        team.engage_beyond_budget(1);
        let stepped = trainer.step(
            &team,
            &spec,
            &mut pm,
            batch,
            &mut optim,
            1.0,
            |_| 0.0,
            None,
            false,
        );
        assert!(matches!(stepped, crate::step::Stepped::Loss { .. }));

        // The same gradients by the stand-alone layers.
        let mut l1 = Linear::<f64>::new(3, 4, Init::He, &mut rng).unwrap();
        l1.weight.clone_from(&start[0].weight);
        let mut l2 = Linear::<f64>::new(4, 2, Init::He, &mut rng).unwrap();
        l2.weight.clone_from(&start[1].weight);
        let mut z1 = vec![0.0; n * 4];
        l1.forward(xm, &mut z1).unwrap();
        let mut h = z1.clone();
        Activation::Tanh.forward_inplace(&mut h);
        let mut s = vec![0.0; n * 2];
        l2.forward(MatRef::new(&h, n, 4), &mut s).unwrap();
        let mut ds = vec![0.0; n * 2];
        Loss::Mse
            .mean_and_grad(MatRef::new(&s, n, 2), &targets, None, Some(&mut ds))
            .unwrap();
        let mut dh = vec![0.0; n * 4];
        l2.backward(MatRef::new(&h, n, 4), MatRef::new(&ds, n, 2), Some(&mut dh))
            .unwrap();
        let mut dz = vec![0.0; n * 4];
        Activation::Tanh.backward_from_input(&z1, &dh, &mut dz);
        l1.backward(xm, MatRef::new(&dz, n, 4), None).unwrap();

        let moved = |after: &[f64], before: &[f64], grad: &[f64]| {
            after
                .iter()
                .zip(before)
                .zip(grad)
                .all(|((a, b), g)| ((b - a) - g).abs() < 1e-12)
        };
        assert!(moved(&params[0].weight, &start[0].weight, &l1.grad_weight));
        assert!(moved(&params[0].bias, &start[0].bias, &l1.grad_bias));
        assert!(moved(&params[1].weight, &start[1].weight, &l2.grad_weight));
        assert!(moved(&params[1].bias, &start[1].bias, &l2.grad_bias));
    }
}
