//! One training step, in two parallel phases.
//!
//! **Phase 1, per shard.** The batch's rows are cut into a few contiguous shards. Each shard,
//! independently, gathers its rows, runs the forward pass through every block, the loss, and
//! the backward pass down to `g_l = dL/dz_l`, the gradient at every block's pre-activation
//! (per piece for maxout). Shards write disjoint row ranges of full-batch buffers and only
//! read the weights, so they need no synchronization.
//!
//! **Phase 2, per task.** A task is a block of rows of one weight matrix (or one layer's
//! biases). It computes its gradient over the whole batch in one product,
//! `dW[rows] = a[:, rows]ᵀ · g`, and applies the optimizer update to those rows at once, while
//! they are in cache; it also adds up ‖W[rows]‖² before the update for the weight-decay term.
//!
//! **Batch normalization** needs the whole batch's statistics before any row goes past it,
//! so with normalization blocks phase 1 runs in passes that stop there: a pass forwards each
//! shard up to a normalization's input and takes the shard's column sums and its squared
//! deviations from its own mean (two passes over its rows, in cache); the shards' parts are
//! combined in shard order into the batch's mean and variance; the next pass normalizes and
//! goes on to the next normalization, or to the loss and back down to the highest
//! normalization, whose backward needs the batch's Σg and Σg·x̂, summed in the same way. A
//! dense layer before a normalization gets the exact gradient 0 for its biases (the
//! normalization subtracts the batch's mean), and the running statistics move once the step
//! has succeeded.
//!
//! **Gradient clipping** needs the norm of the whole gradient before any update: a step that
//! clips computes every task's gradient first, with its sum of squares, adds those up in
//! task order, and then updates every task with the gradients scaled (as a long step does).
//!
//! The cut into shards and tasks depends on the batch and layer sizes only, never on the
//! number of threads; so every sum is taken in the same order and training gives the same bits
//! on one thread as on many.
//!
//! **Interrupts.** No item holds more than about [`MAX_ITEM_FLOPS`], so a raised interrupt
//! flag stops phase 1 within one item's time, even in a step of minutes. A step whose
//! phase 2 is long ([`LONG_PHASE_FLOPS`]) computes every weight gradient first (stoppable too)
//! and only then updates the weights, in a short pass of its own; an interrupted step thus
//! leaves the weights of the last whole step. Shorter steps update each block while it is in
//! cache and are interrupted between steps.

use crate::activation::Activation;
use crate::alloc;
use crate::error::Result;
use crate::float::Float;
use crate::forward::{Acts, Norming, Ptr, RawActs, forward_rows};
use crate::gemm::matmul;
use crate::linear::column_sums;
use crate::loss::Targets;
use crate::matrix::MatRef;
use crate::network::{Block, Dropping, NORM_EPS, NORM_MOMENTUM, Params, ParamsMut, Spec};
use crate::norm_sums::{NormBuffers, SLOT, combine_stats, reduce};
use crate::optim::{Coeffs, OptimState, Part, clip_factor};
use crate::team::{PerItem, Team};

/// Most shards a batch is cut into for parallelism; more only to bound an item's work.
const MAX_SHARDS: usize = 8;
/// An item (a shard, a weight block) holds at most about this many flops: about 0.1 s on one
/// core, the longest an interrupt waits for.
const MAX_ITEM_FLOPS: f64 = 1.6e10;
/// A phase 2 of more flops than this computes every gradient before it updates any weight.
const LONG_PHASE_FLOPS: f64 = 8e9;
/// A weight-gradient task holds at least about this many multiply-adds (when its matrix has
/// that many), so that handing it to a thread pays.
const TASK_WORK: usize = 1 << 17;
/// A weight matrix is cut into at most this many row blocks.
const MAX_BLOCKS: usize = 16;

/// Number of shards for a batch of `rows` rows, each costing `row_flops` in phase 1: two from
/// 16 rows on (both cores busy on small batches), one more per 128 rows beyond 256, and as
/// many as it takes to keep a shard under [`MAX_ITEM_FLOPS`].
pub(crate) fn shard_count(rows: usize, row_flops: f64) -> usize {
    if rows < 16 {
        return 1;
    }
    let by_rows = (rows / 128).clamp(2, MAX_SHARDS);
    let by_work = (rows as f64 * row_flops / MAX_ITEM_FLOPS).ceil() as usize;
    by_rows.max(by_work).min(rows)
}

/// Flops of one row's phase 1: every block's forward product, and every block's but the
/// first's backward product (the input needs no gradient).
pub(crate) fn row_flops(spec: &Spec) -> f64 {
    spec.blocks()
        .iter()
        .enumerate()
        .map(|(l, b)| {
            let product = b.forward_flops();
            if l == 0 { product } else { 2.0 * product }
        })
        .sum()
}

/// Flops of a step of `rows` rows: phase 1's and the weight gradients'.
pub(crate) fn step_flops(spec: &Spec, rows: usize) -> f64 {
    rows as f64 * (row_flops(spec) + grad_flops(spec))
}

/// Flops of the weight gradients of one row.
fn grad_flops(spec: &Spec) -> f64 {
    spec.blocks()
        .iter()
        .filter(|b| b.is_matrix())
        .map(|b| 2.0 * b.weight_len() as f64)
        .sum()
}

/// Rows `lo..hi` of shard `s` of `count` in a batch of `rows`.
pub(crate) fn shard_range(rows: usize, s: usize, count: usize) -> (usize, usize) {
    (rows * s / count, rows * (s + 1) / count)
}

/// The rows of the training data one step trains on.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// Consecutive rows `lo..hi`, read in place.
    Range(usize, usize),
    /// These rows, gathered into the step's buffers.
    Picked(&'a [usize]),
}

impl Rows<'_> {
    fn len(&self) -> usize {
        match *self {
            Rows::Range(lo, hi) => hi - lo,
            Rows::Picked(idx) => idx.len(),
        }
    }
}

/// One step's data: the whole training set (with its row weights, if any), which of its rows
/// the batch holds, and which rows the next batch will gather (to prefetch them).
#[derive(Clone, Copy)]
pub(crate) struct Batch<'a, T> {
    pub x: MatRef<'a, T>,
    pub y: &'a Targets<'a, T>,
    pub w: Option<&'a [T]>,
    pub rows: Rows<'a>,
    /// Dropout's masks of this step (training with dropout).
    pub drop: Option<Dropping>,
    pub next: &'a [usize],
}

