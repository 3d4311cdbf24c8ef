//! `shoal-node run`: the device's one event loop. Enrol; poll the head with jittered
//! backoff (the device opens every connection); on a new head, verify it, fetch and
//! verify the release, assemble it (local copies first, then the seeder), verify the
//! files, install, and only then record the new counter. Status goes to
//! `DIR/status.json` and to the seeder at each change of state.

use crate::assemble::Assembly;
use crate::config::DataDir;
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::install::{Context, Outcome, install};
use crate::lan::share::Offer;
use crate::lan::{Lan, Misbehave};
use crate::metrics::Metrics;
use crate::status::Status;
use crate::store::NodeStore;
use crate::wan::WanClient;
use shoal_core::head::HeadCheck;
use shoal_core::plan::local_index;
use shoal_core::wan::{BytesBySource, DeviceState, Enrolment, StatusReport};
use shoal_core::{
    Document, Hash, Release, ReleaseCheck, Root, SecretKey, verify_head, verify_release,
};
use std::os::unix::fs::FileExt;

use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Chunks per WAN request, and requests in flight: enough to fill the link, few enough
/// that a crash wastes little (what was in flight is fetched again).
/// Local copies between syncs (each sync makes progress durable). WAN chunks are synced
/// after every request's answer.
const SYNC_EVERY: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// WAN bytes per second, if limited.
    pub wan_rate: Option<u64>,
    /// Exit 0 once the assigned release is installed; non-zero on a definite failure.
    pub exit_after_install: bool,
    pub lan: LanOptions,
    /// Serve Prometheus metrics here (`--metrics`).
    pub metrics: Option<std::net::SocketAddr>,
}

/// The LAN swarm's settings (`shoal-node run` flags).
#[derive(Debug, Clone)]
pub struct LanOptions {
    /// `--no-lan` turns it off.
    pub enabled: bool,
    /// Where to listen; `None` means 0.0.0.0 on a free port.
    pub listen: Option<std::net::SocketAddr>,
    /// Peers to dial besides those mDNS finds.
    pub peers: Vec<std::net::SocketAddr>,
    /// `--no-serve` makes the node fetch-only.
    pub serve: bool,
    /// LAN bytes per second, if limited.
    pub rate: Option<u64>,
    /// Find peers with mDNS (libp2p); off with `--no-mdns`.
    pub mdns: bool,
}

impl Default for LanOptions {
    fn default() -> LanOptions {
        LanOptions {
            enabled: true,
            listen: None,
            peers: Vec::new(),
            serve: true,
            rate: None,
            mdns: true,
        }
    }
}

/// Everything the loop needs.
pub struct Agent {
    dir: DataDir,
    pub(crate) key: SecretKey,
    root: Root,
    pub(crate) store: NodeStore,
    device_type: String,
    site: String,
    target: std::path::PathBuf,
    config: NodeConfig,
    poll: Duration,
    pub(crate) status: Status,
    /// A release that was installed and rolled back: not tried again (kept in the
    /// store, so a restart does not retry it either).
    refused: Option<Hash>,
    /// A progress bar, when stdout is a terminal.
    bar: Option<indicatif::ProgressBar>,
    rng: u64,
    pub(crate) options: RunOptions,
    /// The LAN swarm, unless `--no-lan`.
    pub(crate) lan: Option<Lan>,
    pub(crate) metrics: Arc<Metrics>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A definite failure: the seeder or the data is wrong, not the network.
fn is_definite(e: &NodeError) -> bool {
    matches!(
        e,
        NodeError::Verify { .. }
            | NodeError::BadChunk { .. }
            | NodeError::BadFile { .. }
            | NodeError::MissingChunk(_)
            | NodeError::MissingRelease(_)
            | NodeError::Install(_)
            | NodeError::RolledBack(_)
            // the seeder broke the protocol (a frame over its cap, a malformed message)
            | NodeError::Wan(crate::wan::WanError::Decode(_))
            | NodeError::Wan(crate::wan::WanError::Stream(
                crate::wan::stream::StreamError::Frame(_) | crate::wan::stream::StreamError::Decode(_)
            ))
    )
}

impl Agent {
    pub fn new(dir: DataDir, options: RunOptions) -> Result<Agent, NodeError> {
        let config = dir.load_config()?;
        let key_text =
            std::fs::read_to_string(dir.identity()).map_err(NodeError::io(dir.identity()))?;
        let key = SecretKey::from_text(&key_text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", dir.identity().display())))?;
        let root_bytes = std::fs::read(dir.root()).map_err(NodeError::io(dir.root()))?;
        let signed_root =
            shoal_core::root::decode_root(&root_bytes).map_err(|source| NodeError::Verify {
                what: "the root",
                source,
            })?;
        // Checked as a kept root: signed by its own threshold, its expiry aside. Nothing
        // verifies against an expired root, but a rotation from it (`update_root`) can
        // still reach this device.
        let root =
            shoal_core::verify_kept_root(&signed_root).map_err(|source| NodeError::Verify {
                what: "the root",
                source,
            })?;
        if root.check_fresh(now()).is_err() {
            warn!(
                version = root.version,
                "the root expired; waiting for a rotation from the seeder"
            );
        }
        let store = NodeStore::open(&dir.db())?;
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        let status = Status {
            state: "starting".into(),
            device_id: key.key_id().to_hex(),
            ..Status::default()
        };
        Ok(Agent {
            poll: Duration::from_secs(config.poll_secs.max(1)),
            device_type: config.device_type.clone(),
            site: config.site.clone(),
            target: config.target.clone(),
            config,
            dir,
            key,
            root,
            store,
            status,
            refused: None,
            bar: {
                use std::io::IsTerminal;
                std::io::stdout().is_terminal().then(|| {
                    let bar = indicatif::ProgressBar::new(1);
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "{msg:12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
                    ) {
                        bar.set_style(style);
                    }
                    bar
                })
            },
            rng: u64::from_le_bytes(seed) | 1,
            options,
            lan: None,
            metrics: Arc::default(),
        })
    }

