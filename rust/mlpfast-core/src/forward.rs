//! The forward pass through a network's blocks, and inference on top of it.
//!
//! [`Acts`] holds every block's output for up to `capacity` rows (and, for maxout blocks,
//! every piece's pre-activation and the winning piece per unit, which backward needs).
//! [`forward_rows`] fills a row range of them; a training step's shards each fill their own
//! range at once (see `step`), and inference fills them chunk by chunk:
//!
//! ```text
//! a_0 = x,   a_l = f_l(a_{l-1} · W_l + b_l)   (maxout: a_l = max_p(a_{l-1} · W_{l,p} + b_{l,p}))
//! ```
//!
//! [`Spec::predict_scores`] cuts N rows into chunks of [`PREDICT_CHUNK`] rows, a chunk per
//! work item, so a row's scores never depend on who computes them.
//!
//! In training with dropout, a hidden block's output is masked and scaled after its
//! activation (its next block, and its weight gradient, read that); the output before the
//! mask is kept too, for the activation's derivative in the backward pass.
//!
//! A batch-normalization block normalizes by the batch's statistics in training (computed
//! over the whole batch before any shard goes past it, see `step`; x̂ is kept for the
//! backward pass) and by its running statistics otherwise ([`Norming`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::alloc;
use crate::batchnorm;
use crate::error::{Error, Result};
use crate::float::{Float, all_finite};
use crate::linear::{affine_forward, check_buffer};
use crate::matrix::MatRef;
use crate::maxout::maxout_forward;
use crate::network::{Block, Dropping, NORM_EPS, Params, Spec, check_values, non_finite};
use crate::pace::helpers_worth;
use crate::team::{PerItem, Team};

/// Rows per chunk of a prediction.
const PREDICT_CHUNK: usize = 1024;

/// A raw pointer to a buffer that may cross threads: shards and tasks each turn a disjoint
/// range of it into a slice.
#[derive(Clone, Copy)]
pub(crate) struct Ptr<T>(*mut T, usize);
// SAFETY: a Ptr is only turned into slices by `slice`, whose callers guarantee that no two
// threads get overlapping ranges.
unsafe impl<T: Send> Send for Ptr<T> {}
unsafe impl<T: Send> Sync for Ptr<T> {}

impl<T> Ptr<T> {
    pub(crate) fn of(v: &mut [T]) -> Self {
        Ptr(v.as_mut_ptr(), v.len())
    }

    /// Elements `off..off + len` (an empty slice when the buffer is empty: an optimizer that
    /// keeps no state).
    ///
    /// # Safety
    /// No other live reference may overlap that range.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice<'a>(self, off: usize, len: usize) -> &'a mut [T] {
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
    pub(crate) unsafe fn view<'a>(self, off: usize, len: usize) -> &'a [T] {
        if self.1 == 0 {
            return &[];
        }
        assert!(off + len <= self.1, "range {off}+{len} beyond {}", self.1);
        // SAFETY: in bounds (checked above); not written meanwhile by the caller's guarantee.
        unsafe { std::slice::from_raw_parts(self.0.add(off), len) }
    }
}

/// Every block's output for up to `capacity` rows, and maxout's pieces and winners; in
/// training with dropout, every hidden block's output before its mask (`kept`); in training
/// with batch normalization, each normalization's x̂.
pub(crate) struct Acts<T> {
    capacity: usize,
    acts: Vec<Vec<T>>,
    pieces: Vec<Vec<T>>,
    winners: Vec<Vec<u8>>,
    kept: Vec<Vec<T>>,
    xhat: Vec<Vec<T>>,
}

/// Pointers into an [`Acts`], for shards that fill disjoint row ranges at once.
pub(crate) struct RawActs<T> {
    pub(crate) acts: Vec<Ptr<T>>,
    pub(crate) pieces: Vec<Ptr<T>>,
    pub(crate) winners: Vec<Ptr<u8>>,
    pub(crate) kept: Vec<Ptr<T>>,
    pub(crate) xhat: Vec<Ptr<T>>,
}

/// How batch-normalization blocks normalize.
#[derive(Clone, Copy)]
pub(crate) enum Norming<'a> {
    /// By their running statistics (the blocks' state): inference and validation.
    Running,
    /// By the batch's: each block's mean and 1/√(σ² + ε), indexed by block (empty for the
    /// other blocks), in training.
    Batch(&'a [(Vec<f64>, Vec<f64>)]),
}

