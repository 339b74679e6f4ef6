//! Buffers whose size comes from the user: sized with checked arithmetic and allocated
//! fallibly.
//!
//! Rust's `vec!` aborts the process when the allocator refuses, and a size product that
//! overflows `usize` silently wraps in release builds. Every buffer sized by a layer width,
//! a batch or a row count therefore comes from here: a size that overflows is
//! [`Error::Value`] naming what it was for, memory the allocator will not give is
//! [`Error::Memory`] (Python's `MemoryError`), and neither ever aborts.

use std::alloc::{Layout, alloc_zeroed};

use crate::error::{Error, Result};

/// Element types whose all-zero bit pattern is the value zero (or `false`), so that zeroed
/// memory is a valid, initialized buffer of them.
///
/// # Safety
/// Implement only for types for which every byte being 0 is a valid value.
pub unsafe trait Zeroed: Copy {}

// SAFETY: zero bits are 0.0, 0 and false.
unsafe impl Zeroed for f32 {}
unsafe impl Zeroed for f64 {}
unsafe impl Zeroed for u8 {}
unsafe impl Zeroed for u32 {}
unsafe impl Zeroed for u64 {}
unsafe impl Zeroed for usize {}
unsafe impl Zeroed for bool {}

/// `a · b`, or an error naming `what` when the product overflows.
pub fn product(a: usize, b: usize, what: &str) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| {
        Error::value(
            what,
            "sizes whose product fits in memory",
            format!("{a} × {b}"),
        )
    })
}

/// Checks that a tensor of these dimensions can be addressed in float64: the product of the
/// dimensions, times 8 bytes, fits in `isize` (what any allocation must). Errors name `arg`.
pub fn check_dims(dims: &[usize], arg: &str) -> Result<usize> {
    let n = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match n {
        Some(n) if n.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize) => Ok(n),
        _ => Err(Error::value(
            arg,
            "sizes whose product fits in memory",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(" × "),
        )),
    }
}

/// `n` zeros (or `false`s), or an error instead of an abort.
pub fn zeros<T: Zeroed>(n: usize, what: &str) -> Result<Vec<T>> {
    if n == 0 || size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let layout = Layout::array::<T>(n).map_err(|_| too_large::<T>(n, what))?;
    // SAFETY: the layout has a nonzero size (n > 0, T not zero-sized).
    let ptr = unsafe { alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(Error::Memory {
            what: what.to_owned(),
            bytes: layout.size(),
        });
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `[T; n]`, its
    // `n` elements are initialized (zero bits are a valid T, by `Zeroed`), and the Vec takes
    // ownership with capacity `n`.
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// `rows × cols` zeros, the product checked.
pub fn zeros2<T: Zeroed>(rows: usize, cols: usize, what: &str) -> Result<Vec<T>> {
    zeros(product(rows, cols, what)?, what)
}

/// A copy of `src`, or an error instead of an abort.
pub fn copied<T: Copy>(src: &[T], what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(src.len()).map_err(|_| Error::Memory {
        what: what.to_owned(),
        bytes: src.len().saturating_mul(size_of::<T>()),
    })?;
    v.extend_from_slice(src);
    Ok(v)
}

/// `0, 1, …, n − 1`.
pub fn range(n: usize, what: &str) -> Result<Vec<usize>> {
    let mut v = zeros::<usize>(n, what)?;
    for (i, x) in v.iter_mut().enumerate() {
        *x = i;
    }
    Ok(v)
}

fn too_large<T>(n: usize, what: &str) -> Error {
    Error::value(
        what,
        "a size that fits in memory",
        format!("{n} elements of {} bytes", size_of::<T>()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_cannot_be_allocated_are_errors() {
        assert!(matches!(
            product(1 << 40, 1 << 40, "w"),
            Err(Error::Value { .. })
        ));
        assert!(matches!(
            zeros::<f64>(usize::MAX / 4, "w"),
            Err(Error::Value { .. })
        ));
        // Representable, but more than any machine has: the allocator refuses.
        assert!(matches!(
            zeros::<f32>(1 << 60, "w"),
            Err(Error::Memory { .. })
        ));
        assert!(matches!(
            zeros2::<f32>(1 << 40, 1 << 40, "w"),
            Err(Error::Value { .. })
        ));
    }

    #[test]
    fn buffers_are_zeroed_and_copies_equal() {
        let z = zeros::<f32>(1000, "z").unwrap();
        assert!(z.iter().all(|&v| v == 0.0) && z.len() == 1000);
        assert_eq!(copied(&[1.0, 2.0], "c").unwrap(), vec![1.0, 2.0]);
        assert_eq!(range(4, "r").unwrap(), vec![0, 1, 2, 3]);
        assert!(zeros::<u8>(0, "e").unwrap().is_empty());
    }
}
