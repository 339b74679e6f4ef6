//! The one error type of the core. Every failure is a value, never a panic.
//!
//! Messages name the argument and give the expected and the actual value, so that the
//! binding crate can raise them as they are.

use thiserror::Error;

/// Everything that can go wrong in the core.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// An argument has the wrong shape.
    #[error("{arg}: expected shape {expected}, got {actual}")]
    Shape {
        /// The argument's name, as the user wrote it.
        arg: String,
        /// The expected shape, e.g. "(N, 784)".
        expected: String,
        /// The shape received, e.g. "(64, 10)".
        actual: String,
    },
    /// An argument has a value outside its domain.
    #[error("{arg}: expected {expected}, got {actual}")]
    Value {
        /// The argument's name.
        arg: String,
        /// What is accepted, e.g. "a positive finite number".
        expected: String,
        /// What was received.
        actual: String,
    },
    /// The allocator refused a buffer (the size is valid, the machine lacks the memory).
    #[error("{what}: cannot allocate {bytes} bytes")]
    Memory {
        /// What the buffer was for, e.g. "weights".
        what: String,
        /// Its size.
        bytes: usize,
    },
    /// Training diverged: a loss or a parameter became infinite or NaN.
    #[error(
        "training diverged at epoch {epoch} (step {step} of the fit): {what}; the model keeps \
         the weights of the last step before it. Try a smaller learning rate (lr={}).",
        fmt_num(.lr)
    )]
    Diverged {
        /// The epoch (from 1) of the failing step.
        epoch: usize,
        /// The failing step, counted from 1 over the fit.
        step: usize,
        /// What became non-finite, e.g. "the training loss is inf".
        what: String,
        /// The learning rate of that step.
        lr: f64,
    },
    /// A call came in the wrong order (backward before forward).
    #[error("{0}")]
    State(String),
    /// The caller's control callback asked training to stop (e.g. Ctrl-C).
    #[error("training interrupted")]
    Interrupted,
}

/// Result with the core's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A [`Error::Shape`] error.
    pub fn shape(arg: &str, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Error::Shape {
            arg: arg.to_owned(),
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    /// A [`Error::Value`] error.
    pub fn value(arg: &str, expected: impl Into<String>, actual: impl ToString) -> Self {
        Error::Value {
            arg: arg.to_owned(),
            expected: expected.into(),
            actual: actual.to_string(),
        }
    }
}

/// Formats a number as Python prints it, near enough: `0.01`, `10`, `1e39`, `1e-46`.
pub fn fmt_num(v: &f64) -> String {
    let a = v.abs();
    if a == 0.0 || (1e-4..1e16).contains(&a) || !a.is_finite() {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Formats a shape as numpy prints it: `(3,)`, `(64, 10)`.
pub fn fmt_shape(dims: &[usize]) -> String {
    match dims {
        [d] => format!("({d},)"),
        _ => {
            let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_argument_expected_and_actual() {
        let e = Error::shape("x", "(N, 3)", fmt_shape(&[4, 2]));
        assert_eq!(e.to_string(), "x: expected shape (N, 3), got (4, 2)");
        assert_eq!(fmt_shape(&[5]), "(5,)");
        let e = Error::value("lr", "a positive finite number", -1.0);
        assert_eq!(
            e.to_string(),
            "lr: expected a positive finite number, got -1"
        );
    }
}
