//! The daemons as child processes, with what `/proc` tells about them: CPU time and peak
//! resident memory. A child is stopped (SIGTERM, then SIGKILL) when its handle drops.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    /// Its name, for messages.
    pub name: String,
    child: Child,
    /// Where its log goes.
    pub log: PathBuf,
}

/// CPU and memory use read from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident set, bytes.
    pub peak_rss: u64,
}

impl Daemon {
    /// Starts `binary --policy policy` with its output in `log`.
    pub fn spawn(binary: &Path, policy: &Path, log: &Path, extra: &[&str]) -> io::Result<Daemon> {
        let out = File::create(log)?;
        let err = out.try_clone()?;
        let child = Command::new(binary)
            .arg("--policy")
            .arg(policy)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {}: {e}", binary.display())))?;
        Ok(Daemon {
            name: binary
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            child,
            log: log.to_owned(),
        })
    }

    /// Starts it like [`Daemon::spawn`] and waits up to 20 s for `ready` in its log; the error
    /// carries the log when it does not come.
    pub fn spawn_ready(
        binary: &Path,
        policy: &Path,
        log: &Path,
        extra: &[&str],
        ready: &str,
    ) -> io::Result<Daemon> {
        let daemon = Self::spawn(binary, policy, log, extra)?;
        if super::drive::wait_for_log(log, ready, Duration::from_secs(20)) {
            Ok(daemon)
        } else {
            Err(io::Error::other(format!(
                "{} did not log {ready:?}:\n{}",
                binary.display(),
                daemon.log_text()
            )))
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// CPU time and peak RSS so far.
    pub fn usage(&self) -> Usage {
        usage(self.pid())
    }

    /// Sends it a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) -> io::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill -{name} {} failed", self.pid())))
        }
    }

    /// Asks it to stop (SIGTERM) and waits up to `grace`, then kills it.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.running() {
            self.stop(Duration::from_secs(3));
        }
    }
}

/// CPU time and peak RSS of process `pid` from `/proc`.
pub fn usage(pid: u32) -> Usage {
    let mut u = Usage::default();
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Fields after the command name (which may hold spaces) start after the last ')'.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
            // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
            u.cpu_seconds = (ticks(11) + ticks(12)) / 100.0;
        }
    }
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("VmHWM:") {
                u.peak_rss = v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0) * 1024;
            }
        }
    }
    u
}

/// The path of a sibling binary of the running executable (they are built together).
pub fn sibling_binary(name: &str) -> io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "executable has no directory"))?;
    // Under `cargo test` the test binary lives in target/*/deps; the daemons one level up.
    for candidate in [dir.join(name), dir.join("..").join(name)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{name} not found next to {}; build it with `cargo build --release`",
            me.display()
        ),
    ))
}
