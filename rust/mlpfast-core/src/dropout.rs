//! Inverted dropout's mask, drawn by a counter-based generator.
//!
//! In training, dropout with rate p keeps each unit with probability 1 − p and scales the kept
//! ones by 1/(1 − p), so that the layer's expected output is its input; in evaluation it is
//! the identity. Whether unit `(row, col)` is kept at step `step` is a hash of
//! `(seed, step, row, col)` alone — not a draw from a stream that threads would consume in
//! some order — so any shard, on any thread, finds the same mask, and fits stay bit-identical
//! for any thread count. The backward pass recomputes the mask instead of storing it.
//!
//! The hash is SplitMix64's finalizer applied to each coordinate in turn (each one added to
//! the mixed state of the ones before), whose output passes the usual statistical batteries;
//! a unit is kept when its 64-bit hash is at or above `p · 2⁶⁴`.
//!
//! [`Dropout`] is the layer: its rate, its seed and a step counter that every training
//! forward advances, so successive forwards draw new masks while a backward finds its
//! forward's mask again from the step alone.

use crate::error::{Error, Result};
use crate::float::Float;

/// The mixing function of SplitMix64 (a bijection of u64).
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The golden-ratio increment of SplitMix64: keeps consecutive coordinates far apart.
const STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// One dropout mask: its rate and where it is in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mask {
    /// Units whose hash is below this are dropped (`p · 2⁶⁴`, rounded).
    threshold: u64,
    /// The hash of (seed, step), to which each row and column is added.
    key: u64,
}

impl Mask {
    /// The mask of dropout rate `p` (in [0, 1)) at step `step` of a run seeded with `seed`.
    pub fn new(p: f64, seed: u64, step: u64) -> Self {
        debug_assert!((0.0..1.0).contains(&p), "dropout rate {p}");
        // p · 2⁶⁴, exact for every p that is a multiple of 2⁻⁶⁴ and rounded down otherwise.
        let threshold = (p * 18_446_744_073_709_551_616.0) as u64;
        Mask {
            threshold,
            key: mix(mix(seed.wrapping_add(STEP)).wrapping_add(step.wrapping_mul(STEP))),
        }
    }

    /// The hash of row `row` (combine with [`Mask::keeps`] for its columns).
    #[inline(always)]
    pub fn row_key(&self, row: u64) -> u64 {
        mix(self.key ^ row.wrapping_mul(STEP).wrapping_add(STEP))
    }

    /// Whether unit `col` of the row whose key is `row_key` is kept.
    #[inline(always)]
    pub fn keeps(&self, row_key: u64, col: u64) -> bool {
        mix(row_key.wrapping_add(col.wrapping_mul(STEP))) >= self.threshold
    }

    /// Multiplies rows `row0..` of the row-major `x` (`cols` wide) by the mask and by
    /// `scale` (1/(1 − p) forward and backward alike: the backward pass scales the gradient
    /// exactly as the forward pass scaled the value).
    pub fn apply<T: Float>(&self, x: &mut [T], cols: usize, row0: usize, scale: T) {
        if cols == 0 {
            return;
        }
        // The hash vectorizes (64-bit multiplies: AVX-512's vpmullq) at the widest level.
        crate::simd::wide(
            #[inline(always)]
            || {
                for (i, row) in x.chunks_exact_mut(cols).enumerate() {
                    let key = self.row_key((row0 + i) as u64);
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (*v * scale).keep_if(self.keeps(key, j as u64));
                    }
                }
            },
        )
    }
}

/// 1/(1 − p) in `T`, the scale of the units dropout keeps.
pub fn keep_scale<T: Float>(p: f64) -> T {
    T::from_f64(1.0 / (1.0 - p))
}

/// What a dropout rate accepts (the message of [`check_rate`]).
pub const RATE_EXPECTED: &str =
    "a number in [0, 1) (p = 1 would drop every unit and scale by 1/(1 - p) = inf)";

/// Checks a dropout rate: a number in [0, 1). PyTorch accepts p = 1 (an all-zero output);
/// here it is refused, since the kept units' scale 1/(1 − p) is infinite.
pub fn check_rate(p: f64) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::value("p", RATE_EXPECTED, crate::error::fmt_num(&p)))
    }
}

/// The dropout layer: rate, seed, and the step the next training forward will use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// The probability of dropping a unit, in [0, 1).
    pub p: f64,
    /// The seed of every mask this layer draws.
    pub seed: u64,
    /// Training forwards so far: the next one uses mask number `step`.
    pub step: u64,
}

