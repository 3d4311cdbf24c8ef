//! `GET /metrics`: Prometheus text (format 0.0.4). Counters of the device API and the
//! management API, and gauges of the fleet as its devices last reported: devices by
//! admission state and by reported state (install outcomes), bytes by source per site,
//! stale heads, deployments by state.

use super::{ApiError, AppState, blocking};
use crate::store::{DeviceRecord, StatusRecord};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Bytes by source per site, summed over the devices' last reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiteBytes {
    pub local: u64,
    pub wan: u64,
    pub lan: u64,
    pub devices: u64,
}

pub fn site_bytes(fleet: &[(DeviceRecord, Option<StatusRecord>)]) -> BTreeMap<String, SiteBytes> {
    let mut out: BTreeMap<String, SiteBytes> = BTreeMap::new();
    for (d, st) in fleet {
        let e = out.entry(d.site.clone()).or_default();
        e.devices += 1;
        if let Some(s) = st {
            e.local += s.bytes_local;
            e.wan += s.bytes_wan;
            e.lan += s.bytes_lan;
        }
    }
    out
}

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub async fn render(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let text = blocking(move || {
        let mut fleet = Vec::new();
        for d in state.store.list_devices()? {
            let st = state.store.status(d.id)?;
            fleet.push((d, st));
        }
        let deployments = state.store.list_deployments()?;
        let now = crate::time::now();
        let (bytes, chunks, cut) = state.counters.snapshot();
        let mut o = String::new();
        family(&mut o, "shoal_seeder_chunk_bytes_served_total", "counter", "Chunk bytes sent to devices over the WAN.");
        let _ = writeln!(o, "shoal_seeder_chunk_bytes_served_total {bytes}");
        family(&mut o, "shoal_seeder_chunks_served_total", "counter", "Chunks sent to devices.");
        let _ = writeln!(o, "shoal_seeder_chunks_served_total {chunks}");
        family(&mut o, "shoal_seeder_connections_cut_total", "counter", "Device connections cut off for breaking a limit or the protocol.");
        let _ = writeln!(o, "shoal_seeder_connections_cut_total {cut}");
        family(&mut o, "shoal_seeder_api_refusals_total", "counter", "Management API requests refused (401, 403).");
        let _ = writeln!(o, "shoal_seeder_api_refusals_total {}", state.refusals.load(Ordering::Relaxed));
        family(&mut o, "shoal_seeder_audit_entries", "gauge", "Entries in the audit log.");
        let _ = writeln!(o, "shoal_seeder_audit_entries {}", state.audit.len());

        let mut admission: BTreeMap<String, u64> = BTreeMap::new();
        let mut reported: BTreeMap<String, u64> = BTreeMap::new();
        let mut stale = 0u64;
        for (d, st) in &fleet {
            let a = if d.decommissioned { "decommissioned".to_string() } else { format!("{:?}", d.state).to_lowercase() };
            *admission.entry(a).or_default() += 1;
            if let Some(s) = st {
                *reported.entry(format!("{:?}", s.state).to_lowercase()).or_default() += 1;
                if s.head_expires_at.is_some_and(|t| t < now) {
                    stale += 1;
                }
            }
        }
        family(&mut o, "shoal_seeder_devices", "gauge", "Devices by admission state.");
        for (k, v) in &admission {
            let _ = writeln!(o, "shoal_seeder_devices{{state=\"{}\"}} {v}", label(k));
        }
        family(&mut o, "shoal_seeder_device_reports", "gauge", "Devices by the state they last reported (install outcomes: success, failure, rolledback).");
        for (k, v) in &reported {
            let _ = writeln!(o, "shoal_seeder_device_reports{{state=\"{}\"}} {v}", label(k));
        }
        family(&mut o, "shoal_seeder_stale_heads", "gauge", "Devices whose last report says their head has expired.");
        let _ = writeln!(o, "shoal_seeder_stale_heads {stale}");
        family(&mut o, "shoal_seeder_site_bytes", "gauge", "Bytes of the devices' current or last update, by site and source, as they last reported.");
        for (site, b) in site_bytes(&fleet) {
            for (source, n) in [("local", b.local), ("wan", b.wan), ("lan", b.lan)] {
                let _ = writeln!(o, "shoal_seeder_site_bytes{{site=\"{}\",source=\"{source}\"}} {n}", label(&site));
            }
        }
        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        for d in &deployments {
            *by_state.entry(format!("{:?}", d.state).to_lowercase()).or_default() += 1;
        }
        family(&mut o, "shoal_seeder_deployments", "gauge", "Deployments by state.");
        for (k, v) in &by_state {
            let _ = writeln!(o, "shoal_seeder_deployments{{state=\"{}\"}} {v}", label(k));
        }
        Ok(o)
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