    /// The poll interval with ±25% jitter, so a site's devices do not poll in step.
    fn jittered(&mut self) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let f = 0.75 + (self.rng % 1000) as f64 / 2000.0;
        self.poll.mul_f64(f)
    }

    pub(crate) fn set_state(&mut self, state: &str, error: Option<String>) {
        if let Some(bar) = &self.bar {
            bar.set_length(self.status.total_bytes.max(1));
            bar.set_position(self.status.done_bytes);
            bar.set_message(state.to_string());
            if matches!(state, "success" | "failure" | "rolled-back" | "idle") {
                bar.finish();
            }
        }
        if let Some(lan) = &self.lan {
            let c = lan.counters();
            self.status.lan_peers = lan.peers().len();
            Metrics::set(&self.metrics.peers, self.status.lan_peers as u64);
            self.status.lan_served = c.served_bytes();
            self.status.lan_refused = c.refused();
            self.status.lan_refusals = c
                .refusals()
                .into_iter()
                .map(|(k, v)| (k.to_hex(), v))
                .collect();
            self.status.lan_error = lan.last_refusal();
            self.status.lan_not_serving = lan.not_serving().iter().map(|a| a.to_string()).collect();
            self.status.lan_served_to = c
                .per_peer()
                .into_iter()
                .map(|(k, v)| (k.to_hex(), v))
                .collect();
        }
        self.metrics.outcome(state);
        Metrics::set(
            &self.metrics.head_stale_since,
            self.status.stale_head_since.unwrap_or(0),
        );
        Metrics::set(
            &self.metrics.head_expires_at,
            self.status.head_expires_at.unwrap_or(0),
        );
        self.status.state = state.into();
        self.status.error = error;
        self.status.updated_at = now();
        if let Err(e) = self.status.save(&self.dir.status()) {
            warn!("cannot write the status file: {e}");
        }
    }

    async fn report(&self, client: Option<&WanClient>, state: DeviceState) {
        let Some(client) = client else { return };
        let s = &self.status;
        let report = StatusReport {
            state,
            release: s.release.as_deref().and_then(|h| Hash::from_hex(h).ok()),
            done_bytes: s.done_bytes,
            total_bytes: s.total_bytes,
            bytes: BytesBySource {
                local: s.bytes_local,
                wan: s.bytes_wan,
                lan: s.bytes_lan,
            },
            error: s.error.clone().map(|e| e.chars().take(1000).collect()),
            head_expires_at: s.head_expires_at,
            inventory: vec![],
        };
        if let Err(e) = client.report(report).await {
            warn!("cannot report status: {e}");
        }
    }

