//! CPU time and resident memory of a process, read from /proc (Linux).

use std::time::{Duration, Instant};

/// One reading.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub at: Instant,
    /// User + system CPU time.
    pub cpu: Duration,
    pub rss_bytes: u64,
}

fn ticks_per_second() -> u64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
    100
}

/// Reads /proc/PID/stat and /proc/PID/statm.
pub fn sample(pid: u32) -> std::io::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    // rest[0] is state (field 3); utime is field 14, stime 15 -> indexes 11 and 12 here.
    let ticks = num(11) + num(12);
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(ProcSample {
        at: Instant::now(),
        cpu: Duration::from_millis(ticks * 1000 / ticks_per_second()),
        rss_bytes: pages * 4096,
    })
}

/// CPU used between two samples as a share of one core.
pub fn core_share(a: &ProcSample, b: &ProcSample) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (b.cpu.saturating_sub(a.cpu)).as_secs_f64() / wall
}

/// The whole machine's CPU counters (all cores), from the first line of /proc/stat.
#[derive(Debug, Clone, Copy)]
pub struct MachineSample {
    pub busy_ticks: u64,
    pub total_ticks: u64,
}

pub fn machine() -> std::io::Result<MachineSample> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or("");
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    Ok(MachineSample {
        busy_ticks: total - idle,
        total_ticks: total,
    })
}

/// The machine's busy share (0..1 of all its cores) between two samples.
pub fn machine_busy(a: &MachineSample, b: &MachineSample) -> f64 {
    let total = b.total_ticks.saturating_sub(a.total_ticks);
    if total == 0 {
        return 0.0;
    }
    b.busy_ticks.saturating_sub(a.busy_ticks) as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 1_000_000);
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let t = sample(std::process::id()).unwrap();
        assert!(t.cpu >= s.cpu);
        let m = machine().unwrap();
        assert!(m.total_ticks > 0 && m.busy_ticks <= m.total_ticks);
    }
}
