//! Optimizers: plain SGD, SGD with (Nesterov) momentum, and Adam, as PyTorch defines them.
//!
//! For a parameter w with gradient g and L2 weight decay λ (weights only), g' = g + λw and
//!
//! ```text
//! sgd       w ← w − lr·g'
//! momentum  v ← μv + g';  w ← w − lr·v               (v starts at 0, so v₁ = g')
//! nesterov  v ← μv + g';  w ← w − lr·(g' + μv)
//! adam      m ← β₁m + (1−β₁)g';  s ← β₂s + (1−β₂)g'²;  t ← t + 1
//!           w ← w − (lr / (1−β₁ᵗ)) · m / (√s / √(1−β₂ᵗ) + ε)
//! ```
//!
//! Each update is one pass over the parameter, weight decay folded in.

use crate::alloc;
use crate::error::Result;
use crate::float::Float;
use crate::network::Params;

/// An optimizer and its hyperparameters (the learning rate is the training loop's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent, optionally with (Nesterov) momentum.
    Sgd {
        /// μ in [0, 1).
        momentum: f64,
        /// Nesterov's lookahead form (needs μ > 0).
        nesterov: bool,
    },
    /// Adam with bias correction.
    Adam {
        /// β₁ in [0, 1).
        beta1: f64,
        /// β₂ in [0, 1).
        beta2: f64,
        /// ε > 0.
        eps: f64,
    },
}

impl Optimizer {
    fn buffer_count(&self) -> usize {
        match self {
            Optimizer::Sgd { momentum, .. } if *momentum == 0.0 => 0,
            Optimizer::Sgd { .. } => 1,
            Optimizer::Adam { .. } => 2,
        }
    }
}

/// Which parameter tensor of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The weights.
    Weight,
    /// The biases.
    Bias,
}

/// One tensor's velocities or moments (empty when the rule keeps none).
#[derive(Debug, Clone, Default)]
struct Moments<T> {
    first: Vec<T>,
    second: Vec<T>,
}

/// An optimizer's state for a network's blocks, each block's weights and biases by name: the
/// velocities or moments, and the step count.
#[derive(Debug, Clone)]
pub struct OptimState<T> {
    kind: Optimizer,
    step: u64,
    blocks: Vec<[Moments<T>; 2]>,
}

/// The scalars of one update, worked out once per step for all tensors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coeffs<T> {
    lr: T,
    wd: T,
    rule: Rule<T>,
}

#[derive(Debug, Clone, Copy)]
enum Rule<T> {
    Sgd,
    Momentum {
        mu: T,
        nesterov: bool,
    },
    Adam {
        b1: T,
        b2: T,
        step_size: T,
        inv_sqrt_bc2: T,
        eps: T,
    },
}

impl<T: Float> Coeffs<T> {
    /// The same update without weight decay (for biases).
    pub(crate) fn without_decay(self) -> Self {
        Coeffs {
            wd: T::ZERO,
            ..self
        }
    }

    /// Updates `w` in place from its gradient `g`; `first` and `second` are the matching
    /// slices of the optimizer's buffers (empty when the rule keeps none). Returns whether
    /// every updated value is finite: checked in the same loop, as each value is written (a
    /// second pass over the weights cost 6% of a small-batch step).
    pub(crate) fn apply(&self, w: &mut [T], g: &[T], first: &mut [T], second: &mut [T]) -> bool {
        crate::simd::wide(
            #[inline(always)]
            || self.apply_narrow(w, g, first, second),
        )
    }