/// Full-batch buffers: every block's output and gradients for up to `capacity` rows, and the
/// gathered batch. Shards fill row ranges of them; the weight gradients read them whole.
pub(crate) struct Buffers<T> {
    acts: Acts<T>,
    grads: Vec<Vec<T>>,
    /// Scratch for dL/da at a maxout block's output, `dx_stride` per row: every maxout block
    /// uses it, so a shard's rows sit at a stride that fits the widest.
    dx: Vec<T>,
    dx_stride: usize,
    x: Vec<T>,
    classes: Vec<u32>,
    values: Vec<T>,
    weights: Vec<T>,
}

/// Pointers into a [`Buffers`], for shards that fill disjoint row ranges at once.
struct Raw<T> {
    acts: RawActs<T>,
    grads: Vec<Ptr<T>>,
    dx: Ptr<T>,
    dx_stride: usize,
    x: Ptr<T>,
    classes: Ptr<u32>,
    values: Ptr<T>,
    weights: Ptr<T>,
}

/// What a batch needs gathered, when it is gathered at all.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gather {
    /// Nothing: batches are read in place.
    No,
    /// Rows of X and class labels.
    Classes,
    /// Rows of X and of the target matrix.
    Values,
}

impl<T: Float> Buffers<T> {
    /// Buffers for batches of up to `capacity` rows (gathering row weights too when
    /// `weighted`).
    pub(crate) fn new(
        spec: &Spec,
        capacity: usize,
        gather: Gather,
        weighted: bool,
    ) -> Result<Self> {
        let blocks = spec.blocks();
        let maxout_width = blocks
            .iter()
            .filter(|b| matches!(b, Block::Maxout { .. }))
            .map(|b| b.inputs().max(b.outputs()))
            .max()
            .unwrap_or(0);
        let (d, k) = (spec.inputs(), spec.outputs());
        let rows = |on: bool| if on { capacity } else { 0 };
        Ok(Buffers {
            acts: Acts::new(spec, capacity, true)?,
            grads: blocks
                .iter()
                .map(|b| alloc::zeros2(capacity, b.bias_len(), "gradients"))
                .collect::<Result<_>>()?,
            dx: alloc::zeros2(capacity, maxout_width, "maxout gradients")?,
            dx_stride: maxout_width,
            x: alloc::zeros2(rows(gather != Gather::No), d, "batch rows")?,
            classes: alloc::zeros(rows(gather == Gather::Classes), "batch labels")?,
            values: alloc::zeros2(rows(gather == Gather::Values), k, "batch targets")?,
            weights: alloc::zeros(rows(gather != Gather::No && weighted), "batch weights")?,
        })
    }

    /// Pointers to every buffer. They stay valid as long as `self` lives: no buffer is ever
    /// resized.
    fn raw(&mut self) -> Raw<T> {
        Raw {
            acts: self.acts.raw(),
            grads: self.grads.iter_mut().map(|v| Ptr::of(v)).collect(),
            dx: Ptr::of(&mut self.dx),
            dx_stride: self.dx_stride,
            x: Ptr::of(&mut self.x),
            classes: Ptr::of(&mut self.classes),
            values: Ptr::of(&mut self.values),
            weights: Ptr::of(&mut self.weights),
        }
    }
}

impl<T> Raw<T> {
    /// Gradient at piece `p` of block `l`'s pre-activation, for the `n` rows of the batch.
    ///
    /// # Safety
    /// Nothing may write those rows while the view lives.
    unsafe fn grad<'a>(&self, l: usize, p: usize, n: usize, width: usize) -> MatRef<'a, T>
    where
        T: Copy,
    {
        // SAFETY: forwarded to the caller.
        MatRef::new(
            unsafe { self.grads[l].view(p * n * width, n * width) },
            n,
            width,
        )
    }
}

/// Where a shard's backward pass starts.
#[derive(Clone, Copy)]
enum Start<'a, T> {
    /// At the loss of the shard's rows (their targets and weights), from `scale ·` its
    /// gradient.
    Loss(&'a Targets<'a, T>, Option<&'a [T]>, T),
    /// At batch normalization block `l`, whose g (and the batch's sums of it) is known.
    Norm(usize),
}

