//! `shoal-seeder serve`: the device API (QUIC) and the management API (HTTPS) over one
//! store, until SIGINT or SIGTERM. Both present the same certificate.
//!
//! The seeder reads exactly one secret key, its online key, and refuses to start with a
//! key the root lists as a root or release key: release signing never happens here.

use crate::audit::AuditLog;
use crate::device_api::{self, Counters, DeviceApi, Limits, tls::ServerIdentity};
use crate::files::{SECRET_MODE, write_atomic};
use crate::mgmt_api::{self, AppState};
use crate::offline::load;
use crate::store::Store;
use anyhow::{Context, Result, bail};
use shoal_core::Role;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The data directory (store, chunks, TLS certificate, admin token).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The root devices trust; releases are checked against it.
    #[arg(long, value_name = "PATH")]
    pub root: PathBuf,
    /// The online secret key (signs heads and admissions).
    #[arg(long, value_name = "K")]
    pub online_key: PathBuf,
    /// The device API's UDP address (QUIC).
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub listen: SocketAddr,
    /// The management API's TCP address (HTTPS, with the device API's certificate).
    #[arg(long, default_value = "127.0.0.1:7480")]
    pub http: SocketAddr,
    /// A PEM certificate for both APIs (with --key); made on first start otherwise.
    #[arg(long, value_name = "PEM")]
    pub cert: Option<PathBuf>,
    /// The PEM private key of --cert.
    #[arg(long, value_name = "PEM")]
    pub key: Option<PathBuf>,
    /// Seconds a signed head stays valid.
    #[arg(long, default_value_t = 3600)]
    pub head_ttl: u64,
    /// Seconds a device has to send a whole request on a stream; a device whose
    /// streams keep timing out is cut off.
    #[arg(long, default_value_t = 10)]
    pub request_timeout: u64,
}

pub fn run(args: ServeArgs) -> Result<()> {
    run_with(args, None)
}

/// `run`, misbehaving on purpose: only the hostile-seeder test binary passes `Some`.
pub fn run_with(args: ServeArgs, misbehave: Option<crate::device_api::Misbehave>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, misbehave))
}

