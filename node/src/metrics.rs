//! The node's metrics: a struct of atomics that the agent (and the LAN swarm) update,
//! rendered as Prometheus text by a tiny HTTP listener (`shoal-node run --metrics
//! ADDR`). Any path answers the metrics; the listener reads one request per connection
//! (at most 8 KiB of it) and closes, so it cannot be held open or fed without end.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counters (only rise) and gauges (`peers`, `head_*`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Chunk bytes by where they came from.
    pub bytes_wan: AtomicU64,
    pub bytes_lan: AtomicU64,
    pub bytes_local: AtomicU64,
    /// Chunks checked against the manifest and written.
    pub chunks_verified: AtomicU64,
    /// Chunks that failed the check (wrong length or hash).
    pub chunks_rejected: AtomicU64,
    /// LAN peers connected now (set by the swarm).
    pub peers: AtomicU64,
    /// Peers banned for a bad chunk (set by the swarm).
    pub bans: AtomicU64,
    /// Update outcomes.
    pub installs_succeeded: AtomicU64,
    pub installs_failed: AtomicU64,
    pub installs_rolled_back: AtomicU64,
    /// When the last accepted head expires (unix seconds; 0: none yet).
    pub head_expires_at: AtomicU64,
    /// Since when the seeder's head is stale (unix seconds; 0: it is not).
    pub head_stale_since: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(gauge: &AtomicU64, v: u64) {
        gauge.store(v, Ordering::Relaxed);
    }

    /// Counts a terminal state the agent enters (`success`, `failure`, `rolled-back`).
    pub fn outcome(&self, state: &str) {
        match state {
            "success" => Metrics::add(&self.installs_succeeded, 1),
            "failure" => Metrics::add(&self.installs_failed, 1),
            "rolled-back" => Metrics::add(&self.installs_rolled_back, 1),
            _ => {}
        }
    }

    /// The Prometheus text, with head staleness in seconds as of `now`.
    pub fn render(&self, now: u64) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut o = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(o, "{name}{labels} {v}");
            }
        };
        family(
            "shoal_node_chunk_bytes_total",
            "counter",
            "Chunk bytes written, by source.",
            &[
                ("{source=\"wan\"}", get(&self.bytes_wan)),
                ("{source=\"lan\"}", get(&self.bytes_lan)),
                ("{source=\"local\"}", get(&self.bytes_local)),
            ],
        );
        family(
            "shoal_node_chunks_verified_total",
            "counter",
            "Chunks that matched their manifest entry and were written.",
            &[("", get(&self.chunks_verified))],
        );
        family(
            "shoal_node_chunks_rejected_total",
            "counter",
            "Chunks that did not match their manifest entry.",
            &[("", get(&self.chunks_rejected))],
        );
        family(
            "shoal_node_peers",
            "gauge",
            "LAN peers connected.",
            &[("", get(&self.peers))],
        );
        family(
            "shoal_node_peer_bans_total",
            "counter",
            "LAN peers banned for a bad chunk.",
            &[("", get(&self.bans))],
        );
        family(
            "shoal_node_updates_total",
            "counter",
            "Update attempts by outcome.",
            &[
                ("{outcome=\"success\"}", get(&self.installs_succeeded)),
                ("{outcome=\"failure\"}", get(&self.installs_failed)),
                ("{outcome=\"rolled_back\"}", get(&self.installs_rolled_back)),
            ],
        );
        let stale_since = get(&self.head_stale_since);
        let stale = if stale_since == 0 {
            0
        } else {
            now.saturating_sub(stale_since)
        };
        family(
            "shoal_node_head_stale_seconds",
            "gauge",
            "How long the seeder's signed head has been expired (0: fresh).",
            &[("", stale)],
        );
        family(
            "shoal_node_head_expires_at_seconds",
            "gauge",
            "When the last accepted head expires (unix seconds; 0: none yet).",
            &[("", get(&self.head_expires_at))],
        );
        o
    }
}

/// Answers every connection on `listener` with the metrics, until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: std::sync::Arc<Metrics>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            // out of file descriptors and the like: wait instead of spinning
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let metrics = std::sync::Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            // read up to the end of the request head, 8 KiB, or 5 s
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < buf.len() {
                    match conn.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            if read.is_err() || len == 0 {
                return;
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let body = metrics.render(now);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn renders_every_family_with_its_values() {
        let m = Metrics::default();
        Metrics::add(&m.bytes_wan, 1000);
        Metrics::add(&m.chunks_verified, 3);
        Metrics::set(&m.peers, 2);
        m.outcome("rolled-back");
        m.outcome("idle");
        Metrics::set(&m.head_stale_since, 100);
        let text = m.render(160);
        for line in [
            "shoal_node_chunk_bytes_total{source=\"wan\"} 1000",
            "shoal_node_chunk_bytes_total{source=\"lan\"} 0",
            "shoal_node_chunks_verified_total 3",
            "shoal_node_peers 2",
            "shoal_node_updates_total{outcome=\"rolled_back\"} 1",
            "shoal_node_updates_total{outcome=\"success\"} 0",
            "shoal_node_head_stale_seconds 60",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[tokio::test]
    async fn the_listener_answers_http() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let m = Arc::new(Metrics::default());
        Metrics::add(&m.chunks_rejected, 7);
        let task = tokio::spawn(serve(listener, Arc::clone(&m)));
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.contains("shoal_node_chunks_rejected_total 7"), "{out}");
        task.abort();
    }
}