    #[inline(always)]
    fn apply_narrow(&self, w: &mut [T], g: &[T], first: &mut [T], second: &mut [T]) -> bool {
        debug_assert_eq!(w.len(), g.len());
        let (lr, wd) = (self.lr, self.wd);
        // An AND of comparisons over the loop: an integer reduction, so the loops vectorize.
        let mut finite = true;
        match self.rule {
            Rule::Sgd => {
                for (w, &g) in w.iter_mut().zip(g) {
                    *w -= lr * (g + wd * *w);
                    finite &= w.is_finite();
                }
            }
            Rule::Momentum { mu, nesterov } => {
                for ((w, &g), v) in w.iter_mut().zip(g).zip(first.iter_mut()) {
                    let g = g + wd * *w;
                    *v = mu * *v + g;
                    *w -= lr * if nesterov { g + mu * *v } else { *v };
                    finite &= w.is_finite();
                }
            }
            Rule::Adam {
                b1,
                b2,
                step_size,
                inv_sqrt_bc2,
                eps,
            } => {
                let (c1, c2) = (T::ONE - b1, T::ONE - b2);
                for (((w, &g), m), s) in w
                    .iter_mut()
                    .zip(g)
                    .zip(first.iter_mut())
                    .zip(second.iter_mut())
                {
                    let g = g + wd * *w;
                    *m = b1 * *m + c1 * g;
                    *s = b2 * *s + c2 * g * g;
                    *w -= step_size * *m / (s.sqrt() * inv_sqrt_bc2 + eps);
                    finite &= w.is_finite();
                }
            }
        }
        finite
    }
}

impl<T: Float> OptimState<T> {
    /// Zeroed state for blocks whose weights and biases have these lengths.
    pub fn new(kind: Optimizer, blocks: &[(usize, usize)]) -> Result<Self> {
        let count = kind.buffer_count();
        let moments = |n: usize| -> Result<Moments<T>> {
            Ok(Moments {
                first: alloc::zeros(if count >= 1 { n } else { 0 }, "optimizer state")?,
                second: alloc::zeros(if count >= 2 { n } else { 0 }, "optimizer state")?,
            })
        };
        Ok(OptimState {
            kind,
            step: 0,
            blocks: blocks
                .iter()
                .map(|&(w, b)| Ok([moments(w)?, moments(b)?]))
                .collect::<Result<_>>()?,
        })
    }

    /// Appends the state to a record (see `persist`).
    pub(crate) fn write(&self, w: &mut crate::persist::Writer) {
        match self.kind {
            Optimizer::Sgd { momentum, nesterov } => {
                w.u64(0);
                w.f64(momentum);
                w.bool(nesterov);
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                w.u64(1);
                w.f64(beta1);
                w.f64(beta2);
                w.f64(eps);
            }
        }
        w.u64(self.step);
        w.u64(self.blocks.len() as u64);
        for m in self.blocks.iter().flatten() {
            w.floats(&m.first);
            w.floats(&m.second);
        }
    }

    /// A state from a record, for tensors of the lengths `lens` (weights, biases per block):
    /// each buffer holds the rule's count of them, as [`OptimState::new`] makes them.
    pub(crate) fn read(
        r: &mut crate::persist::Reader<'_>,
        lens: &[(usize, usize)],
    ) -> Result<Self> {
        use crate::persist::corrupt;
        let kind = match r.u64()? {
            0 => Optimizer::Sgd {
                momentum: r.f64()?,
                nesterov: r.bool()?,
            },
            1 => Optimizer::Adam {
                beta1: r.f64()?,
                beta2: r.f64()?,
                eps: r.f64()?,
            },
            _ => return Err(corrupt("an unknown optimizer")),
        };
        let step = r.u64()?;
        if r.u64()? != lens.len() as u64 {
            return Err(corrupt("optimizer state for another number of layers"));
        }
        let count = kind.buffer_count();
        let mut blocks = Vec::with_capacity(lens.len());
        for &(wl, bl) in lens {
            let mut pair = [Moments::default(), Moments::default()];
            for (m, n) in pair.iter_mut().zip([wl, bl]) {
                m.first = r.floats()?;
                m.second = r.floats()?;
                let want = |k: usize| if count >= k { n } else { 0 };
                if m.first.len() != want(1) || m.second.len() != want(2) {
                    return Err(corrupt("optimizer state for other layer sizes"));
                }
            }
            blocks.push(pair);
        }
        Ok(OptimState { kind, step, blocks })
    }

    /// Zeroed state for these parameters.
    pub fn for_params(kind: Optimizer, params: &[impl Params<T>]) -> Result<Self> {
        let lens: Vec<(usize, usize)> = params
            .iter()
            .map(|p| (p.weight().len(), p.bias().len()))
            .collect();
        Self::new(kind, &lens)
    }

