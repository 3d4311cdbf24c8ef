//! `shoal-node init`: a device's identity (generated once, kept, mode 0600), its root,
//! its seeder and pinned certificate, type, site and install target. Prints the device
//! id and writes `DIR/node.pub` for preauthorization.

use crate::config::{DataDir, NodeConfig, write_atomic};
use crate::error::NodeError;
use shoal_core::SecretKey;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The data folder.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The seeder's device API, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub seeder: String,
    /// The seeder's certificate (its `DIR/tls/cert.pem`), pinned.
    #[arg(long, value_name = "PEM")]
    pub seeder_cert: PathBuf,
    /// The root this device trusts.
    #[arg(long, value_name = "PATH")]
    pub root: PathBuf,
    #[arg(long, value_name = "T")]
    pub device_type: String,
    #[arg(long, value_name = "S")]
    pub site: String,
    /// Where releases are installed (a folder, for `file` installs).
    #[arg(long, value_name = "DIR_OR_SLOTS")]
    pub target: PathBuf,
    /// Seconds between head polls.
    #[arg(long, default_value_t = 5)]
    pub poll_secs: u64,
    /// ab-slot: the command that makes a slot the one to boot (gets the slot path).
    #[arg(long, value_name = "CMD")]
    pub switch_command: Option<String>,
    /// ab-slot: the health check after switching (exit 0 commits, else roll back).
    #[arg(long, value_name = "CMD")]
    pub health_command: Option<String>,
    /// command: the update executable (gets the folder of verified files, then the
    /// release's arguments).
    #[arg(long, value_name = "CMD")]
    pub install_command: Option<String>,
    /// Install only inside this daily UTC window, HH:MM-HH:MM (download any time).
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub install_window: Option<String>,
}

fn copy_checked(
    from: &Path,
    to: &Path,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<(), NodeError> {
    let bytes = std::fs::read(from).map_err(NodeError::io(from))?;
    check(&bytes).map_err(|e| NodeError::Config(format!("{}: {e}", from.display())))?;
    write_atomic(to, &bytes, 0o644)
}

/// Sets up `args.data`; returns the device id. Running it again keeps the identity.
pub fn init(args: &InitArgs) -> Result<shoal_core::KeyId, NodeError> {
    if let Some(w) = &args.install_window {
        crate::window::Window::parse(w).map_err(|e| NodeError::Config(e.to_string()))?;
    }
    let dir = DataDir(args.data.clone());
    std::fs::create_dir_all(&args.data).map_err(NodeError::io(&args.data))?;
    copy_checked(&args.root, &dir.root(), |b| {
        let signed = shoal_core::root::decode_root(b).map_err(|e| e.to_string())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        shoal_core::verify_root(&signed, now)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    copy_checked(&args.seeder_cert, &dir.seeder_cert(), |b| {
        crate::wan::tls::cert_from_pem(b)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    let key = match std::fs::read_to_string(dir.identity()) {
        Ok(text) => SecretKey::from_text(&text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", dir.identity().display())))?,
        Err(_) => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|e| NodeError::Config(format!("no randomness from the OS: {e}")))?;
            let key = SecretKey::from_seed(seed);
            write_atomic(&dir.identity(), key.to_text().as_bytes(), 0o600)?;
            key
        }
    };
    write_atomic(&dir.public(), key.public().to_text().as_bytes(), 0o644)?;
    let config = NodeConfig {
        seeder: args.seeder.clone(),
        device_type: args.device_type.clone(),
        site: args.site.clone(),
        target: if args.target.to_string_lossy().contains(',') {
            args.target.clone()
        } else {
            std::path::absolute(&args.target).map_err(NodeError::io(&args.target))?
        },
        poll_secs: args.poll_secs,
        switch_command: args.switch_command.clone(),
        health_command: args.health_command.clone(),
        install_command: args.install_command.clone(),
        install_window: args.install_window.clone(),
    };
    let json = serde_json::to_vec_pretty(&config)
        .map_err(|e| NodeError::Config(format!("cannot encode the config: {e}")))?;
    write_atomic(&dir.config(), &json, 0o644)?;
    Ok(key.key_id())
}
