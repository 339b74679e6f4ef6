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
    /// Adam with decoupled weight decay (PyTorch's AdamW).
    AdamW,
    /// RMSprop (PyTorch's, uncentered), with momentum when `momentum > 0`.
    RmsProp,
}

/// The names the Python API accepts.
pub const OPTIMIZER_NAMES: [&str; 4] = ["sgd", "adam", "adamw", "rmsprop"];

impl OptimizerKind {
    /// Its name in the Python API.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::RmsProp => "rmsprop",
        }
    }

    /// The optimizer named `name`, or an error naming the `optimizer` argument.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "sgd" => Ok(OptimizerKind::Sgd),
            "adam" => Ok(OptimizerKind::Adam),
            "adamw" => Ok(OptimizerKind::AdamW),
            "rmsprop" => Ok(OptimizerKind::RmsProp),
            other => Err(Error::value(
                "optimizer",
                format!("one of {}", OPTIMIZER_NAMES.join(", ")),
                format!("{other:?}"),
            )),
        }
    }
}

/// How the learning rate moves between epochs (besides `lr_decay` and the warm-up), as
/// scikit-learn's `learning_rate` option, or PyTorch's cosine annealing.
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
    /// PyTorch's `CosineAnnealingLR` over the fit's epochs after the warm-up (T_max =
    /// epochs − warmup_epochs), from `lr` down to `lr_min`, stepped once per epoch; it stays
    /// at `lr_min` after that (a resumed fit going on past the end).
    Cosine,
}

/// The names the Python API accepts.
pub const SCHEDULE_NAMES: [&str; 4] = ["constant", "invscaling", "adaptive", "cosine"];

impl Schedule {
    /// Its name in the Python API.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::InvScaling => "invscaling",
            Schedule::Adaptive => "adaptive",
            Schedule::Cosine => "cosine",
        }
    }

    /// The schedule named `name`, or an error naming the `schedule` argument.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "constant" => Ok(Schedule::Constant),
            "invscaling" => Ok(Schedule::InvScaling),
            "adaptive" => Ok(Schedule::Adaptive),
            "cosine" => Ok(Schedule::Cosine),
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
    /// The momentum μ of SGD and RMSprop, in [0, 1).
    pub momentum: f64,
    /// Nesterov's form of momentum (SGD; needs momentum > 0).
    pub nesterov: bool,
    /// Adam's and AdamW's β₁ and β₂, in [0, 1).
    pub betas: (f64, f64),
    /// The ε of Adam, AdamW and RMSprop (> 0).
    pub eps: f64,
    /// RMSprop's α, the decay of its mean square, in [0, 1).
    pub alpha: f64,
    /// L2 penalty λ >= 0: adds ½λ‖W‖² over the weights (not the biases) to each batch's loss.
    /// With AdamW it is the decoupled decay instead, `w ← w·(1 − lr·λ)` each step, and adds
    /// nothing to the loss.
    pub weight_decay: f64,
    /// Scale each step's gradient (of the loss, over all weights and biases) down to this
    /// global L2 norm when it is longer, as PyTorch's `clip_grad_norm_` (> 0); `None`: no
    /// clipping.
    pub clip_grad_norm: Option<f64>,
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
    /// Where [`Schedule::Cosine`] ends (>= 0, below `lr`).
    pub lr_min: f64,
    /// Epochs of linear warm-up at the start of a fit (>= 0): epoch e < W trains at
    /// (e + 1)/(W + 1) times the schedule's rate.
    pub warmup_epochs: i64,
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
            alpha: 0.99,
            weight_decay: 0.0,
            clip_grad_norm: None,
            l2_per_sample: false,
            reported_data_scale: 1.0,
            lr_decay: 1.0,
            schedule: Schedule::Constant,
            power_t: 0.5,
            lr_min: 0.0,
            warmup_epochs: 0,
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

/// A learning rate `v` given as argument `arg` (`lr`, or `learning_rate` when set on a
/// model): finite, positive, and neither infinite nor 0 in the model's dtype `T` (where it
/// would fill the weights with NaN, or never move them, without a word).
pub fn check_rate<T: Float>(arg: &str, v: f64) -> Result<()> {
    finite(arg, "a positive finite number", v, |v| v > 0.0)?;
    positive_in::<T>(arg, v)
}

