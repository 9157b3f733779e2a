//! Scratch directories for the servers a fault test owns, and the sweep of
//! those a killed test process left behind.
//!
//! Each directory is named `<test pid>-<n>-<kind>` under
//! `$TMPDIR/hookline-faults`, and holds a `server.pid` file once its server
//! runs. A test that panics cleans up in `Drop`; one that is killed (a
//! nextest timeout) cannot, so every new directory first sweeps those whose
//! test process is gone, killing their server only after checking that the
//! process's command line names that very directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where every scratch directory lives.
fn base() -> PathBuf {
    std::env::temp_dir().join("hookline-faults")
}

/// A fresh directory for one server of this test process.
pub(crate) fn new_dir(kind: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    sweep_stale();
    let base = base();
    std::fs::create_dir_all(&base).expect("create the fault scratch base");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{}-{n}-{kind}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a fault scratch directory");
    dir
}

/// Records the OS pid of the server living in `dir`.
pub(crate) fn record_server_pid(dir: &Path, pid: u32) {
    let _ = std::fs::write(dir.join("server.pid"), pid.to_string());
}

/// Kills the server recorded in `dir` (if it is still that server) and
/// removes the directory.
pub(crate) fn destroy(dir: &Path) {
    if let Some(pid) = server_pid(dir) {
        kill_if_owned(pid, dir);
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn server_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("server.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// SIGKILLs `pid` only when its command line mentions `dir`: a recycled pid
/// belongs to somebody else and is left alone.
fn kill_if_owned(pid: u32, dir: &Path) {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if cmdline.contains(&*dir.to_string_lossy()) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
}

/// Removes the directories of test processes that no longer run.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(base()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists() {
            destroy(&entry.path());
        }
    }
}
