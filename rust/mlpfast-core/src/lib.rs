//! mlpfast-core: dense multilayer perceptrons in pure Rust.
//!
//! A network maps a batch x (N, in) through blocks `a_l = f(a_{l-1} · W_l + b_l)` (or maxout)
//! to scores (N, out), which a loss compares with the targets. Backpropagation applies the
//! chain rule block by block, in reverse:
//!
//! ```text
//! dW_l = a_{l-1}ᵀ · δ_l      db_l = Σ_rows δ_l      δ_{l-1} = (δ_l · W_lᵀ) ⊙ f'(a_{l-1})
//! ```
//!
//! and an optimizer (SGD, momentum, Nesterov, Adam) steps every parameter. The crate offers
//! both levels the Python package shows: stand-alone layers with `forward`/`backward`
//! ([`Linear`], [`Maxout`], [`BatchNorm`], [`Dropout`], [`Activation`], [`Loss`]) and a whole training run in one call
//! ([`train::fit`]) over a [`Spec`], with buffers allocated once per run. A run's settings
//! are one [`FitConfig`] (checked in one place); what it changes besides the parameters —
//! optimizer state, learning rate, stopping rule, samples seen, history — is its
//! [`Session`]'s, kept from one fit to the next.
//!
//! Every kernel is generic over [`Float`] (f32, f64). Matrix products go through [`gemm`]
//! (the module) to faer's kernel, one product per thread; a training step is cut into
//! independent products and passes by the shapes alone (the `step` module), so results do
//! not depend on the thread count. Who computes them is decided at run time: [`threads`]
//! holds the limit, [`pool`] the parked worker threads and the budget of cores that
//! concurrent calls share, `team` one call's threads, and `pace` when a fit's helpers pay.

pub mod activation;
pub mod alloc;
pub mod batchnorm;
pub mod config;
pub mod dropout;
pub mod error;
pub mod float;
mod forward;
pub mod gemm;
pub mod linear;
pub mod loss;
pub mod matrix;
pub mod maxout;
pub mod metrics;
pub mod network;
pub mod norm_layer;
mod norm_sums;
pub mod optim;
mod pace;
mod persist;
pub mod pool;
pub mod rng;
pub mod session;
pub mod simd;
mod step;
mod team;
pub mod threads;
pub mod train;
pub mod vmath;

pub use activation::Activation;
pub use config::{FitConfig, OptimizerKind, Schedule};
pub use dropout::Dropout;
pub use error::{Error, Result};
pub use float::Float;
pub use linear::Linear;
pub use loss::{Loss, Targets};
pub use matrix::MatRef;
pub use maxout::Maxout;
pub use network::{Block, Hidden, Params, ParamsMut, ParamsRef, Spec};
pub use norm_layer::BatchNorm;
pub use optim::{OptimState, Optimizer};
pub use rng::{Init, Rng};
pub use session::{EpochRecord, History, Session};
pub use train::{EpochReport, Examples, Monitor};