/// Rows `lo..hi` of a batch of `n` after their forward pass: from `start` down to block
/// `stop`, `g_l` for every block in between (and `stop`); when `stop` is a normalization,
/// the shard's Σg and Σg·x̂ there go into its slot of `partial[stop]`. Returns the loss
/// (summed over the rows, each times its weight) when starting at it, 0 otherwise.
///
/// # Safety
/// No other live reference may overlap those rows of the buffers `raw` points to, nor
/// the shard's slot of `partial[stop]`.
#[allow(clippy::too_many_arguments)]
unsafe fn backward_rows<T: Float>(
    raw: &Raw<T>,
    spec: &Spec,
    params: &[impl Params<T>],
    (n, lo, hi, shard): (usize, usize, usize, usize),
    start: Start<'_, T>,
    stop: usize,
    dropping: Option<Dropping>,
    norm: &NormBuffers,
) -> f64 {
    let m = hi - lo;
    let blocks = spec.blocks();
    let last = blocks.len() - 1;
    let k = spec.outputs();
    // SAFETY (all slices below): rows lo..hi of this shard's own parts of the buffers.
    let (top, loss) = match start {
        Start::Loss(targets, weights, scale) => unsafe {
            let scores = MatRef::new(raw.acts.acts[last].slice(lo * k, m * k), m, k);
            let grad = raw.grads[last].slice(lo * k, m * k);
            let loss = spec
                .loss()
                .sum_rows(scores, targets, weights, Some(grad), scale);
            (last, loss)
        },
        Start::Norm(l) => (l, 0.0),
    };
    for l in (stop + 1..top + 1).rev() {
        let (block, prev) = (blocks[l], blocks[l - 1]);
        let (n_in, n_out) = (block.inputs(), block.outputs());
        // dL/da_{l-1}: Σ_p g_{l,p} · W_{l,p}ᵀ for a matrix block, the normalization's
        // backward for a normalization; straight into g_{l-1} (then scaled by f'), or via
        // scratch for maxout (then routed to the winning pieces).
        let dst = unsafe {
            match prev {
                // Rows lo..hi at the widest maxout's stride: shards never overlap, whatever
                // this block's width.
                Block::Maxout { .. } => raw.dx.slice(lo * raw.dx_stride, m * n_in),
                _ => raw.grads[l - 1].slice(lo * n_in, m * n_in),
            }
        };
        match block {
            Block::Norm { features, .. } => {
                let g = unsafe { raw.grads[l].view(lo * n_out, m * n_out) };
                dst.copy_from_slice(g);
                let xhat = unsafe { raw.acts.xhat[l].view(lo * n_out, m * n_out) };
                let (_, inv_std) = &norm.stats[l];
                let (dbeta, dgamma) = norm.sums[l].split_at(features);
                let gamma = params[l].weight();
                crate::batchnorm::backward_rows(
                    dst,
                    xhat,
                    features,
                    n,
                    (gamma, inv_std),
                    (dbeta, dgamma),
                );
            }
            _ => {
                let w = params[l].weight();
                for p in 0..block.bias_len() / n_out {
                    let gp = unsafe { raw.grads[l].view(p * n * n_out + lo * n_out, m * n_out) };
                    let wp = MatRef::new(&w[p * n_in * n_out..(p + 1) * n_in * n_out], n_in, n_out);
                    matmul(&mut *dst, MatRef::new(gp, m, n_out), wp.t(), p > 0);
                }
            }
        }
        // Through dropout's mask (the same the forward pass drew), to the output before it.
        let a = match dropping.filter(|_| spec.is_hidden_output(l - 1)) {
            Some(d) => {
                d.mask(l - 1)
                    .apply(dst, n_in, lo, crate::dropout::keep_scale(d.p));
                unsafe { raw.acts.kept[l - 1].view(lo * n_in, m * n_in) }
            }
            None => unsafe { raw.acts.acts[l - 1].view(lo * n_in, m * n_in) },
        };
        match prev {
            Block::Dense { act, .. } | Block::Norm { act, .. } => {
                if act != Activation::Identity {
                    act.backward_from_output_inplace(a, dst);
                }
            }
            Block::Maxout { pieces, .. } => {
                let winners = unsafe { raw.acts.winners[l - 1].view(lo * n_in, m * n_in) };
                for p in 0..pieces {
                    let gp = unsafe { raw.grads[l - 1].slice(p * n * n_in + lo * n_in, m * n_in) };
                    for ((d, &v), &w) in gp.iter_mut().zip(&*dst).zip(winners) {
                        *d = v.keep_if(w as usize == p);
                    }
                }
            }
        }
    }
    if let Block::Norm { features, .. } = blocks[stop] {
        // SAFETY: the shard's own slot and rows.
        unsafe {
            let part = norm.partial[stop].slice(SLOT * features * shard, 2 * features);
            part.fill(0.0);
            let (dbeta, dgamma) = part.split_at_mut(features);
            let g = raw.grads[stop].view(lo * features, m * features);
            let xhat = raw.acts.xhat[stop].view(lo * features, m * features);
            crate::batchnorm::add_grad_sums(g, xhat, features, dbeta, dgamma);
        }
    }
    loss
}

/// What a phase-2 task updates.
#[derive(Debug, Clone, Copy)]
enum Task {
    /// Rows `r0..r1` of piece `piece` of block `layer`'s weights.
    Weight {
        layer: usize,
        piece: usize,
        r0: usize,
        r1: usize,
    },
    /// All biases of block `layer`.
    Bias { layer: usize },
    /// γ and β of batch-normalization block `layer`.
    Norm { layer: usize },
}

/// Pointers to one block's parameters, gradients and optimizer buffers for one step.
#[derive(Clone, Copy)]
struct LayerPtrs<T> {
    w: Ptr<T>,
    b: Ptr<T>,
    dw: Ptr<T>,
    db: Ptr<T>,
    w1: Ptr<T>,
    w2: Ptr<T>,
    b1: Ptr<T>,
    b2: Ptr<T>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stepped {
    /// The batch's mean data loss, and the L2 term (0 without weight decay).
    Loss {
        /// The (weighted) mean data loss.
        data: f64,
        /// ½λ‖W‖² at the weights before the update.
        reg: f64,
    },
    /// The batch's rows all have weight 0: nothing to learn from, nothing changed.
    NoWeight,
    /// The batch's rows of X hold NaN or infinity (checked on request); nothing changed.
    NonFinite,
    /// The interrupt flag stopped the step before any weight changed.
    Interrupted,
    /// The batch's loss at the current parameters is infinite or NaN; nothing changed.
    LossNotFinite(f64),
    /// The update left a parameter, or the L2 term, infinite or NaN: the parameters are no
    /// longer usable (the caller goes back to the step before).
    UpdateNotFinite,
}

/// Everything one training run allocates up front: buffers, gradients, the task list.
pub(crate) struct Trainer<T> {
    bufs: Buffers<T>,
    raw: Raw<T>,
    losses: Vec<f64>,
    finite: Vec<bool>,
    dw: Vec<Vec<T>>,
    db: Vec<Vec<T>>,
    tasks: Vec<Task>,
    reg: Vec<f64>,
    /// Per task: the sum of squares of its gradient (when the step clips).
    grad_sq: Vec<f64>,
    /// Per task: its last update left every value finite.
    updated_finite: Vec<bool>,
    ptrs: Vec<LayerPtrs<T>>,
    row_flops: f64,
    /// Phase 2 computes every gradient before any update (see the module's notes).
    deferred: bool,
    /// The batch-normalization blocks, input side first.
    norm_blocks: Vec<usize>,
    norm: NormBuffers,
}

impl<T: Float> Trainer<T> {
    /// Buffers for batches of up to `batch` rows of `spec`; `gather` says what a shuffled
    /// batch copies (nothing when batches are ranges read in place), `weighted` whether rows
    /// carry weights.
    pub(crate) fn new(spec: &Spec, batch: usize, gather: Gather, weighted: bool) -> Result<Self> {
        let mut bufs = Buffers::new(spec, batch, gather, weighted)?;
        let raw = bufs.raw();
        let tasks = plan_tasks(spec, batch);
        // Shard counts grow with the batch, so the full batch has the most.
        let row_flops = row_flops(spec);
        let most = shard_count(batch, row_flops);
        let per_block = |len: fn(&Block) -> usize, what| -> Result<Vec<Vec<T>>> {
            spec.blocks()
                .iter()
                .map(|b| alloc::zeros(len(b), what))
                .collect()
        };
        Ok(Trainer {
            bufs,
            raw,
            losses: vec![0.0; most],
            finite: vec![true; most],
            dw: per_block(Block::weight_len, "weight gradients")?,
            db: per_block(Block::bias_len, "bias gradients")?,
            reg: vec![0.0; tasks.len()],
            grad_sq: vec![0.0; tasks.len()],
            updated_finite: vec![true; tasks.len()],
            tasks,
            ptrs: Vec::with_capacity(spec.blocks().len()),
            row_flops,
            deferred: defers_updates(spec, batch),
            norm_blocks: (0..spec.blocks().len())
                .filter(|&l| matches!(spec.blocks()[l], Block::Norm { .. }))
                .collect(),
            norm: NormBuffers::new(spec, most)?,
        })
    }

