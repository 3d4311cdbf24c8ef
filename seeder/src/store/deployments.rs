//! Deployments: a published release to a group, in phases. A device runs the newest
//! deployment of its group that has released it; the arithmetic of phases and
//! thresholds is `crate::rollout`'s.
//!
//! A deployment releases a device when the device's phase (or, for a device that
//! joined the group later, the last phase) is at or below the current phase, and:
//! - active or complete: always;
//! - paused or aborted: only if the device was already handed a head naming the
//!   release (it may be installing it; it finishes and reports). Other devices fall
//!   back to the group's older deployments, so they stay on what they run.

use super::Store;
use super::error::StoreError;
use super::records::{
    DeploymentRecord, DeploymentState, DeviceRecord, ReleaseRecord, ReleaseState, StatusRecord,
};
use super::tables::{
    COUNTERS, DEPLOYMENT_MEMBERS, DEPLOYMENTS, DEVICES, GROUP_DEPLOYMENTS, HEADS, LAST_DEPLOYMENT,
    RELEASES, STATUS, all_json, get_json, put_json,
};
use crate::rollout::{self, Amount, Step, Tally};
use redb::{ReadableTable, WriteTransaction};
use shoal_core::wan::DeviceState;
use shoal_core::{DeviceId, Hash};

/// How a deployment rolls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub phases: Vec<Amount>,
    pub success_threshold: Amount,
    pub failure_threshold: Option<Amount>,
}

impl Default for Plan {
    /// One phase of every device; no failure threshold (the form before phases).
    fn default() -> Plan {
        Plan {
            phases: vec![Amount::Percent(100)],
            success_threshold: Amount::Percent(100),
            failure_threshold: None,
        }
    }
}

/// What an operator asks of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Abort,
}

impl Control {
    fn verb(self) -> &'static str {
        match self {
            Control::Pause => "paused",
            Control::Resume => "resumed",
            Control::Abort => "aborted",
        }
    }
}

fn state_name(s: DeploymentState) -> &'static str {
    match s {
        DeploymentState::Active => "active",
        DeploymentState::Paused => "paused",
        DeploymentState::Aborted => "aborted",
        DeploymentState::Complete => "complete",
    }
}

/// One phase's devices and what they reported about the deployment's release.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PhaseProgress {
    pub devices: u64,
    pub released: bool,
    pub succeeded: u64,
    pub failed: u64,
    /// Reported something else about the release (downloading, installing, ...).
    pub working: u64,
}

impl Store {
    /// Deploys a published release to `group` in one phase (the form before phases).
    pub fn create_deployment(
        &self,
        release: Hash,
        group: &str,
        now: u64,
    ) -> Result<DeploymentRecord, StoreError> {
        self.create_phased(release, group, &Plan::default(), now)
    }

