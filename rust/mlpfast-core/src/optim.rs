//! Optimizers: plain SGD, SGD with (Nesterov) momentum, Adam, AdamW and RMSprop, as PyTorch
//! defines them.
//!
//! For a parameter w with gradient g and L2 weight decay λ (weights only), g' = g + λw and
//!
//! ```text
//! sgd       w ← w − lr·g'
//! momentum  v ← μv + g';  w ← w − lr·v               (v starts at 0, so v₁ = g')
//! nesterov  v ← μv + g';  w ← w − lr·(g' + μv)
//! adam      m ← β₁m + (1−β₁)g';  s ← β₂s + (1−β₂)g'²;  t ← t + 1
//!           w ← w − (lr / (1−β₁ᵗ)) · m / (√s / √(1−β₂ᵗ) + ε)
//! adamw     w ← w·(1 − lr·λ), then adam's update with g (not g'): decoupled decay
//! rmsprop   s ← αs + (1−α)g'²;  d = √s + ε
//!           w ← w − lr·g'/d                           (μ = 0)
//!           v ← μv + g'/d;  w ← w − lr·v              (μ > 0)
//! ```
//!
//! RMSprop is PyTorch's uncentered form (`centered=False`). Each update is one pass over the
//! parameter, weight decay folded in.

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
    /// Adam with decoupled weight decay (PyTorch's AdamW): the decay shrinks the weights
    /// before the update instead of joining the gradient.
    AdamW {
        /// β₁ in [0, 1).
        beta1: f64,
        /// β₂ in [0, 1).
        beta2: f64,
        /// ε > 0.
        eps: f64,
    },
    /// RMSprop (PyTorch's, uncentered), with optional momentum.
    RmsProp {
        /// α in [0, 1): the decay of the mean square.
        alpha: f64,
        /// ε > 0, added to the root mean square.
        eps: f64,
        /// μ in [0, 1); 0 for none.
        momentum: f64,
    },
}

impl Optimizer {
    /// Which of the two buffers per tensor the rule keeps: (first, second).
    fn buffers(&self) -> (bool, bool) {
        match self {
            Optimizer::Sgd { momentum, .. } => (*momentum != 0.0, false),
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => (true, true),
            // The momentum buffer, and the mean square.
            Optimizer::RmsProp { momentum, .. } => (*momentum != 0.0, true),
        }
    }

    /// Whether weight decay is an L2 term of the loss (λw joins the gradient) rather than
    /// AdamW's decoupled shrinking, which no loss has as its gradient.
    pub fn decay_in_loss(&self) -> bool {
        !matches!(self, Optimizer::AdamW { .. })
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
    /// The gradient-clipping factor of this step, when clipping is on.
    clip: Option<T>,
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
        /// AdamW: the weight decay shrinks w rather than joining g.
        decoupled: bool,
    },
    RmsProp {
        alpha: T,
        eps: T,
        /// μ, when momentum is on.
        mu: Option<T>,
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

    /// The same update of gradients multiplied by `factor` (see [`clip_factor`]).
    pub(crate) fn clipped(self, factor: T) -> Self {
        Coeffs {
            clip: Some(factor),
            ..self
        }
    }

    /// The factor the gradients are multiplied by before the update, when clipping is on.
    pub(crate) fn clip(&self) -> Option<T> {
        self.clip
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
                decoupled,
            } => {
                let coeffs = [b1, b2, step_size, inv_sqrt_bc2, eps];
                // Two instances of one loop, so that Adam's carries no test of the flag.
                finite = if decoupled {
                    // PyTorch's `param.mul_(1 - lr * weight_decay)` (λ is 0 for biases: a
                    // factor of exactly 1); the gradient then goes in unchanged.
                    adam::<T, true>(w, g, first, second, coeffs, T::ONE - lr * wd)
                } else {
                    adam::<T, false>(w, g, first, second, coeffs, wd)
                };
            }
            Rule::RmsProp { alpha, eps, mu } => {
                let c = T::ONE - alpha;
                match mu {
                    // Separate loops: without momentum `first` is empty, and a zip with it
                    // would stop at once.
                    None => {
                        for ((w, &g), s) in w.iter_mut().zip(g).zip(second.iter_mut()) {
                            let g = g + wd * *w;
                            *s = alpha * *s + c * g * g;
                            *w -= lr * (g / (s.sqrt() + eps));
                            finite &= w.is_finite();
                        }
                    }
                    Some(mu) => {
                        for (((w, &g), v), s) in w
                            .iter_mut()
                            .zip(g)
                            .zip(first.iter_mut())
                            .zip(second.iter_mut())
                        {
                            let g = g + wd * *w;
                            *s = alpha * *s + c * g * g;
                            *v = mu * *v + g / (s.sqrt() + eps);
                            *w -= lr * *v;
                            finite &= w.is_finite();
                        }
                    }
                }
            }
        }
        finite
    }
}