    /// One step on `batch`: forward, loss, backward, update. Returns the batch's (weighted)
    /// mean loss, plus ½λ‖W‖² (the weights before the update) when `weight_decay` λ > 0 and
    /// the optimizer's decay is an L2 term (not AdamW's) — `weight_decay` is called with the
    /// batch's row count or weight sum, for the estimators' per-sample L2 — and
    /// [`Stepped::NoWeight`] for a batch whose weights are all zero, which changes nothing;
    /// with `clip`, the gradient is scaled to that global norm when longer (before the
    /// optimizer adds λW); with `check_x`,
    /// [`Stepped::NonFinite`] when the batch's rows of X hold NaN or infinity; and
    /// [`Stepped::Interrupted`] when the team's interrupt flag stopped it. In both cases no
    /// parameter or optimizer state has changed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &mut self,
        team: &Team<'_>,
        spec: &Spec,
        params: &mut [ParamsMut<'_, T>],
        batch: Batch<'_, T>,
        optim: &mut OptimState<T>,
        lr: f64,
        weight_decay: impl Fn(f64) -> f64,
        clip: Option<f64>,
        check_x: bool,
    ) -> Stepped {
        let n = batch.rows.len();
        assert!(
            n <= self.bufs.acts.capacity(),
            "batch of {n} in buffers for {}",
            self.bufs.acts.capacity()
        );
        assert!(
            n >= 2 || self.norm_blocks.is_empty(),
            "batch normalization of a batch of one row"
        );
        let count = shard_count(n, self.row_flops);
        // The batch's weight sum, in row order; the row count when unweighted.
        let mass = match (batch.w, batch.rows) {
            (None, _) => n as f64,
            (Some(w), Rows::Range(lo, hi)) => w[lo..hi].iter().map(|v| v.to_f64()).sum(),
            (Some(w), Rows::Picked(idx)) => idx.iter().map(|&i| w[i].to_f64()).sum(),
        };
        if mass == 0.0 {
            return Stepped::NoWeight;
        }
        let weight_decay = weight_decay(mass);
        let norm = spec.loss().normalizer(mass, spec.outputs());
        let scale = T::from_f64(1.0 / norm);
        if !self.phase1(team, spec, params, batch, count, scale, check_x) {
            return Stepped::Interrupted;
        }
        if check_x && !self.finite[..count].iter().all(|&f| f) {
            return Stepped::NonFinite;
        }
        let data_loss: f64 = self.losses[..count].iter().sum::<f64>() / norm;
        if !data_loss.is_finite() {
            return Stepped::LossNotFinite(data_loss);
        }
        // ½λ‖W‖² joins the loss when λW joins the gradient (not for AdamW's decoupled decay).
        let decay = weight_decay > 0.0 && optim.kind().decay_in_loss();
        self.point_at(params, optim);
        if self.deferred || clip.is_some() {
            // Every gradient first (stoppable), then every update: see the module's notes.
            if !self.phase2(team, spec, batch, None, decay, clip.is_some()) {
                return Stepped::Interrupted;
            }
            let mut coeffs = optim.begin_step(lr, weight_decay);
            if let Some(max_norm) = clip {
                // Summed in task order, which the thread count does not change.
                let sum_sq: f64 = self.grad_sq.iter().sum();
                coeffs = coeffs.clipped(T::from_f64(clip_factor(max_norm, sum_sq)));
            }
            self.apply(team, spec, coeffs, decay);
        } else {
            let coeffs = optim.begin_step(lr, weight_decay);
            self.phase2(team, spec, batch, Some(coeffs), decay, false);
        }
        let reg = if decay {
            0.5 * weight_decay * self.reg.iter().sum::<f64>()
        } else {
            0.0
        };
        if !reg.is_finite() || !self.updated_finite.iter().all(|&f| f) {
            return Stepped::UpdateNotFinite;
        }
        // The step has succeeded: the running statistics move towards the batch's.
        for &l in &self.norm_blocks {
            let features = spec.blocks()[l].outputs();
            let (mean, var) = (&self.norm.stats[l].0, &self.norm.var[l]);
            let (running_mean, running_var) = params[l].state.split_at_mut(features);
            crate::batchnorm::update_running(
                (running_mean, running_var),
                (mean, var),
                n,
                NORM_MOMENTUM,
            );
            if !crate::float::all_finite(params[l].state) {
                return Stepped::UpdateNotFinite;
            }
        }
        Stepped::Loss {
            data: data_loss,
            reg,
        }
    }

