//! Runtime dispatch of elementwise loops to wider vector instructions.
//!
//! The wheel is built for baseline x86-64 (SSE2), which leaves most of a modern core's vector
//! width unused in the elementwise passes: bias and activation, optimizer updates, gradient
//! sums. [`wide`] runs a loop compiled a second time with AVX2 enabled when the CPU has it.
//! No fused multiply-add is enabled, and no sum is reordered, so both builds of a loop give
//! the same bits: only their speed differs.

/// Runs `f`, compiled for AVX2 when the CPU supports it. `f` should be an `#[inline(always)]`
/// closure so that its body is compiled into the AVX2 function.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
