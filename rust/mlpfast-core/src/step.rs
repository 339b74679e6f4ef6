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
//! The cut into shards and tasks depends on the batch and layer sizes only, never on the
//! number of threads; so every sum is taken in the same order and training gives the same bits
//! on one thread as on many.

use crate::activation::Activation;
use crate::float::Float;
use crate::gemm::matmul;
use crate::linear::{affine_forward, column_sums};
use crate::loss::Targets;
use crate::matrix::MatRef;
use crate::maxout::maxout_forward;
use crate::network::{Block, Params, ParamsMut, Spec};
use crate::optim::{Coeffs, OptimState};
use crate::team::{PerItem, Team};

/// Most shards a batch is cut into.
const MAX_SHARDS: usize = 8;
/// A weight-gradient task holds at least about this many multiply-adds (when its matrix has
/// that many), so that handing it to a thread pays.
const TASK_WORK: usize = 1 << 17;
/// A weight matrix is cut into at most this many row blocks.
const MAX_BLOCKS: usize = 16;

/// Number of shards for a batch of `rows` rows: two from 16 rows on (both cores busy on small
/// batches), one more per 128 rows beyond 256.
pub(crate) fn shard_count(rows: usize) -> usize {
    if rows < 16 {
        1
    } else {
        (rows / 128).clamp(2, MAX_SHARDS)
    }
}

/// Rows `lo..hi` of shard `s` of `count` in a batch of `rows`.
fn shard_range(rows: usize, s: usize, count: usize) -> (usize, usize) {
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

/// One step's data: the whole training set, which of its rows the batch holds, and which
/// rows the next batch will gather (to prefetch them).
#[derive(Clone, Copy)]
pub(crate) struct Batch<'a, T> {
    pub x: MatRef<'a, T>,
    pub y: &'a Targets<'a, T>,
    pub rows: Rows<'a>,
    pub next: &'a [usize],
}

/// A raw pointer to a buffer that may cross threads: shards and tasks each turn a disjoint
/// range of it into a slice.
#[derive(Clone, Copy)]
struct Ptr<T>(*mut T, usize);
// SAFETY: a Ptr is only turned into slices by `slice`, whose callers guarantee that no two
// threads get overlapping ranges.
unsafe impl<T: Send> Send for Ptr<T> {}
unsafe impl<T: Send> Sync for Ptr<T> {}

impl<T> Ptr<T> {
    fn of(v: &mut [T]) -> Self {
        Ptr(v.as_mut_ptr(), v.len())
    }

    /// Elements `off..off + len` (an empty slice when the buffer is empty: an optimizer that
    /// keeps no state).
    ///
    /// # Safety
    /// No other live reference may overlap that range.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice<'a>(self, off: usize, len: usize) -> &'a mut [T] {
        if self.1 == 0 {
            return &mut [];
        }
        assert!(off + len <= self.1, "range {off}+{len} beyond {}", self.1);
        // SAFETY: in bounds (checked above); exclusive by the caller's guarantee.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(off), len) }
    }

    /// Elements `off..off + len`, to read.
    ///
    /// # Safety
    /// No live mutable reference may overlap that range.
    unsafe fn view<'a>(self, off: usize, len: usize) -> &'a [T] {
        if self.1 == 0 {
            return &[];
        }
        assert!(off + len <= self.1, "range {off}+{len} beyond {}", self.1);
        // SAFETY: in bounds (checked above); not written meanwhile by the caller's guarantee.
        unsafe { std::slice::from_raw_parts(self.0.add(off), len) }
    }
}

/// Full-batch buffers: every block's output and gradients for up to `capacity` rows, and the
/// gathered batch. Shards fill row ranges of them; the weight gradients read them whole.
pub(crate) struct Buffers<T> {
    capacity: usize,
    acts: Vec<Vec<T>>,
    grads: Vec<Vec<T>>,
    pieces: Vec<Vec<T>>,
    winners: Vec<Vec<u8>>,
    /// Scratch for dL/da at a maxout block's output, `dx_stride` per row: every maxout block
    /// uses it, so a shard's rows sit at a stride that fits the widest.
    dx: Vec<T>,
    dx_stride: usize,
    x: Vec<T>,
    classes: Vec<u32>,
    values: Vec<T>,
}

