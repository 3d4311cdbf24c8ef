//! Running the real binaries: on this host or inside a network namespace (`ip netns
//! exec NS`, which execs the program, so the child's pid is the program's), one-shot
//! commands that must succeed, and long-running processes that are killed on drop.
//! Both are registered in `cleanup` while they run.

use crate::cleanup;
use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// Where a program runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Host,
    Netns(String),
}

impl Place {
    pub fn command(&self, program: &Path) -> Command {
        match self {
            Place::Host => Command::new(program),
            Place::Netns(ns) => {
                let mut c = Command::new("ip");
                c.args([OsStr::new("netns"), OsStr::new("exec"), OsStr::new(ns)])
                    .arg(program);
                c
            }
        }
    }
}

/// Runs `program args` in `dir` at `place`; returns its stdout, or fails with its last
/// stderr line.
pub fn run_ok(place: &Place, dir: &Path, program: &Path, args: &[&str]) -> Result<String> {
    let out = cleanup::output(
        place
            .command(program)
            .current_dir(dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null()),
    )
    .with_context(|| format!("cannot run {}", program.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        bail!(
            "`{} {}` failed ({}): {}",
            name(program),
            args.join(" "),
            out.status,
            last.unwrap_or("no message")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn name(program: &Path) -> String {
    program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.display().to_string())
}

/// A long-running child process, registered for cleanup, killed when dropped. Its
/// stderr goes to `log`.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdin closed and stderr to `log` (stdout as `cmd` says).
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Result<Proc> {
        let file = std::fs::File::create(&log)
            .with_context(|| format!("{}: cannot create the log", log.display()))?;
        cmd.stdin(Stdio::null()).stderr(file);
        let child = cleanup::spawn(cmd).with_context(|| format!("cannot start {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        cleanup::reap(&mut self.child).with_context(|| format!("cannot wait for {}", self.name))
    }

    /// The last non-empty line of its log, to say why it stopped.
    pub fn last_log_line(&self) -> String {
        std::fs::read_to_string(&self.log)
            .ok()
            .and_then(|t| {
                t.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| format!("nothing in {}", self.log.display()))
    }

    /// Fails if the process has exited, with its status and last log line.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.exited()? {
            bail!(
                "{} exited ({status}) while it should run: {}",
                self.name,
                self.last_log_line()
            );
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        cleanup::kill(&mut self.child);
    }
}
