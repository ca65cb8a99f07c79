//! What Linux's `/proc` says about a process and the machine.
//!
//! CPU time is `utime + stime` of `/proc/<pid>/stat` (all threads of the process, including
//! those that have exited), in clock ticks of `getconf CLK_TCK` (100 on Linux). Memory is
//! `VmRSS` (now) and `VmHWM` (peak resident set since start) of `/proc/<pid>/status`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Clock ticks per second for `/proc/<pid>/stat` times.
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// The state letter (`R`, `S`, `Z`, …) and `utime + stime` in ticks of a process.
pub fn state_and_cpu_ticks(pid: u32) -> Result<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("parse /proc/<pid>/stat: no ')'")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    if fields.len() < 13 {
        bail!("parse /proc/{pid}/stat: {} fields", fields.len() + 2);
    }
    let state = fields[0].chars().next().unwrap_or('?');
    let utime: u64 = fields[11].parse().context("parse utime")?;
    let stime: u64 = fields[12].parse().context("parse stime")?;
    Ok((state, utime + stime))
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32, ticks_per_second: u64) -> Result<f64> {
    Ok(state_and_cpu_ticks(pid)?.1 as f64 / ticks_per_second as f64)
}

/// `(VmRSS, VmHWM)` in bytes.
pub fn rss_and_peak_bytes(pid: u32) -> Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let kib = |name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("/proc/{pid}/status has no {name}"))?;
        let value = line[name.len()..].trim().trim_end_matches("kB").trim();
        Ok(value
            .parse::<u64>()
            .with_context(|| format!("parse {name}"))?
            * 1024)
    };
    Ok((kib("VmRSS:")?, kib("VmHWM:")?))
}

/// The machine, for the report.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_bytes: u64,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l["MemTotal:".len()..]
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    Machine {
        cpus,
        cpu_model,
        memory_bytes,
        kernel,
    }
}

/// The file system type and device that `path` lives on (the longest matching mount point).
pub fn filesystem_of(path: &Path) -> String {
    let Ok(path) = path.canonicalize() else {
        return "unknown".into();
    };
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, point, fstype) = (it.next()?, it.next()?, it.next()?);
            path.starts_with(point)
                .then(|| (point.len(), format!("{fstype} ({dev} on {point})")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, s)| s)
        .unwrap_or_else(|| "unknown".into())
}

/// Bytes and count of the files under `dir` (apparent sizes, recursively); 0 if it is absent.
pub fn dir_bytes_and_files(dir: &Path) -> Result<(u64, u64)> {
    let mut bytes = 0;
    let mut files = 0;
    if !dir.exists() {
        return Ok((0, 0));
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("list {}", d.display()))? {
            let entry = entry.with_context(|| format!("list {}", d.display()))?;
            let meta = entry
                .metadata()
                .with_context(|| format!("stat {}", entry.path().display()))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                bytes += meta.len();
                files += 1;
            }
        }
    }
    Ok((bytes, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        let (state, _) = state_and_cpu_ticks(pid).expect("stat");
        assert!(state != 'Z' && state != 'X', "state {state}");
        let (rss, peak) = rss_and_peak_bytes(pid).expect("status");
        assert!(rss > 0 && peak >= rss);
    }
}