    /// The optimizer this state belongs to.
    pub fn kind(&self) -> Optimizer {
        self.kind
    }

    /// True when this state was made for `params`.
    pub fn fits(&self, params: &[impl Params<T>]) -> bool {
        let fit = |m: &Moments<T>, n: usize| {
            (m.first.is_empty() || m.first.len() == n)
                && (m.second.is_empty() || m.second.len() == n)
        };
        self.blocks.len() == params.len()
            && self
                .blocks
                .iter()
                .zip(params)
                .all(|([w, b], p)| fit(w, p.weight().len()) && fit(b, p.bias().len()))
    }

    /// Starts a new step (Adam's bias correction counts them) and returns its coefficients.
    pub(crate) fn begin_step(&mut self, lr: f64, weight_decay: f64) -> Coeffs<T> {
        self.step += 1;
        let rule = match self.kind {
            Optimizer::Sgd { momentum: 0.0, .. } => Rule::Sgd,
            Optimizer::Sgd { momentum, nesterov } => Rule::Momentum {
                mu: T::from_f64(momentum),
                nesterov,
            },
            Optimizer::Adam { beta1, beta2, eps } => {
                let t = self.step.min(i32::MAX as u64) as i32;
                Rule::Adam {
                    b1: T::from_f64(beta1),
                    b2: T::from_f64(beta2),
                    step_size: T::from_f64(lr / (1.0 - beta1.powi(t))),
                    inv_sqrt_bc2: T::from_f64(1.0 / (1.0 - beta2.powi(t)).sqrt()),
                    eps: T::from_f64(eps),
                }
            }
        };
        Coeffs {
            lr: T::from_f64(lr),
            wd: T::from_f64(weight_decay),
            rule,
        }
    }

    /// The buffers of one tensor of block `block` (empty slices when the rule keeps none).
    pub(crate) fn buffers(&mut self, block: usize, part: Part) -> (&mut [T], &mut [T]) {
        let m = &mut self.blocks[block][part as usize];
        (&mut m.first, &mut m.second)
    }

    /// One update of one tensor with its own coefficients: [`OptimState::begin_step`] then
    /// the update, for callers that step one tensor at a time.
    #[allow(clippy::too_many_arguments)]
    pub fn step_one(
        &mut self,
        block: usize,
        part: Part,
        w: &mut [T],
        g: &[T],
        lr: f64,
        weight_decay: f64,
    ) {
        let c = self.begin_step(lr, weight_decay);
        let (first, second) = self.buffers(block, part);
        c.apply(w, g, first, second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_and_nesterov_follow_the_recurrences() {
        let sgd = Optimizer::Sgd {
            momentum: 0.9,
            nesterov: false,
        };
        let mut st = OptimState::<f64>::new(sgd, &[(1, 0)]).unwrap();
        let mut w = [1.0];
        for _ in 0..2 {
            st.step_one(0, Part::Weight, &mut w, &[0.5], 0.1, 0.0);
        }
        // v1 = 0.5, w = 0.95; v2 = 0.95, w = 0.855
        assert!((w[0] - 0.855).abs() < 1e-15);
        let nag = Optimizer::Sgd {
            momentum: 0.9,
            nesterov: true,
        };
        let mut st = OptimState::<f64>::new(nag, &[(1, 0)]).unwrap();
        let mut w = [1.0];
        st.step_one(0, Part::Weight, &mut w, &[0.5], 0.1, 0.0);
        // v1 = 0.5, w = 1 − 0.1 (0.5 + 0.45) = 0.905
        assert!((w[0] - 0.905).abs() < 1e-15);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let adam = Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut st = OptimState::<f64>::new(adam, &[(2, 0)]).unwrap();
        let mut w = [1.0, -1.0];
        st.step_one(0, Part::Weight, &mut w, &[3.0, -0.2], 0.01, 0.0);
        assert!((w[0] - 0.99).abs() < 1e-9 && (w[1] + 0.99).abs() < 1e-9);
    }
}
