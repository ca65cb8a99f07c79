//! What every report shares: the units and number formats, the setting of a run (machine,
//! date, commit, versions, the command) and appending the Markdown to a file (the "Results"
//! section of `docs/benchmarks.md`).
//!
//! Units: MB is 10^6 bytes, MiB 2^20; CPU seconds are the server process's user + system
//! time; "per CPU-second" divides by those, "per second" by wall time.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::procfs::Machine;

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// `12345678.9` → `12,345,679`.
pub fn thousands(x: f64) -> String {
    let n = x.round() as i128;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The `p` quantile (0..=1) of sorted values, nearest rank; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The median of some runs' milliseconds (the upper one of an even count).
pub fn median(runs: &[f64]) -> Option<f64> {
    let mut v = runs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// `12.3`, or `-` for none.
pub fn opt_ms(v: Option<f64>) -> String {
    v.map(|ms| format!("{ms:.1}")).unwrap_or_else(|| "-".into())
}

/// `2 CPUs (AMD EPYC), 23.5 GiB memory, Linux 6.1`.
pub fn machine_text(m: &Machine) -> String {
    format!(
        "{} CPUs ({}), {:.1} GiB memory, Linux {}",
        m.cpus,
        m.cpu_model,
        mib(m.memory_bytes) / 1024.0,
        m.kernel
    )
}

fn command_output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `git rev-parse --short HEAD`, with `+dirty` when tracked files have changes.
pub fn git_commit() -> String {
    let Some(hash) = command_output(Command::new("git").args(["rev-parse", "--short", "HEAD"]))
    else {
        return "unknown".into();
    };
    let dirty =
        command_output(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]))
            .is_some_and(|s| !s.is_empty());
    if dirty { format!("{hash}+dirty") } else { hash }
}

/// The first line `bin <version_flag>` prints (stdout or stderr), or `version unknown`.
pub fn version_of(bin: &Path, version_flag: &str) -> String {
    let Ok(out) = Command::new(bin).arg(version_flag).output() else {
        return "version unknown".into();
    };
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "version unknown".into())
}

/// This process's command line, as typed (arguments with spaces or quotes single-quoted).
pub fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints the report and appends it to `out`, when given.
pub fn print_and_append(text: &str, out: Option<&Path>) -> Result<()> {
    println!("{text}");
    if let Some(out) = out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .with_context(|| format!("open {}", out.display()))?;
        writeln!(f, "\n{}", text.trim_end())
            .with_context(|| format!("append to {}", out.display()))?;
        eprintln!("appended the report to {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(12_345_678.9), "12,345,679");
    }

    #[test]
    fn takes_the_median() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(3.0));
    }
}
