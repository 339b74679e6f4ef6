//! Seeded randomness: the Xoshiro256++ generator, weight initialization and shuffling.
//!
//! A named generator (not a library's "standard" one, which may change between releases)
//! means a seed gives the same weights and the same batch order forever, on every machine.
//! Weights are drawn in `f64` and rounded, so a float32 model and a float64 model built from
//! one seed hold the same weights up to rounding.

use crate::float::Float;

/// Xoshiro256++ (Blackman and Vigna), seeded through SplitMix64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// A generator seeded from the operating system's per-process randomness.
    pub fn from_entropy() -> Self {
        use std::collections::hash_map::RandomState;
        use std::hash::{BuildHasher, Hasher};
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Rng::new(h.finish())
    }

    /// Appends the generator's state to a record (see `persist`).
    pub(crate) fn write(&self, w: &mut crate::persist::Writer) {
        self.s.iter().for_each(|&v| w.u64(v));
    }

    /// A generator from a record; the all-zero state, which would give zeros forever, is
    /// refused.
    pub(crate) fn read(r: &mut crate::persist::Reader<'_>) -> crate::error::Result<Self> {
        let s = [r.u64()?, r.u64()?, r.u64()?, r.u64()?];
        if s == [0; 4] {
            return Err(crate::persist::corrupt("a generator state of zeros"));
        }
        Ok(Rng { s })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n), by Lemire's multiply-shift (n >= 1).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal, by the Box-Muller transform (one value per call, for a simple stream).
    pub fn normal(&mut self) -> f64 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// How a layer's weights are drawn (biases start at zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// He: normal with standard deviation sqrt(2 / fan_in); for the ReLU family and maxout.
    He,
    /// Glorot: uniform on ±sqrt(6 / (fan_in + fan_out)); for sigmoid, tanh and identity.
    Glorot,
}

impl Init {
    /// Fills `w` with draws for a layer of `fan_in` inputs and `fan_out` outputs.
    pub fn fill<T: Float>(self, w: &mut [T], fan_in: usize, fan_out: usize, rng: &mut Rng) {
        match self {
            Init::He => {
                let std = (2.0 / fan_in.max(1) as f64).sqrt();
                w.iter_mut()
                    .for_each(|v| *v = T::from_f64(std * rng.normal()));
            }
            Init::Glorot => {
                let bound = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                w.iter_mut()
                    .for_each(|v| *v = T::from_f64(bound * (2.0 * rng.next_f64() - 1.0)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_different_seed_different_stream() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn normal_draws_have_unit_moments() {
        let mut r = Rng::new(1);
        let v: Vec<f64> = (0..200_000).map(|_| r.normal()).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut r = Rng::new(3);
        let mut v: Vec<usize> = (0..1000).collect();
        r.shuffle(&mut v);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn glorot_stays_in_bounds_and_he_has_the_right_spread() {
        let mut r = Rng::new(5);
        let mut w = vec![0.0f64; 10_000];
        Init::Glorot.fill(&mut w, 30, 20, &mut r);
        let bound = (6.0f64 / 50.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound));
        Init::He.fill(&mut w, 50, 20, &mut r);
        let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
        assert!((var - 2.0 / 50.0).abs() < 0.004, "var {var}");
    }
}