/// Pointers into a [`Buffers`], for shards that fill disjoint row ranges at once.
struct Raw<T> {
    acts: Vec<Ptr<T>>,
    grads: Vec<Ptr<T>>,
    pieces: Vec<Ptr<T>>,
    winners: Vec<Ptr<u8>>,
    dx: Ptr<T>,
    dx_stride: usize,
    x: Ptr<T>,
    classes: Ptr<u32>,
    values: Ptr<T>,
}

/// What a batch needs gathered, when it is gathered at all.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gather {
    /// Nothing: batches are read in place (or this is inference).
    No,
    /// Rows of X and class labels.
    Classes,
    /// Rows of X and of the target matrix.
    Values,
}

impl<T: Float> Buffers<T> {
    /// Buffers for up to `capacity` rows; gradient buffers only when `training`.
    pub(crate) fn new(spec: &Spec, capacity: usize, training: bool, gather: Gather) -> Self {
        let blocks = spec.blocks();
        let per_block = |f: &dyn Fn(&Block) -> usize| -> Vec<Vec<T>> {
            blocks.iter().map(|b| vec![T::ZERO; f(b)]).collect()
        };
        let maxout_width = blocks
            .iter()
            .filter(|b| matches!(b, Block::Maxout { .. }))
            .map(|b| b.inputs().max(b.outputs()))
            .max()
            .unwrap_or(0);
        let (d, k) = (spec.inputs(), spec.outputs());
        Buffers {
            capacity,
            acts: per_block(&|b| capacity * b.outputs()),
            grads: if training {
                per_block(&|b| capacity * b.bias_len())
            } else {
                Vec::new()
            },
            pieces: per_block(&|b| match b {
                Block::Maxout { .. } => capacity * b.bias_len(),
                Block::Dense { .. } => 0,
            }),
            winners: blocks
                .iter()
                .map(|b| match b {
                    Block::Maxout { outputs, .. } => vec![0u8; capacity * outputs],
                    Block::Dense { .. } => Vec::new(),
                })
                .collect(),
            dx: vec![T::ZERO; if training { capacity * maxout_width } else { 0 }],
            dx_stride: maxout_width,
            x: vec![
                T::ZERO;
                if gather == Gather::No {
                    0
                } else {
                    capacity * d
                }
            ],
            classes: vec![
                0;
                if gather == Gather::Classes {
                    capacity
                } else {
                    0
                }
            ],
            values: vec![
                T::ZERO;
                if gather == Gather::Values {
                    capacity * k
                } else {
                    0
                }
            ],
        }
    }

    /// Pointers to every buffer. They stay valid as long as `self` lives: no buffer is ever
    /// resized.
    fn raw(&mut self) -> Raw<T> {
        Raw {
            acts: self.acts.iter_mut().map(|v| Ptr::of(v)).collect(),
            grads: self.grads.iter_mut().map(|v| Ptr::of(v)).collect(),
            pieces: self.pieces.iter_mut().map(|v| Ptr::of(v)).collect(),
            winners: self.winners.iter_mut().map(|v| Ptr::of(v)).collect(),
            dx: Ptr::of(&mut self.dx),
            dx_stride: self.dx_stride,
            x: Ptr::of(&mut self.x),
            classes: Ptr::of(&mut self.classes),
            values: Ptr::of(&mut self.values),
        }
    }

    /// Forward pass of `x` (at most `capacity` rows) through every block, keeping each output.
    pub(crate) fn forward(&mut self, spec: &Spec, params: &[impl Params<T>], x: MatRef<'_, T>) {
        assert!(
            x.rows() <= self.capacity,
            "{} rows in buffers for {}",
            x.rows(),
            self.capacity
        );
        let raw = self.raw();
        // SAFETY: one pass over all rows, with `self` borrowed exclusively meanwhile.
        unsafe { forward_rows(&raw, spec, params, 0, x) };
    }

    /// The scores of the last forward pass of `n` rows.
    pub(crate) fn scores(&self, spec: &Spec, n: usize) -> MatRef<'_, T> {
        let k = spec.outputs();
        MatRef::new(&self.acts[self.acts.len() - 1][..n * k], n, k)
    }
}