    /// Runs until an install when `exit_after_install`, else forever.
    pub async fn run(
        mut self,
        connect: impl AsyncFn() -> Result<WanClient, NodeError>,
    ) -> Result<(), NodeError> {
        if let Some(addr) = self.options.metrics {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| NodeError::Config(format!("--metrics {addr}: cannot listen: {e}")))?;
            let bound = listener
                .local_addr()
                .map_err(NodeError::io("metrics socket"))?;
            println!("metrics on http://{bound}/metrics");
            tokio::spawn(crate::metrics::serve(listener, Arc::clone(&self.metrics)));
        }
        self.refused = self.store.rolled_back()?;
        if let Some(installed) = self.store.installed()? {
            self.status.installed_counter = Some(installed.counter);
            self.status.installed = describe(&installed.release_bytes);
        }
        self.set_state("starting", None);
        self.load_admission();
        self.offer_installed(false);
        loop {
            let client = match connect().await {
                Ok(c) => c,
                Err(e) => {
                    warn!("{e}");
                    if let Some(lan) = &self.lan {
                        lan.set_relay(None);
                        lan.shared().set_wan(false);
                    }
                    // Without the seeder, peers may relay what it says.
                    match self.relayed().await {
                        Ok(true) => return Ok(()),
                        Ok(false) => self.set_state("offline", Some(e.to_string())),
                        Err(re) => {
                            warn!("{re}");
                            self.set_state("offline", Some(format!("{e}; {re}")));
                            if self.options.exit_after_install && is_definite(&re) {
                                return Err(re);
                            }
                        }
                    }
                    tokio::time::sleep(self.jittered()).await;
                    continue;
                }
            };
            if let Some(lan) = &self.lan {
                lan.set_relay(Some(client.clone()));
                lan.shared().set_wan(true);
            }
            match self.session(&client).await {
                Ok(true) => {
                    client.close().await;
                    return Ok(());
                }
                Ok(false) => {}
                Err(e) => {
                    warn!("{e}");
                    // a rollback was already recorded and reported as such
                    if !matches!(e, NodeError::RolledBack(_)) {
                        self.set_state("failure", Some(e.to_string()));
                        self.report(Some(&client), DeviceState::Failure).await;
                    }
                    if self.options.exit_after_install && is_definite(&e) {
                        client.close().await;
                        return Err(e);
                    }
                }
            }
            client.close().await;
            tokio::time::sleep(self.jittered()).await;
        }
    }

    /// One connection's work. `Ok(true)` when the loop should end (installed, with
    /// `exit_after_install`).
    async fn session(&mut self, client: &WanClient) -> Result<bool, NodeError> {
        let enrolment = client.enrol(&self.device_type, &self.site, vec![]).await?;
        if enrolment != Enrolment::Accepted {
            self.set_state(
                "waiting-for-acceptance",
                Some(format!("the seeder has this device as {enrolment:?}").to_lowercase()),
            );
            return Ok(false);
        }
        self.update_root(client).await?;
        self.fetch_admission(client).await;
        let mut first = true;
        loop {
            // a rotation may come at any poll; the admission is signed under the online
            // keys of the root the seeder serves, so it is fetched again after one
            if !std::mem::take(&mut first) && self.update_root(client).await? {
                self.fetch_admission(client).await;
            }
            let Some(head_bytes) = client.head().await? else {
                self.set_state("idle", None);
                if self.options.exit_after_install && self.status.installed.is_some() {
                    return Ok(false);
                }
                tokio::time::sleep(self.jittered()).await;
                continue;
            };
            let (head_release, head_counter) = self.check_head(&head_bytes)?;
            if self.is_current(head_release)? {
                self.set_state("idle", None);
                if self.options.exit_after_install {
                    return Ok(true);
                }
                tokio::time::sleep(self.jittered()).await;
                continue;
            }
            let bytes = client
                .release(head_release)
                .await?
                .ok_or(NodeError::MissingRelease(head_release))?;
            self.update(Some(client), head_release, head_counter, bytes)
                .await?;
            if self.options.exit_after_install {
                return Ok(true);
            }
        }
    }

    /// Walks the roots the seeder holds after this device's (`GetRoots`), if any, and
    /// from then on trusts the newest: each step signed by the threshold of the old and
    /// the new root keys, the newest unexpired (`verify_root_chain`). The newest is kept
    /// on disk first (`DIR/root.shoal`, atomically), then used for everything, the LAN's
    /// admission checks included. A chain that does not verify changes nothing. New
    /// online keys start the head seq over (`NodeStore::last_head`).
    /// `Ok(true)` when it moved to a newer root.
    async fn update_root(&mut self, client: &WanClient) -> Result<bool, NodeError> {
        fn verify(source: shoal_core::VerifyError) -> NodeError {
            NodeError::Verify {
                what: "a newer root",
                source,
            }
        }
        let mut rotated = false;
        loop {
            let chain_bytes = match client.roots(self.root.version).await {
                Ok(c) => c,
                // a seeder older than this node cannot decode the request: no rotation
                Err(crate::wan::WanError::Seeder(message)) => {
                    warn!("the seeder serves no roots: {message}");
                    return Ok(rotated);
                }
                Err(e) => return Err(e.into()),
            };
            let Some(newest_bytes) = chain_bytes.last() else {
                return Ok(rotated);
            };
            let chain = chain_bytes
                .iter()
                .map(|b| shoal_core::root::decode_root(b))
                .collect::<Result<Vec<_>, _>>()
                .map_err(verify)?;
            let newest =
                shoal_core::verify_root_chain(&self.root, &chain, now()).map_err(verify)?;
            crate::config::write_atomic(&self.dir.root(), newest_bytes, 0o644)?;
            let online = shoal_core::Role::Online;
            info!(
                from = self.root.version,
                to = newest.version,
                new_online_keys = newest.role_epoch(online) != self.root.role_epoch(online),
                "root rotated"
            );
            if let Some(lan) = &self.lan {
                lan.set_root(newest.clone());
            }
            self.root = newest;
            rotated = true;
            if chain_bytes.len() < shoal_core::wan::MAX_ROOTS_PER_ANSWER {
                return Ok(rotated);
            }
        }
    }

    /// This device's admission from the seeder, checked and kept (the LAN needs it).
    async fn fetch_admission(&mut self, client: &WanClient) {
        match client.admission().await {
            Ok(bytes) => self.set_admission(bytes),
            Err(e) => warn!("cannot get this device's admission (the LAN needs it): {e}"),
        }
    }

    /// Verifies a head; records it if it is new. Returns the release and counter.
    fn check_head(&mut self, bytes: &[u8]) -> Result<(Hash, u64), NodeError> {
        let verify = |source| NodeError::Verify {
            what: "the head",
            source,
        };
        let signed = shoal_core::Head::decode_envelope(bytes).map_err(|e| {
            verify(shoal_core::VerifyError::Malformed {
                doc: shoal_core::DocKind::Head,
                reason: e,
            })
        })?;
        let epoch = self.root.role_epoch(shoal_core::Role::Online);
        let last = self.store.last_head(epoch)?;
        let installed_counter = self.store.installed()?.map(|i| i.counter);
        // The seeder re-signs the current target with a fresh expiry on every poll and
        // raises seq only when the target changes: a head repeating the last accepted
        // seq must name the same release; a lower seq is a replay.
        let check = HeadCheck {
            device_id: self.key.key_id(),
            last_seq: last.and_then(|(s, _)| s.checked_sub(1)),
            installed_counter,
        };
        let now = now();
        let head = match verify_head(&self.root, &signed, &check, now) {
            Ok(h) => h,
            Err(e) => {
                if matches!(e, shoal_core::VerifyError::Expired { .. })
                    && self.status.stale_head_since.is_none()
                {
                    self.status.stale_head_since = Some(now);
                }
                return Err(verify(e));
            }
        };
        if let Some((seq, release)) = last
            && head.seq == seq
            && head.release != release
        {
            return Err(verify(shoal_core::VerifyError::Replay {
                found: head.seq,
                last: seq,
            }));
        }
        self.status.stale_head_since = None;
        self.status.head_expires_at = Some(head.expires_at);
        if last.map(|(s, _)| s) != Some(head.seq) {
            self.store.accept_head(head.seq, head.release, epoch)?;
        }
        Ok((head.release, head.counter))
    }

    /// Fetches, verifies, assembles and installs the release a head names.
    async fn update(
        &mut self,
        client: Option<&WanClient>,
        id: Hash,
        counter: u64,
        bytes: Vec<u8>,
    ) -> Result<(), NodeError> {
        let signed =
            shoal_core::release::decode_release(&bytes).map_err(|source| NodeError::Verify {
                what: "the release",
                source,
            })?;
        let installed = self.store.installed()?;
        let check = ReleaseCheck {
            device_type: Some(&self.device_type),
            min_counter: installed.as_ref().map(|i| i.counter),
            head: Some((id, counter)),
        };
        let (release, _) =
            verify_release(&self.root, &signed, &check, now()).map_err(|source| {
                NodeError::Verify {
                    what: "the release",
                    source,
                }
            })?;
        info!(release = %id.short(), name = %release.name, version = %release.version, "updating");
        self.status.release = Some(id.to_hex());
        self.status.bytes_local = 0;
        self.status.bytes_wan = 0;
        self.status.bytes_lan = 0;
        self.status.fetch_wan_chunks = 0;
        self.status.fetch_lan_chunks = 0;
        self.status.fetch_takeovers = 0;
        let mut asm = Assembly::open(&self.dir.staging(), &release, id, &self.store)?;
        self.status.total_bytes = asm.plan.unique_bytes();
        self.status.done_bytes = asm.done_bytes();
        self.set_state("downloading", None);
        self.report(client, DeviceState::Downloading).await;

        // Local first: chunks of the installed release, read from the installed files
        // and checked like any other source.
        if let Some(inst) = &installed
            && let Ok(prev) = shoal_core::release::decode_release(&inst.release_bytes)
            && let Ok(prev) = prev.decode_unverified()
        {
            self.copy_local(&mut asm, &prev)?;
        }
        if let Some(lan) = &self.lan {
            let files = (0..release.files.len()).map(|i| asm.file_path(i)).collect();
            lan.shared().put_offer(Offer::new(
                id,
                bytes.clone(),
                asm.plan.clone(),
                asm.bits.clone(),
                files,
                false,
            ));
        }
        self.fetch(client, id, &mut asm).await?;
        asm.commit(&self.store)?;
        if !asm.bits.is_full() {
            return Err(NodeError::Install(
                "the release is incomplete after fetching".into(),
            ));
        }
        self.set_state("verifying", None);
        self.report(client, DeviceState::Verifying).await;
        asm.verify_files(&release)?;
        self.wait_for_window(client).await?;
        self.set_state("installing", None);
        self.report(client, DeviceState::Installing).await;
        match self.install_assembled(&release, &asm, &bytes, id) {
            Ok(()) => {}
            Err(NodeError::RolledBack(reason)) => {
                warn!("rolled back: {reason}");
                self.set_state("rolled-back", Some(reason.clone()));
                self.report(client, DeviceState::RolledBack).await;
                self.refused = Some(id);
                self.store.set_rolled_back(id)?;
                if let Some(lan) = &self.lan {
                    lan.shared().remove_offer(id);
                }
                return Err(NodeError::RolledBack(reason));
            }
            Err(e) => return Err(e),
        }
        // peers are served from the installed copy before the staging copy goes; it was
        // verified whole just now
        self.offer_installed(true);
        let _ = std::fs::remove_dir_all(asm.dir());
        self.status.installed = describe(&bytes);
        self.status.installed_counter = Some(release.counter);
        self.set_state("success", None);
        self.report(client, DeviceState::Success).await;
        info!(release = %id.short(), wan = self.status.bytes_wan, local = self.status.bytes_local, "installed");
        Ok(())
    }

    /// Whether `release` needs no work: installed, or installed and rolled back.
    fn is_current(&self, release: Hash) -> Result<bool, NodeError> {
        let installed_id = self
            .store
            .installed()?
            .and_then(|i| shoal_core::release::decode_release(&i.release_bytes).ok())
            .map(|s| s.body_hash());
        Ok(installed_id == Some(release) || self.refused == Some(release))
    }

    /// Without the seeder: asks LAN peers for this device's head (they fetch it from
    /// the seeder on its behalf) and, if it names a new release, gets that from them
    /// too. `Ok(true)` when the loop should end.
    async fn relayed(&mut self) -> Result<bool, NodeError> {
        let Some(lan) = &self.lan else {
            return Ok(false);
        };
        let peers = lan.peers();
        let mut head = None;
        let mut why = String::from("no LAN peer connected");
        for p in &peers {
            match p.head().await {
                Ok(Some(h)) => {
                    head = Some(h);
                    break;
                }
                Ok(None) => why = format!("{} relays no head", p.id.short()),
                Err(e) => why = format!("{}: {e}", p.id.short()),
            }
        }
        let Some(head_bytes) = head else {
            if peers.is_empty() {
                return Ok(false);
            }
            return Err(NodeError::NoRelay(why));
        };
        let (release, counter) = self.check_head(&head_bytes)?;
        info!(release = %release.short(), "head relayed by a LAN peer");
        if self.is_current(release)? {
            self.set_state("idle", None);
            return Ok(self.options.exit_after_install);
        }
        let mut bytes = None;
        for p in &peers {
            if let Ok(Some(b)) = p.release(release).await {
                bytes = Some(b);
                break;
            }
        }
        let bytes = bytes.ok_or(NodeError::MissingRelease(release))?;
        self.update(None, release, counter, bytes).await?;
        Ok(self.options.exit_after_install)
    }

    /// Checks and keeps this device's admission (peers need it before they serve us).
    fn set_admission(&mut self, bytes: Vec<u8>) {
        let signed = match <shoal_core::Admission as shoal_core::Document>::decode_envelope(&bytes)
        {
            Ok(s) => s,
            Err(e) => {
                warn!("the seeder sent a malformed admission: {e}");
                return;
            }
        };
        if let Err(e) = shoal_core::verify_admission(
            &self.root,
            &signed,
            Some(&self.site),
            Some(self.key.key_id()),
            now(),
        ) {
            warn!("the seeder sent an admission this device cannot use: {e}");
            return;
        }
        if let Err(e) = crate::config::write_atomic(&self.dir.admission(), &bytes, 0o644) {
            warn!("cannot keep the admission: {e}");
        }
        if let Some(lan) = &self.lan {
            lan.set_admission(bytes);
        }
    }

    /// The admission kept from an earlier run, if it still holds.
    fn load_admission(&mut self) {
        if let Ok(bytes) = std::fs::read(self.dir.admission()) {
            self.set_admission(bytes);
        }
    }

    /// Offers the installed release to peers, from where it is installed (a `command`
    /// install hands its files away: nothing to offer). `verified`: the files were
    /// verified whole just now (see [`Offer::verified_now`]).
    fn offer_installed(&self, verified: bool) {
        let Some(lan) = &self.lan else { return };
        let Ok(Some(inst)) = self.store.installed() else {
            return;
        };
        let Ok(signed) = shoal_core::release::decode_release(&inst.release_bytes) else {
            return;
        };
        let id = signed.body_hash();
        let Ok(release) = signed.decode_unverified() else {
            return;
        };
        let files: Vec<std::path::PathBuf> = match &release.install {
            shoal_core::Install::File => release
                .files
                .iter()
                .map(|f| self.target.join(&f.path))
                .collect(),
            shoal_core::Install::AbSlot => match (self.config.slots(), self.store.active_slot()) {
                (Ok(slots), Ok(active)) if release.files.len() == 1 => vec![slots[active].clone()],
                _ => {
                    lan.shared().remove_offer(id);
                    return;
                }
            },
            _ => {
                // handed away: nothing left to serve it from
                lan.shared().remove_offer(id);
                return;
            }
        };
        let plan = shoal_core::plan::Plan::new(&release);
        let mut bits = shoal_core::plan::Bitset::new(plan.chunks.len());
        (0..plan.chunks.len()).for_each(|i| bits.set(i));
        // installed files can be changed on the device: each chunk is checked before
        // it is served, unless its file is unchanged since it was verified whole
        let offer = Offer::new(id, inst.release_bytes.clone(), plan, bits, files, true);
        lan.shared().put_offer(if verified {
            offer.verified_now()
        } else {
            offer
        });
    }

    /// Installs an assembled, verified release with its model and records it; an
    /// `ab-slot` rollback comes back as `NodeError::RolledBack`.
    pub fn install_assembled(
        &self,
        release: &Release,
        asm: &Assembly,
        release_bytes: &[u8],
        id: Hash,
    ) -> Result<(), NodeError> {
        let ctx = Context {
            config: &self.config,
            dir: &self.dir,
            active_slot: self.store.active_slot()?,
        };
        match install(release, asm, &ctx)? {
            Outcome::Installed { slot: None } => {
                self.store.set_installed(release.counter, release_bytes, id)
            }
            Outcome::Installed { slot: Some(slot) } => {
                self.store
                    .set_installed_slot(slot, release.counter, release_bytes, id)
            }
            Outcome::RolledBack { reason } => Err(NodeError::RolledBack(reason)),
        }
    }

    /// Holds the install until the maintenance window is open (downloads are done).
    /// Reports every 20 s meanwhile: the seeder sees why, and the connection does not
    /// idle out before the install's outcome is reported on it.
    async fn wait_for_window(&mut self, client: Option<&WanClient>) -> Result<(), NodeError> {
        let Some(text) = self.config.install_window.clone() else {
            return Ok(());
        };
        let window =
            crate::window::Window::parse(&text).map_err(|e| NodeError::Config(e.to_string()))?;
        while let Some(wait) = window.wait(now()) {
            self.set_state(
                "waiting-for-window",
                Some(format!("verified; installs only in {window}")),
            );
            self.report(client, DeviceState::Verifying).await;
            tokio::time::sleep(wait.min(Duration::from_secs(20))).await;
        }
        Ok(())
    }

    /// The counters `--metrics` serves; the LAN swarm sets `peers` and `bans` on it.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    pub fn store(&self) -> &NodeStore {
        &self.store
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn device_type(&self) -> &str {
        &self.device_type
    }

    pub fn dir(&self) -> &DataDir {
        &self.dir
    }

    fn copy_local(&mut self, asm: &mut Assembly, installed: &Release) -> Result<(), NodeError> {
        let index = local_index(installed);
        let mut written = 0;
        for i in asm.missing() {
            let needed = &asm.plan.chunks[i];
            let Some(&(file, offset, len)) = index.get(&needed.hash) else {
                continue;
            };
            let path = self.target.join(&installed.files[file].path);
            let Ok(f) = std::fs::File::open(&path) else {
                continue;
            };
            let mut buf = vec![0u8; len as usize];
            if f.read_exact_at(&mut buf, offset).is_err() {
                continue;
            }
            // A local copy that no longer matches (the file was changed) is skipped, not
            // fatal: the chunk is fetched instead.
            if asm.write_chunk(i, &buf).is_ok() {
                Metrics::add(&self.metrics.bytes_local, u64::from(len));
                Metrics::add(&self.metrics.chunks_verified, 1);
                self.status.bytes_local += u64::from(len);
                written += 1;
                if written % SYNC_EVERY == 0 {
                    asm.commit(&self.store)?;
                }
            }
        }
        asm.commit(&self.store)?;
        self.status.done_bytes = asm.done_bytes();
        Ok(())
    }
}