impl<T: Float> Acts<T> {
    /// Buffers for up to `capacity` rows of `spec` (for a training step when `training`: then
    /// with room for the hidden outputs before dropout's masks and for x̂).
    pub(crate) fn new(spec: &Spec, capacity: usize, training: bool) -> Result<Self> {
        let dropping = training && spec.dropout() > 0.0;
        let blocks = spec.blocks();
        let per_block = |len: fn(&Block) -> usize, what| -> Result<Vec<_>> {
            blocks
                .iter()
                .map(|b| alloc::zeros2(capacity, len(b), what))
                .collect()
        };
        fn maxout(b: &Block, n: usize) -> usize {
            if matches!(b, Block::Maxout { .. }) {
                n
            } else {
                0
            }
        }
        Ok(Acts {
            capacity,
            acts: per_block(Block::outputs, "activations")?,
            pieces: per_block(|b| maxout(b, b.bias_len()), "maxout pieces")?,
            winners: blocks
                .iter()
                .map(|b| alloc::zeros2(capacity, maxout(b, b.outputs()), "maxout winners"))
                .collect::<Result<_>>()?,
            kept: (0..blocks.len())
                .map(|l| {
                    let on = dropping && spec.is_hidden_output(l);
                    let width = if on { blocks[l].outputs() } else { 0 };
                    alloc::zeros2(capacity, width, "activations before dropout")
                })
                .collect::<Result<_>>()?,
            xhat: blocks
                .iter()
                .map(|b| {
                    let on = training && matches!(b, Block::Norm { .. });
                    let width = if on { b.outputs() } else { 0 };
                    alloc::zeros2(capacity, width, "normalized activations")
                })
                .collect::<Result<_>>()?,
        })
    }

    /// Rows the buffers hold.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Pointers to every buffer. They stay valid as long as `self` lives: no buffer is ever
    /// resized.
    pub(crate) fn raw(&mut self) -> RawActs<T> {
        RawActs {
            acts: self.acts.iter_mut().map(|v| Ptr::of(v)).collect(),
            pieces: self.pieces.iter_mut().map(|v| Ptr::of(v)).collect(),
            winners: self.winners.iter_mut().map(|v| Ptr::of(v)).collect(),
            kept: self.kept.iter_mut().map(|v| Ptr::of(v)).collect(),
            xhat: self.xhat.iter_mut().map(|v| Ptr::of(v)).collect(),
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
        let all = 0..spec.blocks().len();
        // SAFETY: one pass over all rows, with `self` borrowed exclusively meanwhile.
        unsafe { forward_rows(&raw, spec, params, 0, x, all, None, Norming::Running) };
    }

    /// The scores of the last forward pass of `n` rows.
    pub(crate) fn scores(&self, spec: &Spec, n: usize) -> MatRef<'_, T> {
        let k = spec.outputs();
        MatRef::new(&self.acts[self.acts.len() - 1][..n * k], n, k)
    }
}

impl<T> RawActs<T> {
    /// Output of block `l` for the `n` rows of the batch.
    ///
    /// # Safety
    /// Nothing may write those rows while the view lives.
    pub(crate) unsafe fn act<'a>(&self, l: usize, n: usize, width: usize) -> MatRef<'a, T>
    where
        T: Copy,
    {
        // SAFETY: forwarded to the caller.
        MatRef::new(unsafe { self.acts[l].view(0, n * width) }, n, width)
    }
}

/// Rows `lo..lo + m` of a batch: the outputs of the blocks `range`, from `input` (the
/// batch's rows, `m` of them, for block 0) or from the outputs before `range` (written by an
/// earlier pass); with `dropping` (training), every hidden output masked after it is kept
/// unmasked; batch normalizations as `norming` says.
///
/// # Safety
/// No other live reference may overlap those rows of the buffers `raw` points to.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn forward_rows<T: Float>(
    raw: &RawActs<T>,
    spec: &Spec,
    params: &[impl Params<T>],
    lo: usize,
    input: MatRef<'_, T>,
    range: std::ops::Range<usize>,
    dropping: Option<Dropping>,
    norming: Norming<'_>,
) {
    let m = input.rows();
    let (from, count) = (range.start, range.len());
    let blocks = spec.blocks().iter().zip(params);
    for (l, (&block, p)) in blocks.enumerate().skip(from).take(count) {
        let (n_in, n_out) = (block.inputs(), block.outputs());
        // SAFETY (all slices): rows lo..lo+m of this pass's own buffers, exclusive by the
        // caller's guarantee; the previous block's output was written before.
        let prev = match l {
            0 => input,
            _ => MatRef::new(
                unsafe { raw.acts[l - 1].slice(lo * n_in, m * n_in) },
                m,
                n_in,
            ),
        };
        let out = unsafe { raw.acts[l].slice(lo * n_out, m * n_out) };
        match block {
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
            Block::Norm { features, act } => {
                out.copy_from_slice(prev.as_row_major().expect("activations are row-major"));
                let gamma_beta = (p.weight(), p.bias());
                match norming {
                    Norming::Batch(stats) => {
                        let (mean, inv_std) = &stats[l];
                        let xhat = unsafe { raw.xhat[l].slice(lo * n_out, m * n_out) };
                        batchnorm::normalize_rows(
                            out,
                            features,
                            (mean, inv_std),
                            gamma_beta,
                            Some(xhat),
                        );
                    }
                    Norming::Running => {
                        let running = p.state().split_at(features);
                        batchnorm::normalize_eval_rows(
                            out, features, running, NORM_EPS, gamma_beta,
                        );
                    }
                }
                if act != crate::activation::Activation::Identity {
                    act.forward_inplace(out);
                }
            }
        }
        if let Some(d) = dropping.filter(|_| spec.is_hidden_output(l)) {
            // SAFETY: as above.
            unsafe { raw.kept[l].slice(lo * n_out, m * n_out) }.copy_from_slice(out);
            d.mask(l)
                .apply(out, n_out, lo, crate::dropout::keep_scale(d.p));
        }
    }
}