/// The admin token: made once, kept in `DIR/admin.token` (0600).
fn admin_token(data: &Path) -> Result<String> {
    let path = data.join("admin.token");
    if path.exists() {
        let t = crate::files::read_text_capped(&path, 4096)?
            .trim()
            .to_string();
        if t.is_empty() {
            bail!("{}: empty token file", path.display());
        }
        return Ok(t);
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let token = shoal_core::hash::to_hex(&raw);
    write_atomic(&path, format!("{token}\n").as_bytes(), SECRET_MODE, false)?;
    Ok(token)
}

async fn serve(args: ServeArgs, misbehave: Option<crate::device_api::Misbehave>) -> Result<()> {
    let now = crate::time::now();
    let root = load::trusted_root(&args.root, now)?;
    let online = load::secret_key(&args.online_key)?;
    match root.role_of(&online.key_id()) {
        Some(Role::Online) => {}
        Some(role) => bail!(
            "{}: this is a {role} key; the seeder never holds root or release keys (give it the online key)",
            args.online_key.display()
        ),
        None => bail!(
            "{}: key {} is not an online key of {}",
            args.online_key.display(),
            online.key_id(),
            args.root.display()
        ),
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("{}: cannot create", args.data.display()))?;
    let store = Arc::new(Store::open(&args.data)?);
    let identity =
        ServerIdentity::load_or_create(&args.data, args.cert.as_deref(), args.key.as_deref())?;
    let token = admin_token(&args.data)?;
    let audit = Arc::new(AuditLog::open(&args.data).with_context(|| {
        format!(
            "the audit log in {} does not verify; the seeder appends only to an intact log (run `shoal-seeder audit verify --data {}`; move audit.log and audit.head aside to start a new one)",
            args.data.display(),
            args.data.display()
        )
    })?);
    // after the audit log opened, so that a rotation kept is a rotation logged
    let kept = crate::root_chain::keep(&store, &args.root, &load::signed_root(&args.root)?, &root)?;
    if let crate::root_chain::Kept::Rotated { from } = kept {
        println!(
            "root rotated: v{from} -> v{}; devices walk to it at their next poll",
            root.version
        );
        audit.append(crate::audit::Record {
            time: now,
            actor: "operator (serve --root)".into(),
            from: args.root.display().to_string(),
            action: "root rotation".into(),
            outcome: "ok".into(),
            status: 200,
            detail: format!("root v{from} -> v{}", root.version),
        })?;
    }
    let limits = Limits {
        head_ttl_secs: args.head_ttl,
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        ..Limits::default()
    };
    let socket =
        bind_udp(args.listen).with_context(|| format!("cannot listen on {} (udp)", args.listen))?;
    let endpoint = quinn::Endpoint::new(
        endpoint_config(),
        Some(identity.server_config(limits.transport())?),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .with_context(|| format!("cannot listen on {} (udp)", args.listen))?;
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen on {} (tcp)", args.http))?;
    let device_addr = endpoint.local_addr()?;
    let http_addr = listener.local_addr()?;
    let listener = mgmt_api::listener::TlsListener::new(
        listener,
        mgmt_api::listener::server_config(&identity)?,
    )?;

    let counters = Arc::new(Counters::default());
    let mut device_api = DeviceApi::new(
        Arc::clone(&store),
        root.clone(),
        online,
        limits,
        Arc::clone(&counters),
    );
    device_api.misbehave = misbehave;
    device_api.audit = Some(Arc::clone(&audit));
    if let Some(m) = misbehave {
        println!("misbehaving on purpose: {m:?}");
    }
    let api = Arc::new(device_api);
    let state = Arc::new(AppState {
        store: Arc::clone(&store),
        root,
        admin_token_hash: shoal_core::Hash::of(token.as_bytes()),
        counters,
        audit: Arc::clone(&audit),
        refusals: Default::default(),
    });

    println!("device API: {device_addr} (QUIC, ALPN shoal-wan/1)");
    println!(
        "certificate: {} (SHA-256 {}; public key pin sha256//{})",
        identity.cert_path.display(),
        identity.fingerprint(),
        identity.spki_pin()?
    );
    println!(
        "management API: https://{http_addr} (token in {}; clients pin the certificate above: --cert)",
        args.data.join("admin.token").display()
    );
    println!(
        "dashboard: https://{http_addr}/dashboard?token=<token>; metrics: https://{http_addr}/metrics"
    );
    println!("listening device={device_addr} http={http_addr}");
    std::io::stdout().flush()?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let device_task = tokio::spawn(device_api::serve(
        endpoint.clone(),
        api,
        stopped(stop_rx.clone()),
    ));
    let app =
        mgmt_api::router(state).into_make_service_with_connect_info::<mgmt_api::listener::Client>();
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped(stop_rx))
        .await
        .context("the management API failed")?;
    let _ = device_task.await;
    let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
    drop(store);
    println!("shut down cleanly");
    Ok(())
}

/// Accept UDP payloads up to the largest size so MTU discovery can use big packets
/// where the path allows (the same setting as the device side).
fn endpoint_config() -> quinn::EndpointConfig {
    let mut c = quinn::EndpointConfig::default();
    // 65,527 is within quinn's allowed range (1200..=65,527), so this cannot fail.
    let _ = c.max_udp_payload_size(65_527);
    c
}

/// A UDP socket with 4 MiB buffers (best effort; the OS may cap them): a burst of large
/// datagrams must not be dropped by the kernel, since quinn reads drops as congestion
/// and black holes and falls back to the smallest MTU.
fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    const BUFFER: usize = 4 * 1024 * 1024;
    let socket = std::net::UdpSocket::bind(addr)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    let _ = state.set_recv_buffer_size((&socket).into(), BUFFER);
    let _ = state.set_send_buffer_size((&socket).into(), BUFFER);
    Ok(socket)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
