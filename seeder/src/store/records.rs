//! The records the store keeps and hands out. They are stored as JSON and returned as
//! JSON by the management API, so each has one serialized form: hashes and keys as
//! 64 hex digits, enums as their variant names, times as unix seconds.

use crate::rollout::Amount;
use serde::{Deserialize, Serialize};
use shoal_core::wan::{DeviceState, Enrolment, StatusReport};
use shoal_core::{DeviceId, Hash, PublicKey, Release};

/// Where a release stands on the seeder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseState {
    /// The manifest is stored; chunks are arriving. Devices never see it.
    Uploading,
    /// Every chunk it names is stored; it can be deployed.
    Published,
}

/// A release the seeder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// BLAKE3 of the signed body.
    #[serde(with = "super::hex")]
    pub id: Hash,
    pub name: String,
    pub version: String,
    pub counter: u64,
    pub device_types: Vec<String>,
    /// What all files add up to.
    pub total_bytes: u64,
    /// Distinct chunks, and the bytes they add up to: what a device holding nothing of
    /// the release fetches.
    pub unique_chunks: u64,
    pub unique_bytes: u64,
    pub state: ReleaseState,
    pub added_at: u64,
    pub published_at: Option<u64>,
}

impl ReleaseRecord {
    pub(crate) fn new(release: &Release, id: Hash, now: u64) -> ReleaseRecord {
        let (unique_chunks, unique_bytes) = release.unique_chunks();
        ReleaseRecord {
            id,
            name: release.name.clone(),
            version: release.version.clone(),
            counter: release.counter,
            device_types: release.device_types.clone(),
            total_bytes: release.total_size(),
            unique_chunks: unique_chunks as u64,
            unique_bytes,
            state: ReleaseState::Uploading,
            added_at: now,
            published_at: None,
        }
    }
}

/// A device the seeder knows: enrolled, or preauthorized before it ever connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The key id of `public_key`.
    #[serde(with = "super::hex")]
    pub id: DeviceId,
    #[serde(with = "super::hex")]
    pub public_key: PublicKey,
    /// Empty until the device enrols (a preauthorized device has not said yet).
    pub device_type: String,
    pub site: String,
    /// Deployments go to groups; a device without one gets none.
    pub group: Option<String>,
    pub state: Enrolment,
    /// Set by `decommission`; the state is then `Rejected`.
    pub decommissioned: bool,
    pub inventory: Vec<(String, String)>,
    /// When the device first enrolled; `None` for a preauthorized key not yet seen.
    pub enrolled_at: Option<u64>,
    pub last_seen: Option<u64>,
}

impl DeviceRecord {
    /// Accepted and not decommissioned: may receive heads and report status.
    pub fn is_admitted(&self) -> bool {
        self.state == Enrolment::Accepted && !self.decommissioned
    }
}

/// A release deployed to a group, in phases. A device runs the newest deployment of
/// its group that has released it (see `deployments::target`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// 1, 2, 3, ... in creation order; never reused.
    pub id: u64,
    #[serde(with = "super::hex")]
    pub release: Hash,
    pub release_name: String,
    pub release_version: String,
    pub group: String,
    pub created_at: u64,
    // Fields below came with phased rollouts; records written before them read as one
    // phase of 100%, active.
    /// The phases as given (`20%`, `100%`); one phase of 100% by default.
    #[serde(default = "one_phase")]
    pub phases: Vec<Amount>,
    /// Devices released once each phase is (cumulative); the last is every member.
    #[serde(default)]
    pub phase_sizes: Vec<u64>,
    /// The group's accepted devices when the deployment was made.
    #[serde(default)]
    pub members: u64,
    /// The phase released now (0-based).
    #[serde(default)]
    pub phase: usize,
    #[serde(default)]
    pub state: DeploymentState,
    /// Successes (of the devices released so far) needed to release the next phase.
    #[serde(default = "all")]
    pub success_threshold: Amount,
    /// Failures (beyond those acknowledged) that pause the rollout; `None`: never.
    #[serde(default)]
    pub failure_threshold: Option<Amount>,
    /// Failures counted when the operator last resumed: they no longer count against
    /// the failure threshold.
    #[serde(default)]
    pub acknowledged_failures: u64,
    /// Why it is paused, when the seeder paused it.
    #[serde(default)]
    pub paused_reason: Option<String>,
    #[serde(default)]
    pub updated_at: u64,
}

