//! The settings of a training run, and the one place they are checked.
//!
//! [`FitConfig`] holds every setting a fit takes — the optimizer and its hyperparameters, the
//! learning rate and its schedule, weight decay, the stopping rule, batching and shuffling —
//! as given, and [`FitConfig::validate`] is the only check of them: `MLP.fit` and the
//! scikit-learn estimators both come through it, before any work is done.

use crate::error::{Error, Result, fmt_num};
use crate::float::Float;
use crate::optim::Optimizer;

/// Which optimizer a fit uses (its hyperparameters are [`FitConfig`]'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptimizerKind {
    /// Stochastic gradient descent, with (Nesterov) momentum when `momentum > 0`.
    #[default]
    Sgd,
    /// Adam with bias correction.
    Adam,
}

/// The names the Python API accepts.
pub const OPTIMIZER_NAMES: [&str; 2] = ["sgd", "adam"];

impl OptimizerKind {
    /// Its name in the Python API.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
        }
    }

    /// The optimizer named `name`, or an error naming the `optimizer` argument.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "sgd" => Ok(OptimizerKind::Sgd),
            "adam" => Ok(OptimizerKind::Adam),
            other => Err(Error::value(
                "optimizer",
                format!("one of {}", OPTIMIZER_NAMES.join(", ")),
                format!("{other:?}"),
            )),
        }
    }
}

/// How the learning rate moves between epochs (besides `lr_decay`), as scikit-learn's
/// `learning_rate` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// Unchanged.
    #[default]
    Constant,
    /// After every epoch, `lr = lr₀ / (t + 1)^power_t`, t the samples seen so far.
    InvScaling,
    /// Divided by 5 each time the stopping rule fires, instead of stopping (until it falls
    /// to 1e-6 or below).
    Adaptive,
}

/// The names the Python API accepts.
pub const SCHEDULE_NAMES: [&str; 3] = ["constant", "invscaling", "adaptive"];

impl Schedule {
    /// Its name in the Python API.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::InvScaling => "invscaling",
            Schedule::Adaptive => "adaptive",
        }
    }

    /// The schedule named `name`, or an error naming the `schedule` argument.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "constant" => Ok(Schedule::Constant),
            "invscaling" => Ok(Schedule::InvScaling),
            "adaptive" => Ok(Schedule::Adaptive),
            other => Err(Error::value(
                "schedule",
                format!("one of {}", SCHEDULE_NAMES.join(", ")),
                format!("{other:?}"),
            )),
        }
    }
}

/// Every setting of one training run, as given.
///
/// Counts are signed so that a negative one from Python reaches [`FitConfig::validate`],
/// which names it, rather than failing a conversion elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Passes over the data (>= 0).
    pub epochs: i64,
    /// Rows per step (>= 1); the last batch of an epoch may be smaller.
    pub batch_size: i64,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate of the first epoch (> 0).
    pub lr: f64,
    /// SGD's momentum μ, in [0, 1).
    pub momentum: f64,
    /// Nesterov's form of momentum (SGD; needs momentum > 0).
    pub nesterov: bool,
    /// Adam's β₁ and β₂, in [0, 1).
    pub betas: (f64, f64),
    /// Adam's ε (> 0).
    pub eps: f64,
    /// L2 penalty λ >= 0: adds ½λ‖W‖² over the weights (not the biases) to each batch's loss.
    pub weight_decay: f64,
    /// When true, `weight_decay` is scikit-learn's `alpha`: a batch of n rows adds ½(λ/n)‖W‖².
    pub l2_per_sample: bool,
    /// Factor on the data term of the losses a fit reports (history, stopping rule,
    /// validation loss), not on what it trains: scikit-learn's regressor reports its squared
    /// loss averaged over the outputs, though its gradient is per row (> 0, finite).
    pub reported_data_scale: f64,
    /// Factor applied to the learning rate after every epoch (> 0).
    pub lr_decay: f64,
    /// How the learning rate moves besides `lr_decay`.
    pub schedule: Schedule,
    /// Exponent of [`Schedule::InvScaling`] (>= 0).
    pub power_t: f64,
    /// Reshuffle the rows before every epoch.
    pub shuffle: bool,
    /// Seed of the shuffling; `None` draws one from the session's generator.
    pub seed: Option<u64>,
    /// The improvement the stopping rule counts (>= 0).
    pub tol: f64,
    /// Epochs without improvement the stopping rule tolerates (>= 1); `None`: no rule.
    pub n_iter_no_change: Option<i64>,
    /// With validation data and a stopping rule: end with the best validation weights.
    pub restore_best: bool,
    /// Continue the session's last fit: its optimizer (state and hyperparameters), its
    /// learning rate and schedule, and its stopping rule's count, as scikit-learn's
    /// `partial_fit` does; the settings of those given here then do not apply.
    pub resume: bool,
}

