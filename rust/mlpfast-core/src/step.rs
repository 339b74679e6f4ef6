//! One training step, in two parallel phases.
//!
//! **Phase 1, per shard.** The batch's rows are cut into a few contiguous shards. Each shard,
//! independently, gathers its rows, runs the forward pass through every block, the loss, and
//! the backward pass down to `g_l = dL/dz_l`, the gradient at every block's pre-activation
//! (per piece for maxout). Only the weights are read, so the shards need no synchronization.
//!
//! **Phase 2, per task.** A task is a block of rows of one weight matrix (or one layer's
//! biases). It sums its gradient over the shards, `dW[rows] = Σ_s a_s[:, rows]ᵀ · g_s`, in
//! shard order, and applies the optimizer update to those rows at once, while they are in
//! cache; it also adds up ‖W[rows]‖² before the update for the weight-decay term of the loss.
//!
//! The cut into shards and tasks depends on the batch and layer sizes only, never on the
//! number of threads; so every sum is taken in the same order and training gives the same bits
//! on one thread as on many.

use crate::activation::Activation;
use crate::float::Float;
use crate::gemm::matmul;
use crate::linear::affine_forward;
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
const TASK_WORK: usize = 1 << 16;
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

/// The most rows one shard gets in any batch of at most `batch` rows (the last batch of an
/// epoch may be smaller, and cut differently).
fn shard_capacity(batch: usize) -> usize {
    // rows.div_ceil(shard_count(rows)) only drops where the shard count goes up, so its
    // largest value is at `batch` or just below one of those steps.
    let below_steps = (1..=MAX_SHARDS).map(|c| if c == 1 { 15 } else { 128 * (c + 1) - 1 });
    std::iter::once(batch)
        .chain(below_steps.map(|r| r.min(batch)))
        .map(|r| r.div_ceil(shard_count(r).max(1)))
        .max()
        .unwrap_or(batch)
        .max(1)
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
    /// These rows, gathered into the shards' buffers.
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

/// One step's data: the whole training set and which of its rows the batch holds.
#[derive(Clone, Copy)]
pub(crate) struct Batch<'a, T> {
    pub x: MatRef<'a, T>,
    pub y: &'a Targets<'a, T>,
    pub rows: Rows<'a>,
}

/// Every block's output and gradients for a few rows: what one shard works in, and what
/// inference uses for one chunk of rows.
pub(crate) struct Buffers<T> {
    capacity: usize,
    acts: Vec<Vec<T>>,
    grads: Vec<Vec<T>>,
    pieces: Vec<Vec<T>>,
    winners: Vec<Vec<u8>>,
    dx: Vec<T>,
}

impl<T: Float> Buffers<T> {
    /// Buffers for up to `capacity` rows; gradient buffers only when `training`.
    pub(crate) fn new(spec: &Spec, capacity: usize, training: bool) -> Self {
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
        }
    }

    /// Forward pass of `x` (at most `capacity` rows) through every block, keeping each output.
    pub(crate) fn forward(&mut self, spec: &Spec, params: &[impl Params<T>], x: MatRef<'_, T>) {
        let n = x.rows();
        assert!(
            n <= self.capacity,
            "{n} rows in buffers for {}",
            self.capacity
        );
        for (l, (block, p)) in spec.blocks().iter().zip(params).enumerate() {
            let (done, rest) = self.acts.split_at_mut(l);
            let input = match l {
                0 => x,
                _ => MatRef::new(&done[l - 1][..n * block.inputs()], n, block.inputs()),
            };
            let out = &mut rest[0][..n * block.outputs()];
            match *block {
                Block::Dense { act, .. } => affine_forward(input, p.weight(), p.bias(), act, out),
                Block::Maxout {
                    pieces, outputs, ..
                } => maxout_forward(
                    input,
                    p.weight(),
                    p.bias(),
                    pieces,
                    &mut self.pieces[l][..pieces * n * outputs],
                    out,
                    &mut self.winners[l][..n * outputs],
                ),
            }
        }
    }

    /// The scores of the last forward pass of `n` rows.
    pub(crate) fn scores(&self, spec: &Spec, n: usize) -> MatRef<'_, T> {
        let k = spec.outputs();
        MatRef::new(&self.acts[self.acts.len() - 1][..n * k], n, k)
    }

    /// Output of block `l` for the last `n` rows.
    fn act(&self, l: usize, n: usize, width: usize) -> MatRef<'_, T> {
        MatRef::new(&self.acts[l][..n * width], n, width)
    }

    /// Gradient at piece `p` of block `l`'s pre-activation, for `n` rows.
    fn grad(&self, l: usize, p: usize, n: usize, width: usize) -> MatRef<'_, T> {
        MatRef::new(&self.grads[l][p * n * width..(p + 1) * n * width], n, width)
    }

    /// Loss of the last forward pass against `targets`, summed over its `n` rows; `scale ·` its
    /// gradient goes to the last block's gradient buffer.
    fn loss(&mut self, spec: &Spec, targets: &Targets<'_, T>, n: usize, scale: T) -> f64 {
        let (last, k) = (self.acts.len() - 1, spec.outputs());
        let scores = MatRef::new(&self.acts[last][..n * k], n, k);
        let grad = Some(&mut self.grads[last][..n * k]);
        spec.loss().sum_rows(scores, targets, grad, scale)
    }

    /// From the last block's gradient down: `g_{l-1}` from `g_l` for every block, for `n` rows.
    fn backward(&mut self, spec: &Spec, params: &[impl Params<T>], n: usize) {
        let blocks = spec.blocks();
        for l in (1..blocks.len()).rev() {
            let (block, prev) = (blocks[l], blocks[l - 1]);
            let (n_in, n_out) = (block.inputs(), block.outputs());
            let (lower, upper) = self.grads.split_at_mut(l);
            let g = &upper[0];
            // dL/da_{l-1} = Σ_p g_{l,p} · W_{l,p}ᵀ, straight into g_{l-1} for a dense block
            // (then scaled by f'), via scratch for maxout (then routed to the winning pieces).
            let dst = match prev {
                Block::Dense { .. } => &mut lower[l - 1][..n * n_in],
                Block::Maxout { .. } => &mut self.dx[..n * n_in],
            };
            let w = params[l].weight();
            for p in 0..block.bias_len() / n_out {
                let gp = MatRef::new(&g[p * n * n_out..(p + 1) * n * n_out], n, n_out);
                let wp = MatRef::new(&w[p * n_in * n_out..(p + 1) * n_in * n_out], n_in, n_out);
                matmul(dst, gp, wp.t(), p > 0);
            }
            match prev {
                Block::Dense { act, .. } => {
                    if act != Activation::Identity {
                        let a = &self.acts[l - 1][..n * n_in];
                        act.backward_from_output_inplace(a, &mut lower[l - 1][..n * n_in]);
                    }
                }
                Block::Maxout { pieces, .. } => {
                    let winners = &self.winners[l - 1][..n * n_in];
                    let gp = &mut lower[l - 1][..pieces * n * n_in];
                    for (p, gp) in gp.chunks_exact_mut(n * n_in).enumerate() {
                        for ((d, &v), &w) in gp.iter_mut().zip(&self.dx[..n * n_in]).zip(winners) {
                            *d = if w as usize == p { v } else { T::ZERO };
                        }
                    }
                }
            }
        }
    }
}

