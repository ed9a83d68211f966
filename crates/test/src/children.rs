//! What chaos tests that re-execute their own binary share: the runtime a
//! child runs on, and signals to a child.

use std::process::Child;

pub use rustix::process::Signal;

/// The runtime a child process runs its part on: two worker threads, as
/// on the machines the tests run on. The child also exits as soon as its
/// parent (the test) is gone, so a test killed midway leaves no children
/// behind.
///
/// # Panics
///
/// If the runtime cannot be built (no threads left).
pub fn runtime() -> tokio::runtime::Runtime {
    // The kernel kills this child when the test's thread that spawned it
    // ends; a parent already gone before this call is caught by its pid.
    let parent = rustix::process::getppid();
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    if rustix::process::getppid() != parent {
        std::process::exit(1);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a child's runtime")
}

/// Sends `signal` to `child` (SIGSTOP, SIGCONT, …); a child that is gone
/// is left alone.
pub fn signal(child: &Child, signal: Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}