impl Default for FitConfig {
    /// `MLP.fit`'s defaults.
    fn default() -> Self {
        FitConfig {
            epochs: 10,
            batch_size: 64,
            optimizer: OptimizerKind::Sgd,
            lr: 0.01,
            momentum: 0.0,
            nesterov: false,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            l2_per_sample: false,
            reported_data_scale: 1.0,
            lr_decay: 1.0,
            schedule: Schedule::Constant,
            power_t: 0.5,
            shuffle: true,
            seed: None,
            tol: 1e-4,
            n_iter_no_change: None,
            restore_best: true,
            resume: false,
        }
    }
}

/// `v` is a finite number.
fn finite(arg: &str, expected: &str, v: f64, ok: impl Fn(f64) -> bool) -> Result<()> {
    if v.is_finite() && ok(v) {
        Ok(())
    } else {
        Err(Error::value(arg, expected, fmt_num(&v)))
    }
}

impl FitConfig {
    /// Checks every setting; the error names the first bad one, with what it accepts.
    pub fn validate(&self) -> Result<()> {
        if self.epochs < 0 {
            return Err(Error::value("epochs", "an integer >= 0", self.epochs));
        }
        if self.batch_size < 1 {
            return Err(Error::value(
                "batch_size",
                "an integer >= 1",
                self.batch_size,
            ));
        }
        finite("lr", "a positive finite number", self.lr, |v| v > 0.0)?;
        let unit = "a number in [0, 1)";
        finite("momentum", unit, self.momentum, |v| (0.0..1.0).contains(&v))?;
        if self.optimizer == OptimizerKind::Sgd && self.nesterov && self.momentum == 0.0 {
            return Err(Error::value(
                "nesterov",
                "momentum > 0 for Nesterov momentum",
                "momentum=0",
            ));
        }
        finite("beta1", unit, self.betas.0, |v| (0.0..1.0).contains(&v))?;
        finite("beta2", unit, self.betas.1, |v| (0.0..1.0).contains(&v))?;
        finite("eps", "a positive finite number", self.eps, |v| v > 0.0)?;
        let non_negative = "a finite number >= 0";
        finite("weight_decay", non_negative, self.weight_decay, |v| {
            v >= 0.0
        })?;
        finite("lr_decay", "a positive finite number", self.lr_decay, |v| {
            v > 0.0
        })?;
        finite(
            "_reported_data_scale",
            "a positive finite number",
            self.reported_data_scale,
            |v| v > 0.0,
        )?;
        finite("power_t", non_negative, self.power_t, |v| v >= 0.0)?;
        finite("tol", non_negative, self.tol, |v| v >= 0.0)?;
        if let Some(n) = self.n_iter_no_change {
            if n < 1 {
                return Err(Error::value(
                    "n_iter_no_change",
                    "an integer >= 1 or None",
                    n,
                ));
            }
        }
        Ok(())
    }

    /// [`FitConfig::validate`], and that what the updates compute with is representable in
    /// the model's dtype `T`: a learning rate finite in float64 may be infinite, or zero, in
    /// float32, and would fill the weights with NaN (or never move them) without a word.
    pub fn validate_for<T: Float>(&self) -> Result<()> {
        self.validate()?;
        let range = |low: &str| {
            format!(
                "{low} representable in {} (at most {})",
                T::NAME,
                fmt_num(&T::MAX_F64)
            )
        };
        let in_t = |v: f64| T::from_f64(v).to_f64();
        if !in_t(self.lr).is_finite() || in_t(self.lr) == 0.0 {
            let expected = format!(
                "a positive number representable in {} (from {} to {})",
                T::NAME,
                fmt_num(&T::MIN_POSITIVE_F64),
                fmt_num(&T::MAX_F64)
            );
            return Err(Error::value("lr", expected, fmt_num(&self.lr)));
        }
        if !in_t(self.weight_decay).is_finite() {
            let wd = fmt_num(&self.weight_decay);
            return Err(Error::value("weight_decay", range("a number"), wd));
        }
        if self.optimizer == OptimizerKind::Adam && in_t(self.eps) == 0.0 {
            let expected = format!(
                "a number > 0 in {} (at least {})",
                T::NAME,
                fmt_num(&T::MIN_POSITIVE_F64)
            );
            return Err(Error::value("eps", expected, fmt_num(&self.eps)));
        }
        // lr_decay > 1 raises the rate every epoch: its last epoch's must be representable.
        let (epochs, _) = self.counts();
        if self.lr_decay > 1.0 && epochs > 1 {
            let exponent = i32::try_from(epochs - 1).unwrap_or(i32::MAX);
            let last = self.lr * self.lr_decay.powi(exponent);
            if !in_t(last).is_finite() {
                return Err(Error::value(
                    "lr_decay",
                    range(&format!("a factor that keeps lr × lr_decay^{exponent}")),
                    fmt_num(&self.lr_decay),
                ));
            }
        }
        Ok(())
    }

