//! Waits until every node has installed a release, showing one progress bar per node
//! (indicatif `MultiProgress` on stderr, hidden when stderr is not a terminal) fed by
//! polling each node's status file.

use crate::node::{NodeSpec, NodeStatus, read_status};
use crate::proc::Proc;
use anyhow::{Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A node being watched: its process and data folder.
pub struct Watched<'a> {
    pub proc: &'a mut Proc,
    pub data: PathBuf,
}

impl Watched<'_> {
    /// Each node of a run: its process and the spec it was started from.
    pub fn all<'a>(procs: &'a mut [Proc], specs: &[NodeSpec]) -> Vec<Watched<'a>> {
        procs
            .iter_mut()
            .zip(specs)
            .map(|(proc, s)| Watched {
                proc,
                data: s.data.clone(),
            })
            .collect()
    }
}

/// Polls until every node reports `counter` (or later) installed; returns each
/// node's time to install, from `started`. Fails when a node rolls back, exits, or
/// `timeout` passes (a `failure` state is retried by the agent, so only remembered).
pub fn until_installed(
    nodes: &mut [Watched<'_>],
    counter: u64,
    started: Instant,
    timeout: Duration,
    bars: bool,
) -> Result<Vec<Duration>> {
    let multi = MultiProgress::with_draw_target(if bars {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template(
        "{prefix:>4} {msg:12} [{bar:40}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let handles: Vec<ProgressBar> = nodes
        .iter()
        .map(|n| {
            let b = multi.add(ProgressBar::new(1));
            b.set_style(style.clone());
            b.set_prefix(n.proc.name.clone());
            b.set_message("waiting");
            b
        })
        .collect();
    let mut done: Vec<Option<Duration>> = vec![None; nodes.len()];
    let mut last_error: Vec<Option<String>> = vec![None; nodes.len()];
    loop {
        for (i, n) in nodes.iter_mut().enumerate() {
            if done[i].is_some() {
                continue;
            }
            n.proc.check_alive()?;
            let Some(s) = read_status(&n.data)? else {
                continue;
            };
            show(&handles[i], &s);
            // installed_counter changes only once the install succeeded (the state
            // moves on to `idle` at the next poll)
            if s.installed_counter >= Some(counter) {
                done[i] = Some(started.elapsed());
                handles[i].set_position(s.total_bytes.max(1));
                handles[i].finish_with_message("installed");
            } else if s.state == "failure" {
                // the agent retries on its next poll; said if it never gets there
                last_error[i] = s.error.clone();
            } else if s.state == "rolled-back" {
                bail!(
                    "{} reports {}: {}",
                    n.proc.name,
                    s.state,
                    s.error.as_deref().unwrap_or("no reason given")
                );
            }
        }
        if done.iter().all(Option::is_some) {
            return Ok(done.into_iter().flatten().collect());
        }
        if started.elapsed() > timeout {
            let missing: Vec<String> = nodes
                .iter()
                .zip(done.iter().zip(&last_error))
                .filter(|(_, (d, _))| d.is_none())
                .map(|(n, (_, e))| match e {
                    Some(e) => format!("{} (last error: {e})", n.proc.name),
                    None => n.proc.name.clone(),
                })
                .collect();
            bail!(
                "expected every node to install counter {counter} within {} s; {} of {} did not: {}",
                timeout.as_secs(),
                missing.len(),
                nodes.len(),
                missing.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn show(bar: &ProgressBar, s: &NodeStatus) {
    bar.set_length(s.total_bytes.max(1));
    bar.set_position(s.done_bytes.min(s.total_bytes));
    bar.set_message(s.state.clone());
}