/// A shard: its gathered rows and targets, and its buffers.
struct Shard<T> {
    x: Vec<T>,
    classes: Vec<u32>,
    values: Vec<T>,
    bufs: Buffers<T>,
    rows: usize,
    loss: f64,
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

/// A raw pointer that may cross threads: phase 2 hands every task a disjoint part of the
/// parameters, gradients and optimizer buffers through these.
#[derive(Clone, Copy)]
struct Ptr<T>(*mut T, usize);
// SAFETY: a Ptr is only turned into slices by `slice`, whose callers guarantee that no two
// threads get overlapping ranges (see `Trainer::phase2`).
unsafe impl<T: Send> Send for Ptr<T> {}
unsafe impl<T: Send> Sync for Ptr<T> {}

impl<T> Ptr<T> {
    fn of(v: &mut [T]) -> Self {
        Ptr(v.as_mut_ptr(), v.len())
    }

    /// Elements `off..off + len`, or an empty slice when the buffer is empty (an optimizer
    /// that keeps no state).
    ///
    /// # Safety
    /// No other live reference may overlap that range.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice<'a>(self, off: usize, len: usize) -> &'a mut [T] {
        if self.1 == 0 {
            return &mut [];
        }
        assert!(
            off + len <= self.1,
            "task range {off}+{len} beyond {}",
            self.1
        );
        // SAFETY: in bounds (checked above); exclusive by the caller's guarantee.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(off), len) }
    }
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

/// Everything one training run allocates up front: shards, gradient buffers, the task list.
pub(crate) struct Trainer<T> {
    shards: Vec<Shard<T>>,
    dw: Vec<Vec<T>>,
    db: Vec<Vec<T>>,
    tasks: Vec<Task>,
    reg: Vec<f64>,
    ptrs: Vec<LayerPtrs<T>>,
}

impl<T: Float> Trainer<T> {
    /// Buffers for batches of up to `batch` rows of `spec`; `gather` when batches are picked
    /// rows (shuffled) rather than ranges read in place.
    pub(crate) fn new(spec: &Spec, batch: usize, gather: bool, classes: bool) -> Self {
        let count = shard_count(batch);
        let cap = shard_capacity(batch);
        let (d, k) = (spec.inputs(), spec.outputs());
        let shards = (0..count)
            .map(|_| Shard {
                x: vec![T::ZERO; if gather { cap * d } else { 0 }],
                classes: vec![0; if gather && classes { cap } else { 0 }],
                values: vec![T::ZERO; if gather && !classes { cap * k } else { 0 }],
                bufs: Buffers::new(spec, cap, true),
                rows: 0,
                loss: 0.0,
            })
            .collect();
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
            shards,
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
    /// plus ½λ‖W‖² (the weights before the update) when `weight_decay` λ > 0.
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
    ) -> f64 {
        let n = batch.rows.len();
        let count = shard_count(n);
        let norm = spec.loss().normalizer(n, spec.outputs()) as f64;
        self.phase1(team, spec, params, batch, count, T::from_f64(1.0 / norm));
        let data_loss: f64 = self.shards[..count].iter().map(|s| s.loss).sum::<f64>() / norm;
        let coeffs = optim.begin_step(lr, weight_decay);
        self.phase2(
            team,
            spec,
            params,
            batch,
            count,
            optim,
            coeffs,
            weight_decay > 0.0,
        );
        let reg = if weight_decay > 0.0 {
            0.5 * weight_decay * self.reg.iter().sum::<f64>()
        } else {
            0.0
        };
        data_loss + reg
    }