    /// Deploys a published release to `group` with `plan`. Its members are the group's
    /// accepted devices now. Ids are 1, 2, 3, ... and never reused.
    pub fn create_phased(
        &self,
        release: Hash,
        group: &str,
        plan: &Plan,
        now: u64,
    ) -> Result<DeploymentRecord, StoreError> {
        self.write(|txn| {
            let releases = txn.open_table(RELEASES)?;
            let rel: ReleaseRecord =
                get_json(&releases, release.0, format_args!("release {release}"))?
                    .ok_or(StoreError::UnknownRelease(release))?;
            if rel.state != ReleaseState::Published {
                return Err(StoreError::NotPublished(release));
            }
            let mut counters = txn.open_table(COUNTERS)?;
            let last = counters.get(LAST_DEPLOYMENT)?.map_or(0, |g| g.value());
            let id = last
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt(format!("deployment counter at {last}")))?;
            counters.insert(LAST_DEPLOYMENT, id)?;

            let devices: Vec<DeviceRecord> = all_json(&txn.open_table(DEVICES)?, "device")?;
            let mut members: Vec<(Hash, DeviceId)> = devices
                .iter()
                .filter(|d| d.is_admitted() && d.group.as_deref() == Some(group))
                .map(|d| (member_order(id, d.id), d.id))
                .collect();
            members.sort();
            let phases = if plan.phases.is_empty() {
                Plan::default().phases
            } else {
                plan.phases.clone()
            };
            let sizes = rollout::cumulative(&phases, members.len() as u64);
            let mut table = txn.open_table(DEPLOYMENT_MEMBERS)?;
            for (i, (_, device)) in members.iter().enumerate() {
                let phase = sizes.iter().position(|&n| (i as u64) < n).unwrap_or(0);
                table.insert((id, device.0), phase as u32)?;
            }
            let record = DeploymentRecord {
                id,
                release,
                release_name: rel.name,
                release_version: rel.version,
                group: group.to_string(),
                created_at: now,
                members: members.len() as u64,
                // an empty group releases newcomers at once: they belong to the last phase
                phase: if members.is_empty() {
                    sizes.len() - 1
                } else {
                    0
                },
                phase_sizes: sizes,
                phases,
                state: DeploymentState::Active,
                success_threshold: plan.success_threshold,
                failure_threshold: plan.failure_threshold,
                acknowledged_failures: 0,
                paused_reason: None,
                updated_at: now,
            };
            put_json(&mut txn.open_table(DEPLOYMENTS)?, id, &record)?;
            txn.open_table(GROUP_DEPLOYMENTS)?.insert((group, id), ())?;
            Ok(record)
        })
    }

    pub fn deployment(&self, id: u64) -> Result<Option<DeploymentRecord>, StoreError> {
        self.read(|txn| {
            get_json(
                &txn.open_table(DEPLOYMENTS)?,
                id,
                format_args!("deployment {id}"),
            )
        })
    }

    /// Every deployment, oldest first.
    pub fn list_deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        self.read(|txn| all_json(&txn.open_table(DEPLOYMENTS)?, "deployment"))
    }

    /// Pauses, resumes or aborts deployment `id`. Resuming acknowledges the failures
    /// seen so far (they no longer count against the failure threshold) and lets the
    /// rollout go on at once if its phase has met the success threshold.
    pub fn control_deployment(
        &self,
        id: u64,
        control: Control,
        now: u64,
    ) -> Result<DeploymentRecord, StoreError> {
        self.write(|txn| {
            let mut dep = load_deployment(txn, id)?;
            let refuse = |dep: &DeploymentRecord| StoreError::DeploymentTransition {
                id,
                from: state_name(dep.state),
                to: control.verb(),
            };
            match (control, dep.state) {
                (Control::Pause, DeploymentState::Active) => {
                    dep.state = DeploymentState::Paused;
                    dep.paused_reason = Some("paused by an operator".into());
                }
                (Control::Pause, DeploymentState::Paused)
                | (Control::Resume, DeploymentState::Active)
                | (Control::Abort, DeploymentState::Aborted) => return Ok(dep),
                (Control::Resume, DeploymentState::Paused) => {
                    let tally = tally_released(txn, &dep)?;
                    dep.state = DeploymentState::Active;
                    dep.acknowledged_failures = tally.failed;
                    dep.paused_reason = None;
                }
                (Control::Abort, DeploymentState::Active | DeploymentState::Paused) => {
                    dep.state = DeploymentState::Aborted;
                }
                _ => return Err(refuse(&dep)),
            }
            dep.updated_at = now;
            put_json(&mut txn.open_table(DEPLOYMENTS)?, id, &dep)?;
            if dep.state == DeploymentState::Active {
                evaluate(txn, id, now)?;
            }
            load_deployment(txn, id)
        })
    }

    /// Each phase of deployment `id`: its devices and what they reported.
    pub fn deployment_progress(&self, id: u64) -> Result<Vec<PhaseProgress>, StoreError> {
        self.read(|txn| {
            let dep: DeploymentRecord = get_json(
                &txn.open_table(DEPLOYMENTS)?,
                id,
                format_args!("deployment {id}"),
            )?
            .ok_or(StoreError::UnknownDeployment(id))?;
            let mut out = vec![PhaseProgress::default(); dep.phase_sizes.len().max(1)];
            for (i, p) in out.iter_mut().enumerate() {
                p.released = i <= dep.phase;
            }
            let members = txn.open_table(DEPLOYMENT_MEMBERS)?;
            let status = txn.open_table(STATUS)?;
            for entry in members.range((id, [0u8; 32])..=(id, [0xff; 32]))? {
                let (key, phase) = entry?;
                let device = key.value().1;
                let Some(p) = out.get_mut(phase.value() as usize) else {
                    continue;
                };
                p.devices += 1;
                let st: Option<StatusRecord> =
                    get_json(&status, device, format_args!("status of a device"))?;
                match outcome(st.as_ref(), dep.release) {
                    Some(Outcome::Succeeded) => p.succeeded += 1,
                    Some(Outcome::Failed) => p.failed += 1,
                    Some(Outcome::Working) => p.working += 1,
                    None => {}
                }
            }
            Ok(out)
        })
    }

    /// What the device should run: the newest deployment of its group that releases it
    /// (see the module doc), with its release. `None` for a device that is not
    /// accepted, has no group, or that no deployment of its group releases.
    pub fn target(
        &self,
        device: DeviceId,
    ) -> Result<Option<(DeploymentRecord, ReleaseRecord)>, StoreError> {
        self.read(|txn| {
            let dev: DeviceRecord = get_json(
                &txn.open_table(DEVICES)?,
                device.0,
                format_args!("device {device}"),
            )?
            .ok_or(StoreError::UnknownDevice(device))?;
            let Some(group) = dev.group.as_deref().filter(|_| dev.is_admitted()) else {
                return Ok(None);
            };
            let index = txn.open_table(GROUP_DEPLOYMENTS)?;
            let deployments = txn.open_table(DEPLOYMENTS)?;
            let members = txn.open_table(DEPLOYMENT_MEMBERS)?;
            let handed = txn.open_table(HEADS)?.get(device.0)?.map(|g| g.value().1);
            for entry in index.range((group, 0)..=(group, u64::MAX))?.rev() {
                let id = entry?.0.value().1;
                let dep: DeploymentRecord =
                    get_json(&deployments, id, format_args!("deployment {id}"))?.ok_or_else(
                        || {
                            StoreError::Corrupt(format!(
                                "group {group} lists deployment {id}, which is not stored"
                            ))
                        },
                    )?;
                let phase = members.get((id, device.0))?.map(|g| g.value() as usize);
                let last = dep.phase_sizes.len().max(1) - 1;
                let in_released_phase = phase.unwrap_or(last) <= dep.phase;
                let releases = match dep.state {
                    DeploymentState::Active | DeploymentState::Complete => in_released_phase,
                    DeploymentState::Paused | DeploymentState::Aborted => {
                        in_released_phase && handed == Some(dep.release.0)
                    }
                };
                if !releases {
                    continue;
                }
                let rel: ReleaseRecord = get_json(
                    &txn.open_table(RELEASES)?,
                    dep.release.0,
                    format_args!("release {}", dep.release),
                )?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "deployment {id} names release {}, which is not stored",
                        dep.release
                    ))
                })?;
                return Ok(Some((dep, rel)));
            }
            Ok(None)
        })
    }
}