    /// The optimizer with its hyperparameters.
    pub fn optimizer(&self) -> Optimizer {
        match self.optimizer {
            OptimizerKind::Sgd => Optimizer::Sgd {
                momentum: self.momentum,
                nesterov: self.nesterov,
            },
            OptimizerKind::Adam => Optimizer::Adam {
                beta1: self.betas.0,
                beta2: self.betas.1,
                eps: self.eps,
            },
        }
    }

    /// Epochs and batch size as counts (after [`FitConfig::validate`]).
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.epochs.max(0) as usize, self.batch_size.max(1) as usize)
    }

    /// The stopping rule's patience (after [`FitConfig::validate`]).
    pub(crate) fn patience(&self) -> Option<usize> {
        self.n_iter_no_change.map(|n| n.max(1) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_setting_is_named() {
        type Spoil = fn(&mut FitConfig);
        let bad: [(&str, Spoil); 14] = [
            ("epochs", |c| c.epochs = -1),
            ("batch_size", |c| c.batch_size = 0),
            ("lr", |c| c.lr = 0.0),
            ("lr", |c| c.lr = f64::NAN),
            ("momentum", |c| c.momentum = 1.0),
            ("nesterov", |c| c.nesterov = true),
            ("beta1", |c| c.betas.0 = 1.0),
            ("beta2", |c| c.betas.1 = -0.1),
            ("eps", |c| c.eps = 0.0),
            ("weight_decay", |c| c.weight_decay = -1.0),
            ("lr_decay", |c| c.lr_decay = 0.0),
            ("power_t", |c| c.power_t = -0.5),
            ("tol", |c| c.tol = f64::INFINITY),
            ("n_iter_no_change", |c| c.n_iter_no_change = Some(0)),
        ];
        for (arg, spoil) in bad {
            let mut c = FitConfig::default();
            spoil(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with(&format!("{arg}: expected")), "{e}");
        }
        assert!(FitConfig::default().validate().is_ok());
        // Nesterov with no momentum is only an error for SGD.
        let adam = FitConfig {
            optimizer: OptimizerKind::Adam,
            nesterov: true,
            ..FitConfig::default()
        };
        assert!(adam.validate().is_ok());
    }

    #[test]
    fn settings_must_be_representable_in_the_models_dtype() {
        type Spoil = fn(&mut FitConfig);
        let bad: [(&str, Spoil); 5] = [
            ("lr", |c| c.lr = 1e39),
            ("lr", |c| c.lr = 1e-50),
            ("weight_decay", |c| c.weight_decay = 1e39),
            ("eps", |c| {
                c.optimizer = OptimizerKind::Adam;
                c.eps = 1e-46;
            }),
            ("lr_decay", |c| {
                c.epochs = 3;
                c.lr = 1.0;
                c.lr_decay = 1e20;
            }),
        ];
        for (arg, spoil) in bad {
            let mut c = FitConfig::default();
            spoil(&mut c);
            // Valid in float64, refused for a float32 model, naming the setting and the range.
            assert!(c.validate_for::<f64>().is_ok(), "{arg}");
            let e = c.validate_for::<f32>().unwrap_err().to_string();
            assert!(e.starts_with(&format!("{arg}: expected")), "{e}");
            assert!(e.contains("float32"), "{e}");
        }
        // Two epochs of lr_decay = 1e20 keep lr = 1e20 within float32.
        let two = FitConfig {
            epochs: 2,
            lr: 1.0,
            lr_decay: 1e20,
            ..FitConfig::default()
        };
        assert!(two.validate_for::<f32>().is_ok());
    }

    #[test]
    fn names_parse_or_name_the_argument() {
        assert_eq!(
            OptimizerKind::from_name("adam").unwrap(),
            OptimizerKind::Adam
        );
        assert!(
            OptimizerKind::from_name("rmsprop")
                .unwrap_err()
                .to_string()
                .starts_with("optimizer: expected one of sgd, adam")
        );
        assert_eq!(Schedule::from_name("adaptive").unwrap(), Schedule::Adaptive);
        assert!(Schedule::from_name("cyclic").is_err());
    }
}