fn one_phase() -> Vec<Amount> {
    vec![Amount::Percent(100)]
}

fn all() -> Amount {
    Amount::Percent(100)
}

/// Where a deployment stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentState {
    /// Releasing devices phase by phase.
    #[default]
    Active,
    /// Held (by an operator, or by the seeder at the failure threshold): devices
    /// already handed the release keep it, no other device gets it.
    Paused,
    /// Stopped for good: like paused, and it cannot be resumed.
    Aborted,
    /// Every phase is released and the last reached its success threshold.
    Complete,
}

/// What a management API token may do (see `mgmt_api::roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, including tokens.
    Admin,
    /// Upload and publish releases.
    ReleaseManager,
    /// Create, pause, resume and abort deployments to the token's groups.
    Deployer,
    /// Read only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::ReleaseManager,
        Role::Deployer,
        Role::Viewer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReleaseManager => "release-manager",
            Role::Deployer => "deployer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A management API token. The secret itself is never stored: the store keys tokens
/// by BLAKE3 of the secret (docs/decisions/0008-api-tokens.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// 1, 2, 3, ...; never reused. The bootstrap admin token (`DIR/admin.token`) is 0.
    pub id: u64,
    pub role: Role,
    /// For deployers: the groups they may deploy to.
    pub groups: Vec<String>,
    /// Who made it (`token 0 (admin)`).
    pub created_by: String,
    pub created_at: u64,
    pub revoked_at: Option<u64>,
}

/// The last status a device reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRecord {
    #[serde(with = "super::hex")]
    pub device: DeviceId,
    /// Seeder time, unix seconds.
    pub received_at: u64,
    pub state: DeviceState,
    #[serde(with = "super::hex::option")]
    pub release: Option<Hash>,
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub bytes_local: u64,
    pub bytes_wan: u64,
    pub bytes_lan: u64,
    pub error: Option<String>,
    /// Device time, unix seconds.
    pub head_expires_at: Option<u64>,
}

impl StatusRecord {
    pub(crate) fn new(device: DeviceId, report: &StatusReport, now: u64) -> StatusRecord {
        StatusRecord {
            device,
            received_at: now,
            state: report.state,
            release: report.release,
            done_bytes: report.done_bytes,
            total_bytes: report.total_bytes,
            bytes_local: report.bytes.local,
            bytes_wan: report.bytes.wan,
            bytes_lan: report.bytes.lan,
            error: report.error.clone(),
            head_expires_at: report.head_expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::KeyId;

    // guards: the management API's JSON shape (hex ids, variant names) changing unseen
    #[test]
    fn device_record_json_uses_hex_and_variant_names() {
        let rec = DeviceRecord {
            id: KeyId([0x11; 32]),
            public_key: PublicKey([0x22; 32]),
            device_type: "pump".into(),
            site: "depot".into(),
            group: Some("canary".into()),
            state: Enrolment::Pending,
            decommissioned: false,
            inventory: vec![("os".into(), "1".into())],
            enrolled_at: Some(5),
            last_seen: None,
        };
        let json: serde_json::Value = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["id"], "11".repeat(32));
        assert_eq!(json["public_key"], "22".repeat(32));
        assert_eq!(json["state"], "Pending");
        assert_eq!(json["inventory"][0][1], "1");
        let back: DeviceRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn status_record_flattens_the_report() {
        let report = StatusReport {
            state: DeviceState::Failure,
            release: Some(Hash([3; 32])),
            done_bytes: 7,
            total_bytes: 9,
            bytes: shoal_core::wan::BytesBySource {
                local: 1,
                wan: 2,
                lan: 4,
            },
            error: Some("disk full".into()),
            head_expires_at: Some(100),
            inventory: vec![],
        };
        let rec = StatusRecord::new(KeyId([1; 32]), &report, 50);
        assert_eq!((rec.bytes_local, rec.bytes_wan, rec.bytes_lan), (1, 2, 4));
        let json: serde_json::Value = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["release"], "03".repeat(32));
        assert_eq!(json["state"], "Failure");
        assert_eq!(json["received_at"], 50);
    }
}