impl Dropout {
    /// A layer of rate `p` (checked by [`check_rate`]) whose masks derive from `seed`.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        check_rate(p)?;
        Ok(Dropout { p, seed, step: 0 })
    }

    /// The mask of step `step`.
    pub fn mask(&self, step: u64) -> Mask {
        Mask::new(self.p, self.seed, step)
    }

    /// A training forward, in place on the row-major `x` (`cols` wide): applies the mask of
    /// the current step and moves to the next one. Returns the step used, which the backward
    /// pass hands back to [`Dropout::backward`]. (Evaluation is the identity: no call.)
    pub fn forward<T: Float>(&mut self, x: &mut [T], cols: usize) -> u64 {
        let step = self.step;
        self.mask(step).apply(x, cols, 0, keep_scale::<T>(self.p));
        self.step = step.wrapping_add(1);
        step
    }

    /// The backward pass of the training forward that used `step`, in place on the gradient
    /// `g`: the same mask and scale, recomputed from the counters rather than stored.
    pub fn backward<T: Float>(&self, step: u64, g: &mut [T], cols: usize) {
        self.mask(step).apply(g, cols, 0, keep_scale::<T>(self.p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_depends_on_the_coordinates_alone() {
        let m = Mask::new(0.5, 7, 3);
        let mut a = vec![1.0f64; 6 * 5];
        m.apply(&mut a, 5, 10, 2.0);
        // Rows 12..16 alone, as another shard would see them.
        let mut b = vec![1.0f64; 4 * 5];
        m.apply(&mut b, 5, 12, 2.0);
        assert_eq!(&a[2 * 5..], &b[..]);
        assert!(a.iter().all(|&v| v == 0.0 || v == 2.0));
        // Another step, seed or row gives another mask.
        let other = Mask::new(0.5, 7, 4);
        let mut c = vec![1.0f64; 6 * 5];
        other.apply(&mut c, 5, 10, 2.0);
        assert_ne!(a, c);
    }

    #[test]
    fn the_keep_rate_and_the_mean_are_right() {
        for p in [0.1, 0.5, 0.9] {
            let m = Mask::new(p, 1, 0);
            let (rows, cols) = (400, 250);
            let mut x = vec![1.0f64; rows * cols];
            m.apply(&mut x, cols, 0, keep_scale(p));
            let n = (rows * cols) as f64;
            let kept = x.iter().filter(|&&v| v != 0.0).count() as f64;
            // Binomial(n, 1 - p): within 5 standard deviations.
            let sd = (n * p * (1.0 - p)).sqrt();
            assert!(
                (kept - n * (1.0 - p)).abs() < 5.0 * sd,
                "p {p}: kept {kept} of {n}"
            );
            let mean = x.iter().sum::<f64>() / n;
            assert!(
                (mean - 1.0).abs() < 5.0 * sd / (n * (1.0 - p)),
                "p {p}: mean {mean}"
            );
        }
        // p = 0 keeps everything.
        let mut x = vec![3.0f32; 64];
        Mask::new(0.0, 5, 5).apply(&mut x, 8, 0, 1.0);
        assert!(x.iter().all(|&v| v == 3.0));
    }

    #[test]
    fn the_layer_steps_forward_and_replays_in_backward() {
        let mut layer = Dropout::new(0.5, 9).unwrap();
        let mut a = vec![1.0f64; 8 * 8];
        let mut b = a.clone();
        assert_eq!(layer.forward(&mut a, 8), 0);
        assert_eq!(layer.forward(&mut b, 8), 1);
        assert_ne!(a, b, "successive forwards draw new masks");
        // Backward of step 0: the gradient passes where forward's value did, scaled alike.
        let mut g = vec![1.0f64; 8 * 8];
        layer.backward(0, &mut g, 8);
        assert_eq!(g, a);
        assert!(Dropout::new(1.0, 0).is_err() && Dropout::new(-0.1, 0).is_err());
        assert!(Dropout::new(f64::NAN, 0).is_err());
    }

    #[test]
    fn neighbouring_units_are_independent() {
        // Pairs of horizontally and vertically adjacent units: each of the four keep/drop
        // combinations at its expected rate.
        let m = Mask::new(0.5, 11, 2);
        let (rows, cols) = (300, 300);
        let mut x = vec![1.0f64; rows * cols];
        m.apply(&mut x, cols, 0, 1.0);
        let kept = |i: usize, j: usize| x[i * cols + j] != 0.0;
        for (di, dj) in [(0, 1), (1, 0)] {
            let mut counts = [0usize; 4];
            for i in 0..rows - di {
                for j in 0..cols - dj {
                    counts[kept(i, j) as usize * 2 + kept(i + di, j + dj) as usize] += 1;
                }
            }
            let n: usize = counts.iter().sum();
            let expected = n as f64 / 4.0;
            let sd = (n as f64 * 0.25 * 0.75).sqrt();
            for c in counts {
                assert!((c as f64 - expected).abs() < 5.0 * sd, "{counts:?}");
            }
        }
    }
}