fn describe(release_bytes: &[u8]) -> Option<String> {
    let r = shoal_core::release::decode_release(release_bytes)
        .ok()?
        .decode_unverified()
        .ok()?;
    Some(format!("{} {} (counter {})", r.name, r.version, r.counter))
}

/// Runs the agent in `dir` against its configured seeder.
pub async fn run(dir: DataDir, options: RunOptions) -> Result<(), NodeError> {
    run_with(dir, options, None).await
}

/// [`run`], with a LAN server that misbehaves (the hostile-peer test binary only).
pub async fn run_with(
    dir: DataDir,
    options: RunOptions,
    misbehave: Option<Misbehave>,
) -> Result<(), NodeError> {
    let config = dir.load_config()?;
    let mut agent = Agent::new(dir.clone(), options)?;
    if agent.options.lan.enabled {
        let lan = Lan::start(
            &agent.options.lan,
            &agent.key,
            agent.root.clone(),
            agent.site.clone(),
            misbehave,
        )?;
        agent.status.lan_addr = Some(lan.local_addr.to_string());
        agent.lan = Some(lan);
    }
    let key = agent.key.seed();
    let cert_pem = std::fs::read(dir.seeder_cert()).map_err(NodeError::io(dir.seeder_cert()))?;
    let cert = crate::wan::tls::cert_from_pem(&cert_pem)
        .map_err(|e| NodeError::Config(format!("{}: {e}", dir.seeder_cert().display())))?;
    let seeder = config.seeder.clone();
    agent
        .run(async move || {
            let addr = tokio::net::lookup_host(&seeder)
                .await
                .map_err(|e| NodeError::Config(format!("seeder address '{seeder}': {e}")))?
                .next()
                .ok_or_else(|| {
                    NodeError::Config(format!("seeder address '{seeder}' resolves to nothing"))
                })?;
            Ok(WanClient::connect(addr, &SecretKey::from_seed(key), cert.clone()).await?)
        })
        .await
}