/// `v` > 0 stays finite and non-zero in `T`.
fn positive_in<T: Float>(arg: &str, v: f64) -> Result<()> {
    let in_t = T::from_f64(v).to_f64();
    if !in_t.is_finite() || in_t == 0.0 {
        let expected = format!(
            "a positive number representable in {} (from {} to {})",
            T::NAME,
            fmt_num(&T::MIN_POSITIVE_F64),
            fmt_num(&T::MAX_F64)
        );
        return Err(Error::value(arg, expected, fmt_num(&v)));
    }
    Ok(())
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
        finite("alpha", unit, self.alpha, |v| (0.0..1.0).contains(&v))?;
        let non_negative = "a finite number >= 0";
        finite("weight_decay", non_negative, self.weight_decay, |v| {
            v >= 0.0
        })?;
        if let Some(c) = self.clip_grad_norm {
            finite(
                "clip_grad_norm",
                "a positive finite number or None",
                c,
                |v| v > 0.0,
            )?;
        }
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
        let below_lr = format!("a finite number >= 0 and below lr ({})", fmt_num(&self.lr));
        finite("lr_min", &below_lr, self.lr_min, |v| {
            v >= 0.0 && v < self.lr
        })?;
        if self.warmup_epochs < 0 {
            return Err(Error::value(
                "warmup_epochs",
                "an integer >= 0",
                self.warmup_epochs,
            ));
        }
        if self.schedule == Schedule::Cosine {
            // The cosine sets every epoch's rate itself: a factor on top would bend it.
            if self.lr_decay != 1.0 {
                return Err(Error::value(
                    "lr_decay",
                    "1 with schedule='cosine' (the cosine sets every epoch's rate)",
                    fmt_num(&self.lr_decay),
                ));
            }
            // T_max = epochs − warmup_epochs must be at least one epoch.
            if self.epochs > 0 && self.warmup_epochs >= self.epochs {
                return Err(Error::value(
                    "warmup_epochs",
                    format!(
                        "an integer below epochs ({}) with schedule='cosine', which runs over \
                         the epochs after the warm-up",
                        self.epochs
                    ),
                    self.warmup_epochs,
                ));
            }
        }
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
        check_rate::<T>("lr", self.lr)?;
        if !in_t(self.weight_decay).is_finite() {
            let wd = fmt_num(&self.weight_decay);
            return Err(Error::value("weight_decay", range("a number"), wd));
        }
        if let Some(c) = self.clip_grad_norm {
            // Its factor is computed in float64, but one that is 0 in T would zero every step.
            positive_in::<T>("clip_grad_norm", c)?;
        }
        if self.optimizer == OptimizerKind::RmsProp && in_t(self.alpha) >= 1.0 {
            // 1 − α would be 0 in T: the mean square would never leave 0.
            let expected = format!("a number that stays below 1 in {}", T::NAME);
            return Err(Error::value("alpha", expected, fmt_num(&self.alpha)));
        }
        if self.optimizer != OptimizerKind::Sgd && in_t(self.eps) == 0.0 {
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
        let (beta1, beta2, eps) = (self.betas.0, self.betas.1, self.eps);
        match self.optimizer {
            OptimizerKind::Sgd => Optimizer::Sgd {
                momentum: self.momentum,
                nesterov: self.nesterov,
            },
            OptimizerKind::Adam => Optimizer::Adam { beta1, beta2, eps },
            OptimizerKind::AdamW => Optimizer::AdamW { beta1, beta2, eps },
            OptimizerKind::RmsProp => Optimizer::RmsProp {
                alpha: self.alpha,
                eps,
                momentum: self.momentum,
            },
        }
    }

    /// Epochs of warm-up as a count (after [`FitConfig::validate`]).
    pub(crate) fn warmup(&self) -> u32 {
        u32::try_from(self.warmup_epochs.max(0)).unwrap_or(u32::MAX)
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
        let bad: [(&str, Spoil); 24] = [
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
            ("alpha", |c| c.alpha = 1.0),
            ("alpha", |c| c.alpha = -0.1),
            ("clip_grad_norm", |c| c.clip_grad_norm = Some(0.0)),
            ("clip_grad_norm", |c| c.clip_grad_norm = Some(f64::INFINITY)),
            ("lr_min", |c| c.lr_min = -1e-3),
            ("lr_min", |c| c.lr_min = c.lr),
            ("warmup_epochs", |c| c.warmup_epochs = -1),
            ("lr_decay", |c| {
                c.schedule = Schedule::Cosine;
                c.lr_decay = 0.9;
            }),
            ("warmup_epochs", |c| {
                c.schedule = Schedule::Cosine;
                c.warmup_epochs = c.epochs;
            }),
            ("eps", |c| {
                c.optimizer = OptimizerKind::RmsProp;
                c.eps = -1.0;
            }),
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
        // A warm-up as long as the fit is fine without the cosine, and the cosine's bounds
        // only bind a fit that has epochs.
        let warm = FitConfig {
            warmup_epochs: 10,
            ..FitConfig::default()
        };
        assert!(warm.validate().is_ok());
        let none = FitConfig {
            epochs: 0,
            warmup_epochs: 3,
            schedule: Schedule::Cosine,
            ..FitConfig::default()
        };
        assert!(none.validate().is_ok());
    }

    #[test]
    fn settings_must_be_representable_in_the_models_dtype() {
        type Spoil = fn(&mut FitConfig);
        let bad: [(&str, Spoil); 8] = [
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
            ("clip_grad_norm", |c| c.clip_grad_norm = Some(1e-50)),
            ("eps", |c| {
                c.optimizer = OptimizerKind::RmsProp;
                c.eps = 1e-46;
            }),
            ("alpha", |c| {
                c.optimizer = OptimizerKind::RmsProp;
                c.alpha = 1.0 - 1e-10;
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
        for kind in [OptimizerKind::AdamW, OptimizerKind::RmsProp] {
            assert_eq!(OptimizerKind::from_name(kind.name()).unwrap(), kind);
        }
        assert!(
            OptimizerKind::from_name("adagrad")
                .unwrap_err()
                .to_string()
                .starts_with("optimizer: expected one of sgd, adam, adamw, rmsprop")
        );
        assert_eq!(Schedule::from_name("adaptive").unwrap(), Schedule::Adaptive);
        assert_eq!(Schedule::from_name("cosine").unwrap(), Schedule::Cosine);
        assert!(Schedule::from_name("cyclic").is_err());
    }
}