/// Adam's update of `w` with moments `m` and `s`; `coeffs` are β₁, β₂, the step size, the
/// inverse square root of the second bias correction, and ε. `DECOUPLED` (AdamW): `decay` is
/// the factor w is multiplied by first; otherwise λ, whose λw joins the gradient. Returns
/// whether every updated value is finite.
#[inline(always)]
fn adam<T: Float, const DECOUPLED: bool>(
    w: &mut [T],
    g: &[T],
    m: &mut [T],
    s: &mut [T],
    coeffs: [T; 5],
    decay: T,
) -> bool {
    let [b1, b2, step_size, inv_sqrt_bc2, eps] = coeffs;
    let (c1, c2) = (T::ONE - b1, T::ONE - b2);
    let mut finite = true;
    for (((w, &g), m), s) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(s.iter_mut()) {
        let g = if DECOUPLED {
            *w *= decay;
            g
        } else {
            g + decay * *w
        };
        *m = b1 * *m + c1 * g;
        *s = b2 * *s + c2 * g * g;
        *w -= step_size * *m / (s.sqrt() * inv_sqrt_bc2 + eps);
        finite &= w.is_finite();
    }
    finite
}

/// PyTorch's `clip_grad_norm_` factor for gradients whose squares sum to `sum_sq`:
/// `min(max_norm / (‖g‖ + 1e-6), 1)`, which every gradient is multiplied by (1 when the norm
/// is within bounds, where the product changes no bit).
pub(crate) fn clip_factor(max_norm: f64, sum_sq: f64) -> f64 {
    let factor = max_norm / (sum_sq.sqrt() + 1e-6);
    // Not f64::min, which would turn a NaN norm into 1 (torch.clamp keeps the NaN).
    if factor > 1.0 { 1.0 } else { factor }
}

