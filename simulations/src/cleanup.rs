//! Everything a run leaves outside its own memory — child processes, network
//! namespaces, a temporary folder — is registered here before it is made, and removed
//! when the run's [`Guard`] drops (success or error) or when SIGINT, SIGTERM or SIGHUP
//! arrives (the handler removes it all, then exits 130).
//!
//! A process is registered by pid from spawn until it is reaped, and it is only reaped
//! under the registry's lock ([`reap`]), so the handler never signals a pid the kernel
//! could have given to someone else.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, Once};

#[derive(Default)]
struct Items {
    pids: Vec<u32>,
    netns: Vec<String>,
    dirs: Vec<PathBuf>,
    /// Set once the handler ran: anything registered after that is removed at once.
    stopping: bool,
}

static ITEMS: Mutex<Items> = Mutex::new(Items {
    pids: Vec::new(),
    netns: Vec::new(),
    dirs: Vec::new(),
    stopping: false,
});

fn items() -> MutexGuard<'static, Items> {
    // A panic while holding the lock leaves the lists usable: recover them.
    ITEMS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes everything registered when dropped. Make one at the start of a run, before
/// anything is created; it also installs the signal handler.
#[must_use = "cleanup happens when the guard drops"]
pub struct Guard(());

pub fn guard() -> Result<Guard> {
    static HANDLER: Once = Once::new();
    let mut installed = Ok(());
    HANDLER.call_once(|| {
        installed = ctrlc::set_handler(|| {
            let mut items = items();
            items.stopping = true;
            remove_all(&mut items);
            drop(items);
            eprintln!("shoal-sim: interrupted; its processes, namespaces and files are removed");
            std::process::exit(130);
        });
    });
    installed.context("cannot install the Ctrl-C/SIGTERM handler")?;
    Ok(Guard(()))
}

impl Drop for Guard {
    fn drop(&mut self) {
        remove_all(&mut items());
    }
}

/// Spawns `cmd` and registers the child; a run that is stopping refuses to.
pub fn spawn(cmd: &mut Command) -> Result<Child> {
    let mut items = items();
    if items.stopping {
        anyhow::bail!("stopping: no new process started");
    }
    let child = cmd.spawn()?;
    items.pids.push(child.id());
    Ok(child)
}

/// `child.try_wait()` under the lock; a child that exited is unregistered as it is
/// reaped.
pub fn reap(child: &mut Child) -> std::io::Result<Option<ExitStatus>> {
    let mut items = items();
    let status = child.try_wait()?;
    if status.is_some() {
        items.pids.retain(|p| *p != child.id());
    }
    Ok(status)
}

/// Kills and reaps `child` (SIGKILL: these are our own test processes, and nothing they
/// hold is kept).
pub fn kill(child: &mut Child) {
    let mut items = items();
    let _ = child.kill();
    let _ = child.wait();
    items.pids.retain(|p| *p != child.id());
}

/// Registers a namespace before it is created (a failed `ip netns add` makes the
/// later `ip netns del` a harmless no-op).
pub fn netns(name: &str) {
    items().netns.push(name.to_string());
}

/// Registers a folder to remove, unless `SHOAL_SIM_KEEP` is set (to read the
/// processes' logs after a failure; the folder is named on stderr).
pub fn dir(path: PathBuf) {
    if std::env::var_os("SHOAL_SIM_KEEP").is_some() {
        eprintln!(
            "shoal-sim: SHOAL_SIM_KEEP is set: {} is kept",
            path.display()
        );
        return;
    }
    items().dirs.push(path);
}

fn remove_all(items: &mut Items) {
    for pid in items.pids.drain(..) {
        // SAFETY: kill(2) on a pid that is our unreaped child (see the module doc).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    for ns in items.netns.drain(..).rev() {
        remove_netns(&ns);
    }
    for d in items.dirs.drain(..) {
        // A process killed just now may still be closing files: try a few times.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&d).is_ok() || !d.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Deletes namespace `ns` after killing whatever still runs in it (only processes this
/// run started can be there: the namespace is ours).
fn remove_netns(ns: &str) {
    let quiet = |c: &mut Command| c.stdout(Stdio::piped()).stderr(Stdio::null()).output();
    if let Ok(out) = quiet(Command::new("ip").args(["netns", "pids", ns])) {
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<libc::pid_t>().ok())
        {
            // SAFETY: kill(2) on a process inside a namespace this run created.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = quiet(Command::new("ip").args(["netns", "del", ns]));
}