    fn phase1(
        &mut self,
        team: &Team<'_>,
        spec: &Spec,
        params: &[ParamsMut<'_, T>],
        batch: Batch<'_, T>,
        count: usize,
        scale: T,
    ) {
        let n = batch.rows.len();
        let (d, k) = (spec.inputs(), spec.outputs());
        let shards = PerItem::new(&mut self.shards[..count]);
        team.run(count, &|s| {
            // SAFETY: the team runs each index once.
            let shard = unsafe { shards.get(s) };
            let (lo, hi) = shard_range(n, s, count);
            let rows = hi - lo;
            shard.rows = rows;
            let Shard {
                x,
                classes,
                values,
                bufs,
                loss,
                ..
            } = shard;
            let (input, targets) = match batch.rows {
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
                    gather_rows(batch.x, idx, x);
                    let t = match batch.y {
                        Targets::Classes(c) => {
                            for (dst, &i) in classes.iter_mut().zip(idx) {
                                *dst = c[i];
                            }
                            Targets::Classes(&classes[..rows])
                        }
                        Targets::Values(v) => {
                            gather_rows(*v, idx, values);
                            Targets::Values(MatRef::new(&values[..rows * k], rows, k))
                        }
                    };
                    (MatRef::new(&x[..rows * d], rows, d), t)
                }
            };
            bufs.forward(spec, params, input);
            *loss = bufs.loss(spec, &targets, rows, scale);
            bufs.backward(spec, params, rows);
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn phase2(
        &mut self,
        team: &Team<'_>,
        spec: &Spec,
        params: &mut [ParamsMut<'_, T>],
        batch: Batch<'_, T>,
        count: usize,
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
        let shards = &self.shards[..count];
        let ptrs = &self.ptrs;
        let d = spec.inputs();
        // The input rows of shard s to block `layer`.
        let input = |s: usize, layer: usize| -> MatRef<'_, T> {
            let sh = &shards[s];
            match (layer, batch.rows) {
                (0, Rows::Range(start, _)) => {
                    let (lo, hi) = shard_range(batch.rows.len(), s, count);
                    batch.x.row_block(start + lo, start + hi)
                }
                (0, Rows::Picked(_)) => MatRef::new(&sh.x[..sh.rows * d], sh.rows, d),
                _ => {
                    let width = spec.blocks()[layer].inputs();
                    sh.bufs.act(layer - 1, sh.rows, width)
                }
            }
        };
        let tasks = &self.tasks;
        let regs = PerItem::new(&mut self.reg);
        team.run(tasks.len(), &|i| {
            let task = &tasks[i];
            // SAFETY: the team runs each index once.
            let reg = unsafe { regs.get(i) };
            *reg = 0.0;
            match *task {
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
                    // SAFETY: the weight tasks of a block partition its (piece, row)
                    // ranges, so no two tasks touch the same elements of w, dw or the
                    // optimizer buffers; phase 1, the only reader of the weights, is over.
                    let (w, dw, m, v) = unsafe {
                        (
                            lp.w.slice(off, len),
                            lp.dw.slice(off, len),
                            lp.w1.slice(off, len),
                            lp.w2.slice(off, len),
                        )
                    };
                    for (s, sh) in shards.iter().enumerate() {
                        let a = input(s, layer).col_block(r0, r1);
                        let g = sh.bufs.grad(layer, piece, sh.rows, n_out);
                        matmul(dw, a.t(), g, s > 0);
                    }
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
                    db.fill(T::ZERO);
                    for (p, dbp) in db.chunks_exact_mut(n_out).enumerate() {
                        for sh in shards {
                            let g = sh.bufs.grad(layer, p, sh.rows, n_out);
                            for i in 0..g.rows() {
                                dbp.iter_mut().zip(g.row(i)).for_each(|(o, &v)| *o += v);
                            }
                        }
                    }
                    coeffs.without_decay().apply(bias, db, m, v);
                }
            }
        });
    }
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
    fn shard_capacity_holds_every_smaller_batch() {
        for batch in [
            1usize, 8, 15, 16, 17, 31, 64, 200, 383, 384, 1000, 1151, 1152, 5000,
        ] {
            let most = (1..=batch)
                .map(|r| r.div_ceil(shard_count(r)))
                .max()
                .unwrap();
            assert_eq!(shard_capacity(batch), most, "batch {batch}");
        }
    }

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