/// Where a device placed in a deployment's order: a fixed pseudo-random order, so the
/// first phase is no particular corner of the fleet.
fn member_order(deployment: u64, device: DeviceId) -> Hash {
    let mut bytes = [0u8; 40];
    bytes[..8].copy_from_slice(&deployment.to_le_bytes());
    bytes[8..].copy_from_slice(&device.0);
    Hash::of(&bytes)
}

enum Outcome {
    Succeeded,
    Failed,
    Working,
}

/// What a device's last status says about `release`.
fn outcome(status: Option<&StatusRecord>, release: Hash) -> Option<Outcome> {
    let st = status?;
    if st.release != Some(release) {
        return None;
    }
    Some(match st.state {
        DeviceState::Success => Outcome::Succeeded,
        DeviceState::Failure | DeviceState::RolledBack => Outcome::Failed,
        _ => Outcome::Working,
    })
}

fn load_deployment(txn: &WriteTransaction, id: u64) -> Result<DeploymentRecord, StoreError> {
    get_json(
        &txn.open_table(DEPLOYMENTS)?,
        id,
        format_args!("deployment {id}"),
    )?
    .ok_or(StoreError::UnknownDeployment(id))
}

/// The released members' outcomes. Scans the members: fine for fleets of thousands;
/// larger ones want counters kept as reports arrive.
fn tally_released(txn: &WriteTransaction, dep: &DeploymentRecord) -> Result<Tally, StoreError> {
    let members = txn.open_table(DEPLOYMENT_MEMBERS)?;
    let status = txn.open_table(STATUS)?;
    let mut t = Tally::default();
    for entry in members.range((dep.id, [0u8; 32])..=(dep.id, [0xff; 32]))? {
        let (key, phase) = entry?;
        if phase.value() as usize > dep.phase {
            continue;
        }
        t.released += 1;
        let st: Option<StatusRecord> =
            get_json(&status, key.value().1, format_args!("status of a device"))?;
        match outcome(st.as_ref(), dep.release) {
            Some(Outcome::Succeeded) => t.succeeded += 1,
            Some(Outcome::Failed) => t.failed += 1,
            _ => {}
        }
    }
    Ok(t)
}

/// A deployment that moved by itself (a report took it over a threshold).
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutChange {
    pub before: DeploymentRecord,
    pub after: DeploymentRecord,
}

