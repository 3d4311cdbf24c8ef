//! Everything a run leaves outside its own memory — child processes, network
//! namespaces, a temporary folder — is made and registered here, and removed when the
//! run's [`Guard`] drops (success or error) or when SIGINT, SIGTERM or SIGHUP arrives
//! (the handler removes it all, then exits 130).
//!
//! Each item is made and registered under the registry's lock ([`spawn`], [`output`],
//! [`netns`], [`tempdir`]), and the handler takes that lock before it removes anything
//! and keeps it until the process has exited. So the handler runs either before an item
//! is made (the run then waits at that item until the process exits: nothing is made
//! after the handler ran) or after it is made and registered (and removes it); never
//! in between, where a namespace or a folder would be made that nobody removes.
//!
//! A process is registered by pid from spawn until it is reaped, and it is only reaped
//! under the lock ([`reap`]), so the handler never signals a pid the kernel could have
//! given to someone else. The handler kills each registered process and waits for it,
//! so none outlives the run.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

#[derive(Default)]
struct Items {
    pids: Vec<u32>,
    netns: Vec<String>,
    dirs: Vec<PathBuf>,
}

static ITEMS: Mutex<Items> = Mutex::new(Items {
    pids: Vec::new(),
    netns: Vec::new(),
    dirs: Vec::new(),
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
            // The lock is kept until the process exits, so that the run makes nothing
            // more (see the module doc).
            let mut items = items();
            remove_all(&mut items);
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

/// Spawns `cmd` and registers the child.
pub fn spawn(cmd: &mut Command) -> Result<Child> {
    let mut items = items();
    let child = cmd.spawn()?;
    items.pids.push(child.id());
    Ok(child)
}

/// Runs `cmd` to its end, registered like [`spawn`] (so a Ctrl-C does not leave a
/// one-shot command running after the run), and returns its status and output.
pub fn output(cmd: &mut Command) -> Result<Output> {
    let mut child = spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()))?;
    let stderr = child.stderr.take();
    // stderr is read on a thread so that neither pipe can fill and stall the child
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_end(&mut buf);
        }
        buf
    });
    let mut stdout = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut stdout);
    }
    let stderr = stderr.join().unwrap_or_default();
    // Both pipes closed: the command is ending. It is reaped under the lock, so a
    // short poll rather than a blocking wait.
    let status = loop {
        if let Some(status) = reap(&mut child)? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Ok(Output {
        status,
        stdout,
        stderr,
    })
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

/// Creates namespace `name` with `create` (which must not call into this module: the
/// lock is held) and registers it. Registered first, so that a namespace `create` made
/// before it failed is removed too (`ip netns del` of one that does not exist is a
/// harmless no-op).
pub fn netns(name: &str, create: impl FnOnce() -> Result<()>) -> Result<()> {
    let mut items = items();
    items.netns.push(name.to_string());
    create()
}

/// Makes a fresh folder `TMPDIR/PREFIXxxxxxx` and registers it, unless `SHOAL_SIM_KEEP`
/// is set (to read the processes' logs after a failure; the folder is named on stderr).
pub fn tempdir(prefix: &str) -> Result<PathBuf> {
    let mut items = items();
    let path = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("cannot make a temporary folder")?
        .keep();
    if std::env::var_os("SHOAL_SIM_KEEP").is_some() {
        eprintln!(
            "shoal-sim: SHOAL_SIM_KEEP is set: {} is kept",
            path.display()
        );
    } else {
        items.dirs.push(path.clone());
    }
    Ok(path)
}

fn remove_all(items: &mut Items) {
    let pids: Vec<libc::pid_t> = items.pids.drain(..).map(|p| p as libc::pid_t).collect();
    for &pid in &pids {
        // SAFETY: kill(2) on a pid that is our unreaped child (see the module doc).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // Reaped here, so that none is still running (or still holding the folder's files)
    // when the run exits. Only our unreaped children are waited for: each has been sent
    // SIGKILL, so each wait is short.
    for &pid in &pids {
        // SAFETY: waitpid(2) on our own child, with no status pointer.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
    for ns in items.netns.drain(..).rev() {
        remove_netns(&ns);
    }
    for d in items.dirs.drain(..) {
        // A process in a namespace killed just now may still be closing files: try a
        // few times.
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