impl<T: Float> OptimState<T> {
    /// Zeroed state for blocks whose weights and biases have these lengths.
    pub fn new(kind: Optimizer, blocks: &[(usize, usize)]) -> Result<Self> {
        let (one, two) = kind.buffers();
        let moments = |n: usize| -> Result<Moments<T>> {
            Ok(Moments {
                first: alloc::zeros(if one { n } else { 0 }, "optimizer state")?,
                second: alloc::zeros(if two { n } else { 0 }, "optimizer state")?,
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
            Optimizer::AdamW { beta1, beta2, eps } => {
                w.u64(2);
                w.f64(beta1);
                w.f64(beta2);
                w.f64(eps);
            }
            Optimizer::RmsProp {
                alpha,
                eps,
                momentum,
            } => {
                w.u64(3);
                w.f64(alpha);
                w.f64(eps);
                w.f64(momentum);
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
            2 => Optimizer::AdamW {
                beta1: r.f64()?,
                beta2: r.f64()?,
                eps: r.f64()?,
            },
            3 => Optimizer::RmsProp {
                alpha: r.f64()?,
                eps: r.f64()?,
                momentum: r.f64()?,
            },
            _ => return Err(corrupt("an unknown optimizer")),
        };
        let step = r.u64()?;
        if r.u64()? != lens.len() as u64 {
            return Err(corrupt("optimizer state for another number of layers"));
        }
        let (one, two) = kind.buffers();
        let mut blocks = Vec::with_capacity(lens.len());
        for &(wl, bl) in lens {
            let mut pair = [Moments::default(), Moments::default()];
            for (m, n) in pair.iter_mut().zip([wl, bl]) {
                m.first = r.floats()?;
                m.second = r.floats()?;
                let want = |kept: bool| if kept { n } else { 0 };
                if m.first.len() != want(one) || m.second.len() != want(two) {
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
            Optimizer::Adam { beta1, beta2, eps } | Optimizer::AdamW { beta1, beta2, eps } => {
                let t = self.step.min(i32::MAX as u64) as i32;
                Rule::Adam {
                    b1: T::from_f64(beta1),
                    b2: T::from_f64(beta2),
                    step_size: T::from_f64(lr / (1.0 - beta1.powi(t))),
                    inv_sqrt_bc2: T::from_f64(1.0 / (1.0 - beta2.powi(t)).sqrt()),
                    eps: T::from_f64(eps),
                    decoupled: matches!(self.kind, Optimizer::AdamW { .. }),
                }
            }
            Optimizer::RmsProp {
                alpha,
                eps,
                momentum,
            } => Rule::RmsProp {
                alpha: T::from_f64(alpha),
                eps: T::from_f64(eps),
                mu: (momentum != 0.0).then(|| T::from_f64(momentum)),
            },
        };
        Coeffs {
            lr: T::from_f64(lr),
            wd: T::from_f64(weight_decay),
            rule,
            clip: None,
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

    #[test]
    fn adamw_shrinks_the_weights_before_adams_update() {
        let (lr, wd) = (0.01, 0.5);
        let kind = |decoupled| {
            if decoupled {
                Optimizer::AdamW {
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                }
            } else {
                Optimizer::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                }
            }
        };
        let mut st = OptimState::<f64>::new(kind(true), &[(1, 1)]).unwrap();
        let (mut w, mut b) = ([2.0], [2.0]);
        let c = st.begin_step(lr, wd);
        let (m, v) = st.buffers(0, Part::Weight);
        c.apply(&mut w, &[3.0], m, v);
        // w·(1 − lr·λ) = 1.99, then Adam's first step moves it by lr against the gradient's
        // sign: the decay is not part of the gradient (Adam's would be 3 + λ·2).
        assert!((w[0] - (2.0 * (1.0 - lr * wd) - lr)).abs() < 1e-9, "{w:?}");
        // Biases go through without_decay: no shrinking.
        let (m, v) = st.buffers(0, Part::Bias);
        c.without_decay().apply(&mut b, &[3.0], m, v);
        assert!((b[0] - (2.0 - lr)).abs() < 1e-9, "{b:?}");
        // Without decay AdamW is Adam, bit for bit.
        let mut pair = [[1.0, -0.5], [1.0, -0.5]];
        for (p, decoupled) in pair.iter_mut().zip([true, false]) {
            let mut st = OptimState::<f64>::new(kind(decoupled), &[(2, 0)]).unwrap();
            for g in [[0.3, -0.2], [0.1, 0.4], [-0.7, 0.05]] {
                st.step_one(0, Part::Weight, p, &g, lr, 0.0);
            }
        }
        assert_eq!(pair[0], pair[1]);
    }

    #[test]
    fn adamw_follows_its_recurrence_over_steps() {
        let (b1, b2, eps, lr, wd) = (0.8, 0.95, 1e-3, 0.1, 0.2);
        let adamw = Optimizer::AdamW {
            beta1: b1,
            beta2: b2,
            eps,
        };
        let mut st = OptimState::<f64>::new(adamw, &[(1, 0)]).unwrap();
        let mut w = [0.7];
        let (mut rw, mut m, mut s) = (0.7f64, 0.0, 0.0);
        for (t, g) in [0.5, -0.25, 0.125].into_iter().enumerate() {
            st.step_one(0, Part::Weight, &mut w, &[g], lr, wd);
            let t = t as i32 + 1;
            rw *= 1.0 - lr * wd;
            m = b1 * m + (1.0 - b1) * g;
            s = b2 * s + (1.0 - b2) * g * g;
            let (mh, sh) = (m / (1.0 - b1.powi(t)), s / (1.0 - b2.powi(t)));
            rw -= lr * mh / (sh.sqrt() + eps);
            assert!((w[0] - rw).abs() < 1e-14, "step {t}: {} vs {rw}", w[0]);
        }
    }

    #[test]
    fn rmsprop_follows_its_recurrences() {
        let (alpha, eps, lr, wd) = (0.9, 1e-2, 0.05, 0.1);
        for mu in [0.0, 0.7] {
            let rms = Optimizer::RmsProp {
                alpha,
                eps,
                momentum: mu,
            };
            let mut st = OptimState::<f64>::new(rms, &[(1, 0)]).unwrap();
            let mut w = [1.5];
            let (mut rw, mut s, mut v) = (1.5f64, 0.0, 0.0);
            for g in [0.4, -1.0, 0.3, 0.3] {
                st.step_one(0, Part::Weight, &mut w, &[g], lr, wd);
                // Coupled L2: λw joins the gradient, as PyTorch's RMSprop(weight_decay=λ).
                let g = g + wd * rw;
                s = alpha * s + (1.0 - alpha) * g * g;
                let d = s.sqrt() + eps;
                if mu == 0.0 {
                    rw -= lr * g / d;
                } else {
                    v = mu * v + g / d;
                    rw -= lr * v;
                }
                assert!((w[0] - rw).abs() < 1e-14, "mu {mu}: {} vs {rw}", w[0]);
            }
        }
        // The first step without momentum: s = (1−α)g², so w moves by lr·g/(√(1−α)|g| + ε).
        let rms = Optimizer::RmsProp {
            alpha: 0.99,
            eps: 0.0,
            momentum: 0.0,
        };
        let mut st = OptimState::<f64>::new(rms, &[(1, 0)]).unwrap();
        let mut w = [0.0];
        st.step_one(0, Part::Weight, &mut w, &[2.0], 0.1, 0.0);
        assert!((w[0] + 0.1 / 0.01f64.sqrt()).abs() < 1e-12, "{w:?}");
    }

    #[test]
    fn rmsprop_keeps_a_momentum_buffer_only_with_momentum() {
        for (mu, first) in [(0.0, 0), (0.5, 3)] {
            let rms = Optimizer::RmsProp {
                alpha: 0.99,
                eps: 1e-8,
                momentum: mu,
            };
            let mut st = OptimState::<f32>::new(rms, &[(3, 2)]).unwrap();
            let (m, s) = st.buffers(0, Part::Weight);
            assert_eq!((m.len(), s.len()), (first, 3));
        }
    }

    #[test]
    fn clip_factor_is_torchs_clamped_ratio() {
        // ‖g‖ = 5: max_norm 1 gives 1 / (5 + 1e-6); a norm within bounds gives exactly 1.
        assert_eq!(clip_factor(1.0, 25.0), 1.0 / (5.0 + 1e-6));
        assert_eq!(clip_factor(10.0, 25.0), 1.0);
        assert_eq!(clip_factor(5.0, 25.0), 5.0 / (5.0 + 1e-6));
        assert_eq!(clip_factor(1.0, 0.0), 1.0);
        // Non-finite gradients give a factor of 0 or NaN, as in PyTorch: the update is then
        // not finite, and the fit's divergence check stops it.
        assert_eq!(clip_factor(1.0, f64::INFINITY), 0.0);
        assert!(clip_factor(1.0, f64::NAN).is_nan());
    }
}