impl<T> Raw<T> {
    /// Output of block `l` for the `n` rows of the batch.
    ///
    /// # Safety
    /// Nothing may write those rows while the view lives.
    unsafe fn act<'a>(&self, l: usize, n: usize, width: usize) -> MatRef<'a, T>
    where
        T: Copy,
    {
        // SAFETY: forwarded to the caller.
        MatRef::new(unsafe { self.acts[l].view(0, n * width) }, n, width)
    }

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

/// Rows `lo..lo + input.rows()` of a batch: every block's output from `input`.
///
/// # Safety
/// No other live reference may overlap those rows of the buffers `raw` points to.
unsafe fn forward_rows<T: Float>(
    raw: &Raw<T>,
    spec: &Spec,
    params: &[impl Params<T>],
    lo: usize,
    input: MatRef<'_, T>,
) {
    let m = input.rows();
    for (l, (block, p)) in spec.blocks().iter().zip(params).enumerate() {
        let (n_in, n_out) = (block.inputs(), block.outputs());
        // SAFETY (all slices): rows lo..lo+m of this pass's own buffers, exclusive by the
        // caller's guarantee; the previous block's output was written just before.
        let prev = match l {
            0 => input,
            _ => MatRef::new(
                unsafe { raw.acts[l - 1].slice(lo * n_in, m * n_in) },
                m,
                n_in,
            ),
        };
        let out = unsafe { raw.acts[l].slice(lo * n_out, m * n_out) };
        match *block {
            Block::Dense { act, .. } => affine_forward(prev, p.weight(), p.bias(), act, out),
            Block::Maxout { pieces, .. } => maxout_forward(
                prev,
                p.weight(),
                p.bias(),
                pieces,
                unsafe { raw.pieces[l].slice(lo * pieces * n_out, m * pieces * n_out) },
                out,
                unsafe { raw.winners[l].slice(lo * n_out, m * n_out) },
            ),
        }
    }
}

/// Rows `lo..hi` of a batch of `n` after their forward pass: the loss (summed over the rows)
/// and, from `scale ·` its gradient down, `g_l` for every block.
///
/// # Safety
/// No other live reference may overlap those rows of the buffers `raw` points to.
unsafe fn backward_rows<T: Float>(
    raw: &Raw<T>,
    spec: &Spec,
    params: &[impl Params<T>],
    (n, lo, hi): (usize, usize, usize),
    targets: &Targets<'_, T>,
    scale: T,
) -> f64 {
    let m = hi - lo;
    let blocks = spec.blocks();
    let last = blocks.len() - 1;
    let k = spec.outputs();
    // SAFETY (all slices below): rows lo..hi of this shard's own parts of the buffers.
    let loss = unsafe {
        let scores = MatRef::new(raw.acts[last].slice(lo * k, m * k), m, k);
        let grad = raw.grads[last].slice(lo * k, m * k);
        spec.loss().sum_rows(scores, targets, Some(grad), scale)
    };
    for l in (1..blocks.len()).rev() {
        let (block, prev) = (blocks[l], blocks[l - 1]);
        let (n_in, n_out) = (block.inputs(), block.outputs());
        // dL/da_{l-1} = Σ_p g_{l,p} · W_{l,p}ᵀ, straight into g_{l-1} for a dense block (then
        // scaled by f'), via scratch for maxout (then routed to the winning pieces).
        let dst = unsafe {
            match prev {
                Block::Dense { .. } => raw.grads[l - 1].slice(lo * n_in, m * n_in),
                // Rows lo..hi at the widest maxout's stride: shards never overlap, whatever
                // this block's width.
                Block::Maxout { .. } => raw.dx.slice(lo * raw.dx_stride, m * n_in),
            }
        };
        let w = params[l].weight();
        for p in 0..block.bias_len() / n_out {
            let gp = unsafe { raw.grads[l].slice(p * n * n_out + lo * n_out, m * n_out) };
            let wp = MatRef::new(&w[p * n_in * n_out..(p + 1) * n_in * n_out], n_in, n_out);
            matmul(dst, MatRef::new(gp, m, n_out), wp.t(), p > 0);
        }
        let a = unsafe { &*raw.acts[l - 1].slice(lo * n_in, m * n_in) };
        match prev {
            Block::Dense { act, .. } => {
                if act != Activation::Identity {
                    act.backward_from_output_inplace(a, dst);
                }
            }
            Block::Maxout { pieces, .. } => {
                let winners = unsafe { &*raw.winners[l - 1].slice(lo * n_in, m * n_in) };
                for p in 0..pieces {
                    let gp = unsafe { raw.grads[l - 1].slice(p * n * n_in + lo * n_in, m * n_in) };
                    for ((d, &v), &w) in gp.iter_mut().zip(&*dst).zip(winners) {
                        *d = v.keep_if(w as usize == p);
                    }
                }
            }
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
    ptrs: Vec<LayerPtrs<T>>,
}

impl<T: Float> Trainer<T> {
    /// Buffers for batches of up to `batch` rows of `spec`; `gather` says what a shuffled
    /// batch copies (nothing when batches are ranges read in place).
    pub(crate) fn new(spec: &Spec, batch: usize, gather: Gather) -> Self {
        let mut bufs = Buffers::new(spec, batch, true, gather);
        let raw = bufs.raw();
        let mut tasks = Vec::new();
        for (layer, b) in spec.blocks().iter().enumerate() {
            let (n_in, n_out) = (b.inputs(), b.outputs());
            let work = n_in * n_out * batch;
            let blocks = (work / TASK_WORK).clamp(1, MAX_BLOCKS).min(n_in);
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
        Trainer {
            bufs,
            raw,
            losses: vec![0.0; MAX_SHARDS],
            finite: vec![true; MAX_SHARDS],
            dw: spec
                .blocks()
                .iter()
                .map(|b| vec![T::ZERO; b.weight_len()])
                .collect(),
            db: spec
                .blocks()
                .iter()
                .map(|b| vec![T::ZERO; b.bias_len()])
                .collect(),
            reg: vec![0.0; tasks.len()],
            tasks,
            ptrs: Vec::with_capacity(spec.blocks().len()),
        }
    }

    /// One step on `batch`: forward, loss, backward, update. Returns the batch's mean loss,
    /// plus ½λ‖W‖² (the weights before the update) when `weight_decay` λ > 0; or, when
    /// `check_x` and the batch's rows of X hold NaN or infinity, `None` before any update.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &mut self,
        team: &Team<'_>,
        spec: &Spec,
        params: &mut [ParamsMut<'_, T>],
        batch: Batch<'_, T>,
        optim: &mut OptimState<T>,
        lr: f64,
        weight_decay: f64,
        check_x: bool,
    ) -> Option<f64> {
        let n = batch.rows.len();
        assert!(
            n <= self.bufs.capacity,
            "batch of {n} in buffers for {}",
            self.bufs.capacity
        );
        let count = shard_count(n);
        let norm = spec.loss().normalizer(n, spec.outputs()) as f64;
        self.phase1(
            team,
            spec,
            params,
            batch,
            count,
            T::from_f64(1.0 / norm),
            check_x,
        );
        if check_x && !self.finite[..count].iter().all(|&f| f) {
            return None;
        }
        let data_loss: f64 = self.losses[..count].iter().sum::<f64>() / norm;
        let coeffs = optim.begin_step(lr, weight_decay);
        self.phase2(team, spec, params, batch, optim, coeffs, weight_decay > 0.0);
        let reg = if weight_decay > 0.0 {
            0.5 * weight_decay * self.reg.iter().sum::<f64>()
        } else {
            0.0
        };
        Some(data_loss + reg)
    }

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
    ) {
        let n = batch.rows.len();
        let (d, k) = (spec.inputs(), spec.outputs());
        let raw = &self.raw;
        let losses = PerItem::new(&mut self.losses[..count]);
        let finite = PerItem::new(&mut self.finite[..count]);
        team.run(count, &|s| {
            let (lo, hi) = shard_range(n, s, count);
            let m = hi - lo;
            // SAFETY: shard s alone owns rows lo..hi of every buffer, and the team runs each
            // index once; `self` is borrowed exclusively for the whole phase.
            let (input, targets) = unsafe {
                match batch.rows {
                    Rows::Range(start, _) => {
                        let (a, b) = (start + lo, start + hi);
                        let t = match batch.y {
                            Targets::Classes(c) => Targets::Classes(&c[a..b]),
                            Targets::Values(v) => Targets::Values(v.row_block(a, b)),
                        };
                        (batch.x.row_block(a, b), t)
                    }
                    Rows::Picked(idx) => {
                        let idx = &idx[lo..hi];
                        let x = raw.x.slice(lo * d, m * d);
                        gather_rows(batch.x, idx, x);
                        // Random rows of a large X come from memory, not cache: ask for the next
                        // batch's share now, so that they arrive while this one computes.
                        let next = batch.next;
                        let (a, b) = shard_range(next.len(), s, count);
                        prefetch_rows(batch.x, &next[a.min(next.len())..b.min(next.len())]);
                        let t = match batch.y {
                            Targets::Classes(c) => {
                                let dst = raw.classes.slice(lo, m);
                                for (dst, &i) in dst.iter_mut().zip(idx) {
                                    *dst = c[i];
                                }
                                Targets::Classes(&*dst)
                            }
                            Targets::Values(v) => {
                                let dst = raw.values.slice(lo * k, m * k);
                                gather_rows(*v, idx, dst);
                                Targets::Values(MatRef::new(&*dst, m, k))
                            }
                        };
                        (MatRef::new(&*x, m, d), t)
                    }
                }
            };
            if check_x {
                // The shard's rows are in cache right now: the cheapest moment to look.
                let rows = input.as_row_major().expect("batch rows are row-major");
                // SAFETY: the team runs each index once.
                unsafe { *finite.get(s) = crate::float::all_finite(rows) };
            }
            // SAFETY: as above.
            let loss = unsafe {
                forward_rows(raw, spec, params, lo, input);
                backward_rows(raw, spec, params, (n, lo, hi), &targets, scale)
            };
            // SAFETY: the team runs each index once.
            unsafe { *losses.get(s) = loss };
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn phase2(
        &mut self,
        team: &Team<'_>,
        spec: &Spec,
        params: &mut [ParamsMut<'_, T>],
        batch: Batch<'_, T>,
        optim: &mut OptimState<T>,
        coeffs: Coeffs<T>,
        decay: bool,
    ) {
        self.ptrs.clear();
        for (l, p) in params.iter_mut().enumerate() {
            let (w1, w2) = optim.buffers(2 * l);
            let (w1, w2) = (Ptr::of(w1), Ptr::of(w2));
            let (b1, b2) = optim.buffers(2 * l + 1);
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
                _ => unsafe { raw.act(layer - 1, n, spec.blocks()[layer].inputs()) },
            }
        };
        let grad = |layer: usize, piece: usize, width: usize| -> MatRef<'_, T> {
            unsafe { raw.grad(layer, piece, n, width) }
        };
        let tasks = &self.tasks;
        let regs = PerItem::new(&mut self.reg);
        team.run(tasks.len(), &|i| {
            // SAFETY: the team runs each index once.
            let reg = unsafe { regs.get(i) };
            *reg = 0.0;
            match tasks[i] {
                Task::Weight {
                    layer,
                    piece,
                    r0,
                    r1,
                } => {
                    let b = spec.blocks()[layer];
                    let (n_in, n_out) = (b.inputs(), b.outputs());
                    let off = piece * n_in * n_out + r0 * n_out;
                    let len = (r1 - r0) * n_out;
                    let lp = ptrs[layer];
                    // SAFETY: the weight tasks of a block partition its (piece, row) ranges, so
                    // no two tasks touch the same elements of w, dw or the optimizer buffers;
                    // phase 1, the only reader of the weights, is over.
                    let (w, dw, m, v) = unsafe {
                        (
                            lp.w.slice(off, len),
                            lp.dw.slice(off, len),
                            lp.w1.slice(off, len),
                            lp.w2.slice(off, len),
                        )
                    };
                    let a = input(layer).col_block(r0, r1);
                    matmul(dw, a.t(), grad(layer, piece, n_out), false);
                    if decay {
                        *reg = w.iter().map(|&v| (v * v).to_f64()).sum();
                    }
                    coeffs.apply(w, dw, m, v);
                }
                Task::Bias { layer } => {
                    let b = spec.blocks()[layer];
                    let (len, n_out) = (b.bias_len(), b.outputs());
                    let lp = ptrs[layer];
                    // SAFETY: one bias task per block owns all its biases.
                    let (bias, db, m, v) = unsafe {
                        (
                            lp.b.slice(0, len),
                            lp.db.slice(0, len),
                            lp.b1.slice(0, len),
                            lp.b2.slice(0, len),
                        )
                    };
                    for (p, dbp) in db.chunks_exact_mut(n_out).enumerate() {
                        column_sums(grad(layer, p, n_out), dbp);
                    }
                    coeffs.without_decay().apply(bias, db, m, v);
                }
            }
        });
    }
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

    #[test]
    fn shards_cover_the_batch_and_depend_on_its_size_only() {
        for rows in [1, 15, 16, 31, 32, 64, 128, 255, 256, 1000, 5000] {
            let count = shard_count(rows);
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
