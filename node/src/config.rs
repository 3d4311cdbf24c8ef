//! The device's configuration and the files of its data folder.
//!
//! `DIR/node.json` (this config), `DIR/identity.key` (the device key, 0600),
//! `DIR/node.pub` (its public half, for preauthorization), `DIR/root.shoal` (the root it
//! was provisioned with), `DIR/seeder-cert.pem` (the pinned seeder certificate),
//! `DIR/node.redb` (state), `DIR/staging/` (releases being assembled),
//! `DIR/previous/` (the files the last install replaced), `DIR/status.json`.

use crate::error::NodeError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// `HOST:PORT` of the seeder's device API.
    pub seeder: String,
    pub device_type: String,
    pub site: String,
    /// Where `file` installs put the release's files; for `ab-slot` installs, the two
    /// slots (files or block devices) as `A,B`.
    pub target: PathBuf,
    /// Seconds between head polls (jittered).
    #[serde(default = "default_poll")]
    pub poll_secs: u64,
    /// `ab-slot`: run with the slot path to make it the one to boot.
    #[serde(default)]
    pub switch_command: Option<String>,
    /// `ab-slot`: run after switching; exit 0 commits, anything else rolls back.
    #[serde(default)]
    pub health_command: Option<String>,
    /// `command`: run with the folder of verified files, then the release's arguments;
    /// its exit status decides.
    #[serde(default)]
    pub install_command: Option<String>,
    /// Install only inside this daily UTC window (`02:00-04:30`); download any time.
    #[serde(default)]
    pub install_window: Option<String>,
}

impl NodeConfig {
    /// The two slots of an `ab-slot` target (`A,B`).
    pub fn slots(&self) -> Result<[PathBuf; 2], NodeError> {
        let text = self.target.to_string_lossy();
        let parts: Vec<&str> = text.split(',').collect();
        match parts.as_slice() {
            [a, b] if !a.is_empty() && !b.is_empty() => Ok([PathBuf::from(a), PathBuf::from(b)]),
            _ => Err(NodeError::Config(format!(
                "an ab-slot install needs --target SLOT_A,SLOT_B; the target is '{text}'"
            ))),
        }
    }
}

fn default_poll() -> u64 {
    5
}

/// The paths of a data folder.
#[derive(Debug, Clone)]
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn config(&self) -> PathBuf {
        self.0.join("node.json")
    }
    pub fn identity(&self) -> PathBuf {
        self.0.join("identity.key")
    }
    pub fn public(&self) -> PathBuf {
        self.0.join("node.pub")
    }
    pub fn root(&self) -> PathBuf {
        self.0.join("root.shoal")
    }
    pub fn seeder_cert(&self) -> PathBuf {
        self.0.join("seeder-cert.pem")
    }
    pub fn db(&self) -> PathBuf {
        self.0.join("node.redb")
    }
    pub fn staging(&self) -> PathBuf {
        self.0.join("staging")
    }
    pub fn previous(&self) -> PathBuf {
        self.0.join("previous")
    }
    /// This device's signed admission, kept for the LAN while the seeder is away.
    pub fn admission(&self) -> PathBuf {
        self.0.join("admission.shoal")
    }

    pub fn status(&self) -> PathBuf {
        self.0.join("status.json")
    }
    pub fn handoff(&self) -> PathBuf {
        self.0.join("handoff")
    }

    pub fn load_config(&self) -> Result<NodeConfig, NodeError> {
        let path = self.config();
        let text = std::fs::read_to_string(&path).map_err(NodeError::io(&path))?;
        serde_json::from_str(&text)
            .map_err(|e| NodeError::Config(format!("{}: not a node config: {e}", path.display())))
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, directory fsync).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), NodeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(NodeError::io(path))
}

/// Replaces `path` with `bytes` atomically (temp file, rename), without syncing: for
/// files that are views of state kept elsewhere.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(NodeError::io(path))
}

/// Makes renames and creations in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