    /// Phase 1 over `count` shards, in one pass, or in several around each batch
    /// normalization (see the module's notes); false when interrupted.
    #[allow(clippy::too_many_arguments)]
    fn phase1(
        &mut self,
        team: &Team<'_>,
        spec: &Spec,
        params: &[ParamsMut<'_, T>],
        batch: Batch<'_, T>,
        count: usize,
        scale: T,
        check_x: bool,
    ) -> bool {
        let n = batch.rows.len();
        let last = spec.blocks().len() - 1;
        let rows = |s: usize| {
            let (lo, hi) = shard_range(n, s, count);
            (hi - lo) as f64
        };
        let norm_blocks = std::mem::take(&mut self.norm_blocks);
        let ok = 'passes: {
            let mut from = 0;
            // Forward, up to each normalization: each shard's column sums and squared
            // deviations from its own mean, combined over the whole batch in shard order.
            for &l in &norm_blocks {
                let features = spec.blocks()[l].outputs();
                let (raw, norm) = (&self.raw, &self.norm);
                let finite = PerItem::new(&mut self.finite[..count]);
                let first = from == 0;
                let done = team.run(count, true, &rows, &|s| {
                    let (lo, hi) = shard_range(n, s, count);
                    // SAFETY: shard s alone owns rows lo..hi of every buffer and its slot of
                    // the partial sums; the team runs each index once.
                    unsafe {
                        let check = (first && check_x).then_some(&finite);
                        let rows = (s, count, from..l);
                        forward_shard(raw, spec, params, batch, rows, &norm.stats, check);
                        let x = raw.acts.acts[l - 1].view(lo * features, (hi - lo) * features);
                        let slot = norm.partial[l].slice(SLOT * features * s, SLOT * features);
                        slot.fill(0.0);
                        let (sums, rest) = slot.split_at_mut(features);
                        let (mean, squares) = rest.split_at_mut(features);
                        crate::batchnorm::add_column_sums(x, features, sums);
                        let inv_rows = 1.0 / (hi - lo) as f64;
                        for (m, &sum) in mean.iter_mut().zip(&*sums) {
                            *m = sum * inv_rows;
                        }
                        crate::batchnorm::add_centered_squares(x, features, mean, squares);
                    }
                });
                if !done {
                    break 'passes false;
                }
                let norm = &mut self.norm;
                combine_stats(
                    &norm.partial_store[l],
                    features,
                    n,
                    count,
                    (&mut norm.stats[l].0, &mut norm.var[l]),
                );
                let (var, inv) = (&norm.var[l], &mut norm.stats[l].1);
                for (inv, &v) in inv.iter_mut().zip(var) {
                    *inv = 1.0 / (v + NORM_EPS).sqrt();
                }
                from = l;
            }
            // The rest of the forward pass, the loss, and backward down to the highest
            // normalization (or to the first block).
            let mut stop = norm_blocks.last().copied().unwrap_or(0);
            let (raw, norm) = (&self.raw, &self.norm);
            let losses = PerItem::new(&mut self.losses[..count]);
            let finite = PerItem::new(&mut self.finite[..count]);
            let first = from == 0;
            let done = team.run(count, true, &rows, &|s| {
                let (lo, hi) = shard_range(n, s, count);
                // SAFETY: as above.
                unsafe {
                    let check = (first && check_x).then_some(&finite);
                    let rows = (s, count, from..last + 1);
                    let (targets, weights) =
                        forward_shard(raw, spec, params, batch, rows, &norm.stats, check);
                    let start = Start::Loss(&targets, weights, scale);
                    let shard = (n, lo, hi, s);
                    *losses.get(s) =
                        backward_rows(raw, spec, params, shard, start, stop, batch.drop, norm);
                }
            });
            if !done {
                break 'passes false;
            }
            // Backward through each normalization, with the batch's sums of g there.
            for (i, &l) in norm_blocks.iter().enumerate().rev() {
                let features = spec.blocks()[l].outputs();
                let norm = &mut self.norm;
                reduce(
                    &norm.partial_store[l],
                    SLOT * features,
                    count,
                    &mut norm.sums[l],
                );
                stop = if i == 0 { 0 } else { norm_blocks[i - 1] };
                let (raw, norm) = (&self.raw, &self.norm);
                let done = team.run(count, true, &rows, &|s| {
                    let (lo, hi) = shard_range(n, s, count);
                    let shard = (n, lo, hi, s);
                    // SAFETY: as above.
                    unsafe {
                        backward_rows(
                            raw,
                            spec,
                            params,
                            shard,
                            Start::Norm(l),
                            stop,
                            batch.drop,
                            norm,
                        )
                    };
                });
                if !done {
                    break 'passes false;
                }
            }
            true
        };
        self.norm_blocks = norm_blocks;
        ok
    }

    /// Points `ptrs` at this step's parameters and optimizer buffers.
    fn point_at(&mut self, params: &mut [ParamsMut<'_, T>], optim: &mut OptimState<T>) {
        self.ptrs.clear();
        for (l, p) in params.iter_mut().enumerate() {
            let (w1, w2) = optim.buffers(l, Part::Weight);
            let (w1, w2) = (Ptr::of(w1), Ptr::of(w2));
            let (b1, b2) = optim.buffers(l, Part::Bias);
            self.ptrs.push(LayerPtrs {
                w: Ptr::of(p.weight),
                b: Ptr::of(p.bias),
                dw: Ptr::of(&mut self.dw[l]),
                db: Ptr::of(&mut self.db[l]),
                w1,
                w2,
                b1: Ptr::of(b1),
                b2: Ptr::of(b2),
            });
        }
    }

    /// Phase 2: every task's gradient over the whole batch and, with `coeffs`, its update
    /// while the block is in cache (without, the job is stoppable: false when interrupted);
    /// with `norms`, each task's gradient's sum of squares, while it is in cache.
    fn phase2(
        &mut self,
        team: &Team<'_>,
        spec: &Spec,
        batch: Batch<'_, T>,
        coeffs: Option<Coeffs<T>>,
        decay: bool,
        norms: bool,
    ) -> bool {
        let n = batch.rows.len();
        let d = spec.inputs();
        let raw = &self.raw;
        let ptrs = &self.ptrs;
        // The whole batch's input to block `layer`, and the gradient at its pre-activation.
        // SAFETY (both): phase 1, which wrote these buffers, is over; phase 2 only reads them.
        let input = |layer: usize| -> MatRef<'_, T> {
            match (layer, batch.rows) {
                (0, Rows::Range(start, _)) => batch.x.row_block(start, start + n),
                (0, Rows::Picked(_)) => MatRef::new(unsafe { raw.x.view(0, n * d) }, n, d),
                _ => unsafe { raw.acts.act(layer - 1, n, spec.blocks()[layer].inputs()) },
            }
        };
        let grad = |layer: usize, piece: usize, width: usize| -> MatRef<'_, T> {
            unsafe { raw.grad(layer, piece, n, width) }
        };
        let tasks = &self.tasks;
        let norm_sums = &self.norm.sums;
        let regs = PerItem::new(&mut self.reg);
        let oks = PerItem::new(&mut self.updated_finite);
        let sums = PerItem::new(&mut self.grad_sq);
        let cost = |i: usize| task_cost(spec, tasks[i], n);
        team.run(tasks.len(), coeffs.is_none(), &cost, &|i| {
            let (layer, off, len) = task_span(spec, tasks[i]);
            let lp = ptrs[layer];
            // SAFETY: the tasks of a block partition its (piece, row) ranges and its biases,
            // so no two tasks touch the same elements; phase 1, the only reader of the
            // weights, is over.
            let squares = |g: &[T]| crate::network::sum_of_squares(g);
            let sq = match tasks[i] {
                Task::Weight { piece, r0, r1, .. } => {
                    let dw = unsafe { lp.dw.slice(off, len) };
                    let n_out = spec.blocks()[layer].outputs();
                    let a = input(layer).col_block(r0, r1);
                    matmul(dw, a.t(), grad(layer, piece, n_out), false);
                    norms.then(|| squares(dw))
                }
                Task::Bias { .. } => {
                    let db = unsafe { lp.db.slice(off, len) };
                    let n_out = spec.blocks()[layer].outputs();
                    if spec.bias_grad_is_zero(layer) {
                        // The normalization after the block subtracts the batch's mean: the
                        // biases' gradient is exactly 0 (its column sums of g are rounding).
                        db.fill(T::ZERO);
                    } else {
                        for (p, dbp) in db.chunks_exact_mut(n_out).enumerate() {
                            column_sums(grad(layer, p, n_out), dbp);
                        }
                    }
                    norms.then(|| squares(db))
                }
                Task::Norm { .. } => {
                    // dβ and dγ were summed in phase 1, for the backward pass.
                    let (dw, db) = unsafe { (lp.dw.slice(0, len), lp.db.slice(0, len)) };
                    let (dbeta, dgamma) = norm_sums[layer].split_at(len);
                    for (g, &v) in dw.iter_mut().zip(dgamma) {
                        *g = T::from_f64(v);
                    }
                    for (g, &v) in db.iter_mut().zip(dbeta) {
                        *g = T::from_f64(v);
                    }
                    norms.then(|| squares(dw) + squares(db))
                }
            };
            if let Some(sq) = sq {
                // SAFETY: the team runs each index once.
                unsafe { *sums.get(i) = sq };
            }
            if let Some(coeffs) = coeffs {
                // SAFETY: the team runs each index once; the task's span as above.
                unsafe { *oks.get(i) = update(tasks[i], lp, off, len, coeffs, decay, regs.get(i)) };
            }
        })
    }

