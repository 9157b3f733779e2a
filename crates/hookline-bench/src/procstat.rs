//! What a process costs, read from `/proc`: CPU time (`stat` utime +
//! stime) and resident memory (`status` VmRSS now, VmHWM at its peak).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// One reading of one process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Resident set size now, in KiB.
    pub rss_kib: u64,
    /// Peak resident set size so far (VmHWM), in KiB.
    pub hwm_kib: u64,
}

/// Clock ticks per second of `stat`'s CPU fields (`getconf CLK_TCK`, 100
/// when that cannot be asked: the value on every Linux we run on).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// Reads `pid`'s CPU time and memory; `None` once the process is gone.
pub fn sample(pid: u32, ticks_per_second: u64) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields are counted
    // from the last `)`. After it come state (field 3), …, utime (14), stime (15).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = utime + stime;
    let cpu = Duration::from_secs(ticks / ticks_per_second)
        + Duration::from_nanos((ticks % ticks_per_second) * 1_000_000_000 / ticks_per_second);
    let mut sample = Sample {
        cpu,
        ..Sample::default()
    };
    // VmRSS/VmHWM are absent for kernel threads and zombies: zero then.
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        for line in status.lines() {
            let kib = || {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("VmRSS:") {
                sample.rss_kib = kib();
            } else if line.starts_with("VmHWM:") {
                sample.hwm_kib = kib();
            }
        }
    }
    Some(sample)
}

/// Per process, `(when, RSS KiB)` samples.
type Series = Vec<Vec<(Instant, u64)>>;

/// RSS of each watched process once a second, for telling a flat footprint
/// from a leak.
pub struct RssSeries {
    series: Arc<Mutex<Series>>,
    task: JoinHandle<()>,
}

impl RssSeries {
    /// Starts sampling `pids` every `every`.
    pub fn start(pids: Vec<u32>, every: Duration, ticks_per_second: u64) -> Self {
        let series = Arc::new(Mutex::new(vec![Vec::new(); pids.len()]));
        let shared = series.clone();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                let at = Instant::now();
                let readings: Vec<Option<Sample>> = pids
                    .iter()
                    .map(|pid| sample(*pid, ticks_per_second))
                    .collect();
                if let Ok(mut series) = shared.lock() {
                    for (points, reading) in series.iter_mut().zip(readings) {
                        if let Some(reading) = reading {
                            points.push((at, reading.rss_kib));
                        }
                    }
                }
            }
        });
        Self { series, task }
    }

    /// RSS of process `index` (KiB) at the last sample at or before `at`.
    pub fn rss_at(&self, index: usize, at: Instant) -> Option<u64> {
        let series = self.series.lock().ok()?;
        series
            .get(index)?
            .iter()
            .take_while(|(t, _)| *t <= at)
            .last()
            .map(|(_, rss)| *rss)
    }
}

impl Drop for RssSeries {
    fn drop(&mut self) {
        self.task.abort();
    }
}
