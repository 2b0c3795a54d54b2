//! CPU time of a process from /proc, so that each figure comes with what it
//! cost: calls per second swing with whatever else runs on a shared machine,
//! CPU time per call much less.

use std::time::Duration;

use anyhow::Context as _;

/// Linux reports utime and stime in USER_HZ ticks, which is 100 on every
/// architecture the kernel's userspace ABI fixes it for (x86, arm).
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of all threads of `pid` (this process when `None`).
pub fn process_cpu_time(pid: Option<u32>) -> anyhow::Result<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_stat(&stat).with_context(|| format!("{path} does not have the utime and stime fields"))
}

fn parse_stat(stat: &str) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may contain spaces;
    // fields are counted from the last ')'. utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / TICKS_PER_SECOND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_an_awkward_name() {
        let stat = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 1 2 3";
        assert_eq!(parse_stat(stat), Some(Duration::from_millis(3250)));
        assert!(process_cpu_time(None).is_ok());
    }
}