    /// The updates of a deferred phase 2, once every gradient is known.
    fn apply(&mut self, team: &Team<'_>, spec: &Spec, coeffs: Coeffs<T>, decay: bool) {
        let tasks = &self.tasks;
        let ptrs = &self.ptrs;
        let regs = PerItem::new(&mut self.reg);
        let oks = PerItem::new(&mut self.updated_finite);
        let cost = |i: usize| task_span(spec, tasks[i]).2 as f64;
        team.run(tasks.len(), false, &cost, &|i| {
            let (layer, off, len) = task_span(spec, tasks[i]);
            // SAFETY: as in phase 2; the team runs each index once.
            unsafe {
                *oks.get(i) = update(tasks[i], ptrs[layer], off, len, coeffs, decay, regs.get(i))
            };
        });
    }
}

/// The phase-2 tasks for batches of up to `batch` rows: per block, its weights' rows cut into
/// blocks of enough work to pay for a hand-off (and at most [`MAX_ITEM_FLOPS`]), then its
/// biases.
fn plan_tasks(spec: &Spec, batch: usize) -> Vec<Task> {
    let mut tasks = Vec::new();
    for (layer, b) in spec.blocks().iter().enumerate() {
        if !b.is_matrix() {
            tasks.push(Task::Norm { layer });
            continue;
        }
        let (n_in, n_out) = (b.inputs(), b.outputs());
        let work = n_in * n_out * batch;
        let by_work = (2.0 * work as f64 / MAX_ITEM_FLOPS).ceil() as usize;
        let blocks = (work / TASK_WORK)
            .clamp(1, MAX_BLOCKS)
            .max(by_work)
            .min(n_in);
        let step = n_in.div_ceil(blocks);
        for piece in 0..b.bias_len() / n_out {
            for r0 in (0..n_in).step_by(step) {
                tasks.push(Task::Weight {
                    layer,
                    piece,
                    r0,
                    r1: (r0 + step).min(n_in),
                });
            }
        }
        tasks.push(Task::Bias { layer });
    }
    tasks
}

/// Whether batches of `batch` rows compute every gradient before any update.
fn defers_updates(spec: &Spec, batch: usize) -> bool {
    batch as f64 * grad_flops(spec) > LONG_PHASE_FLOPS
}

/// The block a task belongs to, and the offset and length of its parameters there.
fn task_span(spec: &Spec, task: Task) -> (usize, usize, usize) {
    match task {
        Task::Weight {
            layer,
            piece,
            r0,
            r1,
        } => {
            let b = spec.blocks()[layer];
            let (n_in, n_out) = (b.inputs(), b.outputs());
            (layer, piece * n_in * n_out + r0 * n_out, (r1 - r0) * n_out)
        }
        Task::Bias { layer } | Task::Norm { layer } => (layer, 0, spec.blocks()[layer].bias_len()),
    }
}

/// A task's multiply-adds over a batch of `n` rows (its column sums, for biases).
fn task_cost(spec: &Spec, task: Task, n: usize) -> f64 {
    let (layer, _, len) = task_span(spec, task);
    let n_out = spec.blocks()[layer].outputs();
    match task {
        Task::Weight { r0, r1, .. } => ((r1 - r0) * n_out * n) as f64,
        Task::Bias { .. } => (len * n) as f64,
        Task::Norm { .. } => len as f64,
    }
}