impl Spec {
    /// Scores (N, outputs) for the rows of `x`, computed in chunks of rows (in parallel when
    /// there are several and the budget of cores allows), so that the buffers stay small
    /// whatever N is.
    pub fn predict_scores<T: Float>(
        &self,
        params: &[impl Params<T> + Sync],
        x: MatRef<'_, T>,
        out: &mut [T],
    ) -> Result<()> {
        match self.predict_helpers(x.rows()) {
            // One thread's work (e.g. one row): no team, for latency.
            0 => self.predict_on(None, params, x, out),
            want => self.predict_on(Some(&Team::for_call(want)), params, x, out),
        }
    }

    /// Helpers worth engaging to predict `rows` rows.
    pub(crate) fn predict_helpers(&self, rows: usize) -> usize {
        let per_row: f64 = self.blocks().iter().map(Block::forward_flops).sum();
        helpers_worth(rows as f64 * per_row, rows.div_ceil(PREDICT_CHUNK))
    }

    /// [`Spec::predict_scores`] on `team` (or the calling thread alone); a raised interrupt
    /// flag stops it with [`Error::Interrupted`].
    pub(crate) fn predict_on<T: Float>(
        &self,
        team: Option<&Team<'_>>,
        params: &[impl Params<T> + Sync],
        x: MatRef<'_, T>,
        out: &mut [T],
    ) -> Result<()> {
        self.check_params(params)?;
        self.check_shape("X", x)?;
        let k = self.outputs();
        check_buffer("out", out, x.rows(), k)?;
        let n = x.rows();
        let chunks = n.div_ceil(PREDICT_CHUNK);
        // One set of buffers per thread that may run at once: an item takes a free one.
        let threads = team.map_or(1, |t| t.helpers() + 1);
        let bufs: Vec<Mutex<Acts<T>>> = (0..threads.min(chunks))
            .map(|_| Acts::new(self, PREDICT_CHUNK.min(n), false).map(Mutex::new))
            .collect::<Result<_>>()?;
        let finite = AtomicBool::new(true);
        // Scores that are NaN or infinite would make every prediction class 0, silently.
        let finite_out = AtomicBool::new(true);
        let rows = |i: usize| ((i + 1) * PREDICT_CHUNK).min(n) - i * PREDICT_CHUNK;
        let dst = PerItem::new(out);
        let chunk = |i: usize| {
            let lo = i * PREDICT_CHUNK;
            let xs = x.row_block(lo, lo + rows(i));
            // Fixed chunks: a row's scores do not depend on who computes it. The rows are in
            // cache now: the cheapest moment to look for NaN.
            if check_values("X", xs).is_err() {
                finite.store(false, Ordering::Relaxed);
                return;
            }
            let mut held = bufs
                .iter()
                .find_map(|b| b.try_lock().ok())
                .expect("a set of buffers per thread");
            held.forward(self, params, xs);
            // SAFETY: the team runs each index once; chunk i alone owns these rows.
            let out = unsafe { dst.chunk(i, PREDICT_CHUNK * k) };
            out.copy_from_slice(held.scores(self, rows(i)).data());
            if !all_finite(out) {
                finite_out.store(false, Ordering::Relaxed);
            }
        };
        let done = match team {
            Some(team) => team.run(chunks, true, &|i| rows(i) as f64, &chunk),
            None => {
                (0..chunks).for_each(chunk);
                true
            }
        };
        if !done {
            return Err(Error::Interrupted);
        }
        if !finite.load(Ordering::Relaxed) {
            return Err(non_finite("X"));
        }
        if !finite_out.load(Ordering::Relaxed) {
            return Err(Error::State(
                "the network's outputs for X are NaN or infinite: its weights hold NaN or \
                 infinity, or X is too large for them"
                    .into(),
            ));
        }
        Ok(())
    }
}
