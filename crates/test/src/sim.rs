//! Seeded simulations on paused tokio time: the seeds to run and a fresh
//! runtime for each.

use std::ops::Range;

/// The seeds of a seeded simulation: `0..n`, where `n` is the environment
/// variable `var` if it holds a number, else `default` (so CI runs the
/// default and a developer can ask for more).
pub fn seeds(var: &str, default: u64) -> Range<u64> {
    let n = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    0..n
}

/// A current-thread runtime whose time starts paused: one per seed, so
/// that no state or timer leaks from one seed's run into the next.
///
/// # Panics
///
/// If tokio cannot build the runtime (out of resources).
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread tokio runtime")
}