/// The optimizer update of one task's parameters; `reg` gets their ‖·‖² before it, when
/// weight decay is on (biases add nothing). Returns whether the updated values are all
/// finite (tested as the update writes them).
///
/// # Safety
/// No other live reference may overlap the task's span of the block's parameters, gradients
/// and optimizer buffers.
unsafe fn update<T: Float>(
    task: Task,
    lp: LayerPtrs<T>,
    off: usize,
    len: usize,
    coeffs: Coeffs<T>,
    decay: bool,
    reg: &mut f64,
) -> bool {
    *reg = 0.0;
    // The clipped gradient, as torch's clip_grad_norm_ leaves it for the optimizer (whose
    // weight decay comes after).
    let clip = |g: &mut [T]| {
        if let Some(c) = coeffs.clip() {
            g.iter_mut().for_each(|g| *g *= c);
        }
    };
    // One tensor's update: its gradient clipped, then the optimizer's rule.
    // SAFETY (the slices): the task's span, forwarded from the caller.
    let step = |x: Ptr<T>, g: Ptr<T>, m: Ptr<T>, v: Ptr<T>, coeffs: Coeffs<T>| unsafe {
        let g = g.slice(off, len);
        clip(g);
        coeffs.apply(x.slice(off, len), g, m.slice(off, len), v.slice(off, len))
    };
    match task {
        Task::Weight { .. } => {
            if decay {
                // SAFETY: as above; read before the update takes the span.
                *reg = crate::network::sum_of_squares(unsafe { lp.w.view(off, len) });
            }
            step(lp.w, lp.dw, lp.w1, lp.w2, coeffs)
        }
        Task::Bias { .. } => step(lp.b, lp.db, lp.b1, lp.b2, coeffs.without_decay()),
        // γ and β, like biases, without weight decay.
        Task::Norm { .. } => {
            let gamma = step(lp.w, lp.dw, lp.w1, lp.w2, coeffs.without_decay());
            gamma & step(lp.b, lp.db, lp.b1, lp.b2, coeffs.without_decay())
        }
    }
}

/// Shard `s` of `count`'s rows of the batch: its input, targets and row weights, read in
/// place from a range, or gathered into the buffers (when `gather`; a later pass of the same
/// step reads what the first gathered).
///
/// # Safety
/// No other live reference may overlap the shard's rows of the buffers `raw` points to.
#[inline(always)]
unsafe fn shard_data<'a, T: Float>(
    raw: &Raw<T>,
    spec: &Spec,
    batch: Batch<'a, T>,
    (s, count): (usize, usize),
    gather: bool,
) -> (MatRef<'a, T>, Targets<'a, T>, Option<&'a [T]>) {
    let n = batch.rows.len();
    let (lo, hi) = shard_range(n, s, count);
    let m = hi - lo;
    let (d, k) = (spec.inputs(), spec.outputs());
    match batch.rows {
        Rows::Range(start, _) => {
            let (a, b) = (start + lo, start + hi);
            let t = match batch.y {
                Targets::Classes(c) => Targets::Classes(&c[a..b]),
                Targets::Values(v) => Targets::Values(v.row_block(a, b)),
            };
            (batch.x.row_block(a, b), t, batch.w.map(|w| &w[a..b]))
        }
        Rows::Picked(_) if !gather => {
            // SAFETY: the shard's own rows, gathered by the step's first pass.
            unsafe {
                let x = MatRef::new(raw.x.view(lo * d, m * d), m, d);
                let t = match batch.y {
                    Targets::Classes(_) => Targets::Classes(raw.classes.view(lo, m)),
                    Targets::Values(_) => {
                        Targets::Values(MatRef::new(raw.values.view(lo * k, m * k), m, k))
                    }
                };
                (x, t, batch.w.map(|_| raw.weights.view(lo, m)))
            }
        }
        Rows::Picked(idx) => {
            let idx = &idx[lo..hi];
            // SAFETY: the shard's own rows (the caller's guarantee).
            let x = unsafe { raw.x.slice(lo * d, m * d) };
            gather_rows(batch.x, idx, x);
            // Random rows of a large X come from memory, not cache: ask for the next batch's
            // share now, so that they arrive while this one computes.
            let next = batch.next;
            let (a, b) = shard_range(next.len(), s, count);
            prefetch_rows(batch.x, &next[a.min(next.len())..b.min(next.len())]);
            let t = match batch.y {
                Targets::Classes(c) => {
                    // SAFETY: as above.
                    let dst = unsafe { raw.classes.slice(lo, m) };
                    for (dst, &i) in dst.iter_mut().zip(idx) {
                        *dst = c[i];
                    }
                    Targets::Classes(&*dst)
                }
                Targets::Values(v) => {
                    // SAFETY: as above.
                    let dst = unsafe { raw.values.slice(lo * k, m * k) };
                    gather_rows(*v, idx, dst);
                    Targets::Values(MatRef::new(&*dst, m, k))
                }
            };
            let w = batch.w.map(|w| {
                // SAFETY: as above.
                let dst = unsafe { raw.weights.slice(lo, m) };
                for (dst, &i) in dst.iter_mut().zip(idx) {
                    *dst = w[i];
                }
                &*dst
            });
            (MatRef::new(&*x, m, d), t, w)
        }
    }
}

/// Shard `s` of `count` through the blocks `range` (training mode, batch statistics from
/// `stats`), from its rows of the batch when the range starts at block 0 (gathered then,
/// and checked for NaN and infinity into `finite` when given); returns the shard's targets
/// and row weights.
///
/// # Safety
/// As [`shard_data`] and [`forward_rows`]: the shard's rows are its own.
#[inline(always)]
unsafe fn forward_shard<'a, T: Float>(
    raw: &Raw<T>,
    spec: &Spec,
    params: &[ParamsMut<'_, T>],
    batch: Batch<'a, T>,
    (s, count, range): (usize, usize, std::ops::Range<usize>),
    stats: &[(Vec<f64>, Vec<f64>)],
    finite: Option<&PerItem<'_, bool>>,
) -> (Targets<'a, T>, Option<&'a [T]>) {
    let first = range.start == 0;
    let (lo, _) = shard_range(batch.rows.len(), s, count);
    // SAFETY: forwarded to the caller.
    unsafe {
        let (input, targets, weights) = shard_data(raw, spec, batch, (s, count), first);
        if let Some(finite) = finite {
            *finite.get(s) = x_finite(input);
        }
        let norming = Norming::Batch(stats);
        forward_rows(
            &raw.acts, spec, params, lo, input, range, batch.drop, norming,
        );
        (targets, weights)
    }
}

/// Whether a shard's rows of X are finite (they are in cache right after the gather: the
/// cheapest moment to look).
fn x_finite<T: Float>(input: MatRef<'_, T>) -> bool {
    let rows = input.as_row_major().expect("batch rows are row-major");
    crate::float::all_finite(rows)
}