impl RolloutChange {
    /// `deployment 2 (fw@2 to group g): phase 1 -> 2 of 2, active` and the pause reason.
    pub fn describe(&self) -> String {
        let a = &self.after;
        let mut text = format!(
            "deployment {} ({}@{} to group {}): phase {} -> {} of {}, {}",
            a.id,
            a.release_name,
            a.release_version,
            a.group,
            self.before.phase + 1,
            a.phase + 1,
            a.phase_sizes.len().max(1),
            state_name(a.state)
        );
        if a.state == DeploymentState::Paused
            && let Some(r) = &a.paused_reason
        {
            text.push_str(": ");
            text.push_str(r);
        }
        text
    }
}

/// Applies the rollout decision to an active deployment, as many phases as it allows.
pub(crate) fn evaluate(
    txn: &WriteTransaction,
    id: u64,
    now: u64,
) -> Result<Option<RolloutChange>, StoreError> {
    let mut dep = load_deployment(txn, id)?;
    let before = dep.clone();
    let phases = dep.phase_sizes.len().max(1);
    let mut changed = false;
    while dep.state == DeploymentState::Active {
        let tally = tally_released(txn, &dep)?;
        match rollout::decide(
            tally,
            dep.acknowledged_failures,
            dep.success_threshold,
            dep.failure_threshold,
            dep.phase,
            phases,
        ) {
            Step::Stay => break,
            Step::Pause { reason } => {
                dep.state = DeploymentState::Paused;
                dep.paused_reason = Some(reason);
            }
            Step::Advance => dep.phase += 1,
            Step::Complete => dep.state = DeploymentState::Complete,
        }
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    dep.updated_at = now;
    put_json(&mut txn.open_table(DEPLOYMENTS)?, id, &dep)?;
    Ok(Some(RolloutChange { before, after: dep }))
}

/// Evaluates the active deployments of `group` (after one of its devices reported).
pub(crate) fn evaluate_group(
    txn: &WriteTransaction,
    group: &str,
    now: u64,
) -> Result<Vec<RolloutChange>, StoreError> {
    let ids: Vec<u64> = {
        let index = txn.open_table(GROUP_DEPLOYMENTS)?;
        let mut ids = Vec::new();
        for entry in index.range((group, 0)..=(group, u64::MAX))? {
            ids.push(entry?.0.value().1);
        }
        ids
    };
    let mut changes = Vec::new();
    for id in ids {
        if load_deployment(txn, id)?.state == DeploymentState::Active
            && let Some(c) = evaluate(txn, id, now)?
        {
            changes.push(c);
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{key, release_with};
    use super::*;

    /// A store with two published releases and one uploading, returned by id.
    fn store() -> (tempfile::TempDir, Store, [Hash; 3]) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut ids = [Hash([0; 32]); 3];
        for (i, chunk) in [&b"v1"[..], b"v2", b"v3"].into_iter().enumerate() {
            let (b, r, id) = release_with("fw", &format!("{}", i + 1), i as u64 + 1, &[chunk]);
            s.add_release(&b, &r, id, 1).unwrap();
            if i < 2 {
                s.put_chunk(Hash::of(chunk), chunk).unwrap();
                s.publish_release(id).unwrap();
            }
            ids[i] = id;
        }
        (dir, s, ids)
    }

    #[test]
    fn only_published_releases_are_deployed() {
        let (_d, s, [r1, _, r3]) = store();
        let d = s.create_deployment(r1, "g", 10).unwrap();
        assert_eq!(d.id, 1);
        assert_eq!(
            (d.release_name.as_str(), d.release_version.as_str()),
            ("fw", "1")
        );
        assert!(
            matches!(s.create_deployment(r3, "g", 11), Err(StoreError::NotPublished(h)) if h == r3)
        );
        let unknown = Hash([7; 32]);
        assert!(
            matches!(s.create_deployment(unknown, "g", 11), Err(StoreError::UnknownRelease(h)) if h == unknown)
        );
        // the refusals used no id
        assert_eq!(s.create_deployment(r1, "h", 12).unwrap().id, 2);
        assert_eq!(
            s.list_deployments()
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(s.deployment(2).unwrap().unwrap().group, "h");
        assert_eq!(s.deployment(3).unwrap(), None);
    }

    #[test]
    fn target_is_the_newest_deployment_to_the_devices_group() {
        let (_d, s, [r1, r2, _]) = store();
        let dev = s.preauthorize(key(1), Some("line-1")).unwrap().id;
        assert_eq!(s.target(dev).unwrap(), None);
        s.create_deployment(r1, "line-1", 10).unwrap();
        let newest = s.create_deployment(r2, "line-1", 11).unwrap();
        // a later deployment to another group does not count, nor does a group that
        // sorts right after this one
        s.create_deployment(r1, "line-2", 12).unwrap();
        s.create_deployment(r1, "line-1x", 13).unwrap();
        let (dep, rel) = s.target(dev).unwrap().unwrap();
        assert_eq!(dep, newest);
        assert_eq!(rel.id, r2);
        // moving the device moves its target
        s.accept(dev, Some("line-2")).unwrap();
        assert_eq!(s.target(dev).unwrap().unwrap().0.id, 3);
    }

    #[test]
    fn devices_not_accepted_have_no_target() {
        let (_d, s, [r1, _, _]) = store();
        s.create_deployment(r1, "g", 10).unwrap();
        let pending = s.enrol(key(1), "pump", "a", &[], 1).unwrap().id;
        assert_eq!(s.target(pending).unwrap(), None);
        let dev = s.preauthorize(key(2), Some("g")).unwrap().id;
        assert!(s.target(dev).unwrap().is_some());
        s.decommission(dev).unwrap();
        assert_eq!(s.target(dev).unwrap(), None);
        // accepted but in no group
        let loose = s.preauthorize(key(3), None).unwrap().id;
        assert_eq!(s.target(loose).unwrap(), None);
        let unknown = key(4).key_id();
        assert!(matches!(
            s.target(unknown),
            Err(StoreError::UnknownDevice(_))
        ));
    }

    fn report(state: DeviceState, release: Hash) -> shoal_core::wan::StatusReport {
        shoal_core::wan::StatusReport {
            state,
            release: Some(release),
            done_bytes: 0,
            total_bytes: 0,
            bytes: Default::default(),
            error: None,
            head_expires_at: None,
            inventory: vec![],
        }
    }

    #[test]
    fn a_failure_in_the_first_phase_pauses_and_resume_goes_on() {
        let (_d, s, [r1, r2, _]) = store();
        let devs: Vec<DeviceId> = (0..10)
            .map(|i| s.preauthorize(key(i), Some("g")).unwrap().id)
            .collect();
        s.create_deployment(r1, "g", 1).unwrap();
        let plan = Plan {
            phases: rollout::parse_phases("20%,100%").unwrap(),
            success_threshold: Amount::Percent(100),
            failure_threshold: Some(Amount::Count(1)),
        };
        let dep = s.create_phased(r2, "g", &plan, 2).unwrap();
        assert_eq!((dep.members, dep.phase_sizes.clone()), (10, vec![2, 10]));
        let on = |d: DeviceId| s.target(d).unwrap().unwrap().1.id;
        let first: Vec<DeviceId> = devs.iter().copied().filter(|&d| on(d) == r2).collect();
        assert_eq!(first.len(), 2, "phase 1 is 20% of 10");
        for &d in &first {
            s.next_head_seq(d, r2).unwrap();
        }
        s.put_status(first[0], &report(DeviceState::Success, r2), 3)
            .unwrap();
        s.put_status(first[1], &report(DeviceState::RolledBack, r2), 4)
            .unwrap();
        let dep = s.deployment(dep.id).unwrap().unwrap();
        assert_eq!(dep.state, DeploymentState::Paused, "{dep:?}");
        assert_eq!(dep.phase, 0);
        assert!(dep.paused_reason.unwrap().contains("failure threshold"));
        let on_r2 = devs.iter().filter(|&&d| on(d) == r2).count();
        assert_eq!(
            on_r2, 2,
            "paused: the devices handed r2 keep it, no other gets it"
        );

        let dep = s.control_deployment(dep.id, Control::Resume, 5).unwrap();
        assert_eq!((dep.state, dep.phase), (DeploymentState::Active, 1));
        assert_eq!(dep.acknowledged_failures, 1);
        assert!(devs.iter().all(|&d| on(d) == r2), "phase 2 is everyone");
        let progress = s.deployment_progress(dep.id).unwrap();
        assert_eq!(progress[0].devices + progress[1].devices, 10);
        assert_eq!((progress[0].succeeded, progress[0].failed), (1, 1));

        // abort: a device not yet handed the release goes back to r1
        let dep = s.control_deployment(dep.id, Control::Abort, 6).unwrap();
        assert_eq!(dep.state, DeploymentState::Aborted);
        let later = devs.iter().copied().find(|d| !first.contains(d)).unwrap();
        assert_eq!(on(later), r1);
        assert_eq!(on(first[0]), r2, "a device handed it keeps it");
        assert!(matches!(
            s.control_deployment(dep.id, Control::Resume, 7),
            Err(StoreError::DeploymentTransition { .. })
        ));
    }
}
