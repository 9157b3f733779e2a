//! Locking shared in-memory state.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, going on past a panic elsewhere: the state guarded here
/// (lanes, notes, in-flight times) stays consistent at every await point,
/// so one panicked task must not stop every later send.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
