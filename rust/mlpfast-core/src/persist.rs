//! A training [`Session`] as bytes, so that a pickled model goes on where it left off: its
//! optimizer's moments and step count, its learning rate schedule, its stopping rule, its
//! generator, its history (scikit-learn's pickles carry all of these, and dask-ml's
//! `Incremental` pickles the estimator from one block of data to the next).
//!
//! The record is little-endian: a magic tag, a version and the dtype's width, then every
//! field in a fixed order (floats as f64 bits, which hold f32 values exactly). Reading checks
//! every tag, and every length against the bytes left before anything is allocated, and the
//! buffers against the model's parameter shapes, so damaged bytes are an error, never a
//! panic or a huge allocation.

use crate::alloc;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::session::Session;

const MAGIC: &[u8; 8] = b"mlpfsess";
/// The version written. Version 2 added the warm-up and cosine schedule's fields; version 1
/// records (mlpfast before them) still read.
const VERSION: u64 = 2;

/// The error of a record this version cannot read.
pub(crate) fn corrupt(what: &str) -> Error {
    Error::value(
        "session state",
        "a training state written by mlpfast",
        what.to_owned(),
    )
}

/// Appends fields to a record.
#[derive(Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }

    pub(crate) fn opt_f64(&mut self, v: Option<f64>) {
        self.bool(v.is_some());
        self.f64(v.unwrap_or(0.0));
    }

    /// A length, then the values.
    pub(crate) fn floats<T: Float>(&mut self, v: &[T]) {
        self.u64(v.len() as u64);
        v.iter().for_each(|x| self.f64(x.to_f64()));
    }
}

/// Reads fields back, in the order they were written.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    version: u64,
}

impl<'a> Reader<'a> {
    /// The version of the record being read.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(corrupt("a record that ends early"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub(crate) fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("a flag that is neither 0 nor 1")),
        }
    }

    pub(crate) fn opt_f64(&mut self) -> Result<Option<f64>> {
        let present = self.bool()?;
        let v = self.f64()?;
        Ok(present.then_some(v))
    }

    /// A count of items of `item_bytes` each, no more than the bytes left can hold.
    pub(crate) fn count(&mut self, item_bytes: usize) -> Result<usize> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| {
                n.checked_mul(item_bytes)
                    .is_some_and(|b| b <= self.bytes.len())
            })
            .ok_or_else(|| corrupt("a length beyond the record"))
    }

    /// Values written by [`Writer::floats`].
    pub(crate) fn floats<T: Float>(&mut self) -> Result<Vec<T>> {
        let n = self.count(8)?;
        let mut v = alloc::zeros::<T>(n, "the session state")?;
        for x in &mut v {
            *x = T::from_f64(self.f64()?);
        }
        Ok(v)
    }
}

impl<T: Float> Session<T> {
    /// The session as bytes ([`Session::from_bytes`] reads them back).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.0.extend_from_slice(MAGIC);
        w.u64(VERSION);
        w.u64(std::mem::size_of::<T>() as u64);
        self.write(&mut w);
        w.0
    }

    /// The session [`Session::to_bytes`] wrote, for a model whose parameter tensors have the
    /// lengths `lens` (weights, biases, state per parameter layer): buffers of other lengths, a
    /// record of another dtype or version, and damaged bytes are errors.
    pub fn from_bytes(bytes: &[u8], lens: &[(usize, usize, usize)]) -> Result<Self> {
        let mut r = Reader { bytes, version: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(corrupt("bytes without its tag"));
        }
        r.version = r.u64()?;
        if !(1..=VERSION).contains(&r.version) {
            return Err(corrupt("a record of another version"));
        }
        if r.u64()? != std::mem::size_of::<T>() as u64 {
            return Err(Error::value(
                "session state",
                format!("the state of a {} model", T::NAME),
                "one of the other dtype",
            ));
        }
        let session = Session::read(&mut r, lens)?;
        if !r.bytes.is_empty() {
            return Err(corrupt("bytes after the record"));
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{FitConfig, OptimizerKind};
    use crate::network::{Hidden, Spec};
    use crate::train::{Examples, Silent, fit};
    use crate::{Activation, Loss, MatRef, ParamsMut, Rng, Targets};

    use super::*;

    /// A session after a fit with validation (optimizer moments, schedule, stopping rule
    /// with best weights, history), and the model's parameter lengths.
    fn trained(optimizer: &str) -> (Session<f64>, Vec<(usize, usize, usize)>) {
        let spec = Spec::new(
            &[4, 6, 3],
            Hidden::Activation(Activation::Relu),
            Loss::Softmax,
        )
        .unwrap();
        let mut rng = Rng::new(1);
        let mut params = spec.init_params::<f64>(None, &mut rng).unwrap();
        let x: Vec<f64> = (0..40 * 4).map(|i| (i as f64 * 0.37).sin()).collect();
        let y: Vec<u32> = (0..40).map(|i| i % 3).collect();
        let cfg = FitConfig {
            epochs: 3,
            batch_size: 8,
            optimizer: OptimizerKind::from_name(optimizer).unwrap(),
            momentum: 0.9,
            warmup_epochs: 1,
            schedule: crate::config::Schedule::Cosine,
            ..FitConfig::default()
        };
        let mut session = Session::new(Rng::new(2));
        let mut pm: Vec<ParamsMut<'_, f64>> = params.iter_mut().map(|p| p.view_mut()).collect();
        let targets = Targets::Classes(&y);
        let data = Examples {
            x: MatRef::new(&x, 40, 4),
            y: &targets,
            weights: None,
        };
        fit(
            &spec,
            &mut pm,
            data,
            Some(data),
            &cfg,
            &mut session,
            &mut Silent,
        )
        .unwrap();
        let lens = params
            .iter()
            .map(|p| (p.weight.len(), p.bias.len(), p.state.len()))
            .collect();
        (session, lens)
    }

    #[test]
    fn a_session_reads_back_as_written() {
        for optimizer in crate::config::OPTIMIZER_NAMES {
            let (session, lens) = trained(optimizer);
            let bytes = session.to_bytes();
            let back = Session::<f64>::from_bytes(&bytes, &lens).unwrap();
            assert_eq!(back.to_bytes(), bytes, "{optimizer}");
            assert_eq!(back.history(), session.history());
            assert_eq!(back.samples_seen(), session.samples_seen());
        }
    }

    #[test]
    fn damaged_or_mismatched_records_are_errors() {
        let (session, lens) = trained("rmsprop");
        let bytes = session.to_bytes();
        // Every truncation, and every single damaged byte, fails cleanly or reads a record
        // (a flipped bit in a float is still a float); none panics.
        for cut in 0..bytes.len() {
            assert!(Session::<f64>::from_bytes(&bytes[..cut], &lens).is_err());
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0xA5;
            let _ = Session::<f64>::from_bytes(&damaged, &lens);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Session::<f64>::from_bytes(&longer, &lens).is_err());
        assert!(Session::<f32>::from_bytes(&bytes, &lens).is_err());
        let other = [(lens[0].0 + 1, lens[0].1, 0), lens[1]];
        assert!(Session::<f64>::from_bytes(&bytes, &other).is_err());
        assert!(Session::<f64>::from_bytes(&bytes, &lens[..1]).is_err());
    }
}