/// Hints the CPU to bring rows `idx` of `src` into cache.
fn prefetch_rows<T: Float>(src: MatRef<'_, T>, idx: &[usize]) {
    #[cfg(target_arch = "x86_64")]
    for &i in idx {
        let row = src.row(i);
        let bytes = std::mem::size_of_val(row);
        let base = row.as_ptr().cast::<i8>();
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch only hints the cache; the address is inside `row`.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(base.add(off))
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (src, idx);
}

/// Copies the rows `idx` of `src` into the front of `dst`.
pub(crate) fn gather_rows<T: Float>(src: MatRef<'_, T>, idx: &[usize], dst: &mut [T]) {
    let d = src.cols();
    for (r, &i) in idx.iter().enumerate() {
        dst[r * d..(r + 1) * d].copy_from_slice(src.row(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::network::Hidden;
    use crate::optim::Optimizer;
    use crate::rng::Rng;
    use crate::team::Kind;

    /// Three Adam steps of a net with `hidden` layers of unequal widths, on gathered rows
    /// (`picked`, with row weights, some 0) or ranges, by a team of `helpers` helpers, with
    /// the updates fused into phase 2 or deferred after it.
    fn three_steps(
        helpers: usize,
        deferred: bool,
        (hidden, norm): (Hidden, bool),
        picked: bool,
    ) -> Vec<crate::network::Owned<f64>> {
        let spec = Spec::new(&[30, 50, 40, 3], hidden, crate::loss::Loss::Softmax)
            .expect("valid sizes")
            .with_batch_norm(norm);
        let mut rng = Rng::new(7);
        let mut params: Vec<crate::network::Owned<f64>> = spec.init_params(None, &mut rng).unwrap();
        let n = 900;
        let x: Vec<f64> = (0..n * 30).map(|_| rng.normal()).collect();
        let y: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
        let targets = Targets::Classes(&y);
        let order: Vec<usize> = (0..n).rev().collect();
        let sizes: Vec<(usize, usize)> = params
            .iter()
            .map(|p| (p.weight.len(), p.bias.len()))
            .collect();
        let adam = Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut optim = OptimState::new(adam, &sizes).unwrap();
        let gather = if picked { Gather::Classes } else { Gather::No };
        let weights: Vec<f64> = (0..n).map(|i| (i % 4) as f64 * 0.75).collect();
        let mut trainer = Trainer::new(&spec, 300, gather, picked).unwrap();
        trainer.deferred = deferred;
        let mut team = Team::new(Kind::Call, None);
        team.engage_beyond_budget(helpers);
        let mut pm: Vec<ParamsMut<'_, f64>> = params.iter_mut().map(|p| p.view_mut()).collect();
        for s in 0..3 {
            let batch = Batch {
                x: MatRef::new(&x, n, 30),
                y: &targets,
                w: picked.then_some(&weights[..]),
                drop: None,
                rows: if picked {
                    Rows::Picked(&order[s * 300..(s + 1) * 300])
                } else {
                    Rows::Range(s * 300, (s + 1) * 300)
                },
                next: &[],
            };
            let stepped = trainer.step(
                &team,
                &spec,
                &mut pm,
                batch,
                &mut optim,
                1e-2,
                |_| 1e-3,
                None,
                true,
            );
            assert!(matches!(stepped, Stepped::Loss { data, .. } if data.is_finite()));
        }
        drop(pm);
        params
    }

    /// Where two runs' parameters first differ, if they do.
    fn first_difference(
        a: &[crate::network::Owned<f64>],
        b: &[crate::network::Owned<f64>],
    ) -> Option<String> {
        for (l, (pa, pb)) in a.iter().zip(b).enumerate() {
            let parts = [
                ("weight", &pa.weight, &pb.weight),
                ("bias", &pa.bias, &pb.bias),
                ("state", &pa.state, &pb.state),
            ];
            for (name, x, y) in parts {
                if let Some(i) = x
                    .iter()
                    .zip(y)
                    .position(|(p, q)| p.to_bits() != q.to_bits())
                {
                    return Some(format!("layer {l} {name}[{i}]: {} vs {}", x[i], y[i]));
                }
            }
        }
        None
    }

    #[test]
    fn a_step_gives_the_same_bits_whoever_computes_it_and_however_it_updates() {
        // Maxout blocks of different widths share one scratch buffer: the riskiest layout.
        // And batch normalization, whose sums over the batch gather the shards' parts.
        let shapes = [
            ((Hidden::Maxout(2), false), true),
            ((Hidden::Activation(Activation::Tanh), false), false),
            ((Hidden::Activation(Activation::Relu), true), true),
            ((Hidden::Maxout(2), true), false),
        ];
        for (hidden, picked) in shapes {
            let reference = three_steps(0, false, hidden, picked);
            for (helpers, deferred) in [
                (0, false),
                (1, false),
                (3, false),
                (7, false),
                (0, true),
                (3, true),
            ] {
                let d =
                    first_difference(&three_steps(helpers, deferred, hidden, picked), &reference);
                assert_eq!(
                    d, None,
                    "{hidden:?}: {helpers} helpers, deferred {deferred}"
                );
            }
        }
    }

    #[test]
    fn no_item_of_a_huge_step_holds_more_than_its_share_of_work() {
        // A 60,000-row batch through 512-2048-2048-10: every shard and every weight block
        // stays near MAX_ITEM_FLOPS, so an interrupt waits for one small item only.
        let spec = Spec::new(
            &[512, 2048, 2048, 10],
            Hidden::Activation(Activation::Relu),
            crate::loss::Loss::Softmax,
        )
        .expect("valid sizes");
        let rows = 60_000;
        let per_row = row_flops(&spec);
        let count = shard_count(rows, per_row);
        for s in 0..count {
            let (lo, hi) = shard_range(rows, s, count);
            assert!((hi - lo) as f64 * per_row <= 1.01 * MAX_ITEM_FLOPS);
        }
        assert!(defers_updates(&spec, rows));
        for task in plan_tasks(&spec, rows) {
            assert!(2.0 * task_cost(&spec, task, rows) <= 1.01 * MAX_ITEM_FLOPS);
        }
        // The benchmark's shapes keep their cut and their fused updates.
        assert_eq!(shard_count(256, per_row), 2);
        assert!(!defers_updates(&spec, 256));
    }

    #[test]
    fn shards_cover_the_batch_and_depend_on_its_size_only() {
        for rows in [1, 15, 16, 31, 32, 64, 128, 255, 256, 1000, 5000] {
            let count = shard_count(rows, 1e3);
            assert!((1..=MAX_SHARDS).contains(&count));
            let mut next = 0;
            for s in 0..count {
                let (lo, hi) = shard_range(rows, s, count);
                assert_eq!(lo, next);
                assert!(hi > lo);
                next = hi;
            }
            assert_eq!(next, rows);
        }
    }
}
