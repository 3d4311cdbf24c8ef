//! `GET /dashboard`: one server-rendered, read-only HTML page (no script, no external
//! resource): devices, releases, deployments with each phase's progress, bytes by
//! source per site, and the newest audit entries. It refreshes itself every 15 s.
//!
//! A browser cannot send a bearer header from the address bar, so the first visit is
//! `/dashboard?token=<token>`: the page answers with a redirect to `/dashboard` that
//! sets the token as a `Secure`, `HttpOnly`, `SameSite=Strict` cookie, which `gate` accepts for
//! this page only (see docs/decisions/0008-api-tokens.md).

use super::metrics::site_bytes;
use super::roles::Principal;
use super::{ApiError, AppState, blocking};
use crate::store::{DeploymentState, StatusRecord};
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// Audit entries shown, newest first.
const AUDIT_ROWS: usize = 50;

pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if let Some(token) = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
    {
        // gate checked this token already; trade it for a cookie and get it out of
        // the address bar
        let cookie = format!(
            "{}={token}; Path=/dashboard; Secure; HttpOnly; SameSite=Strict",
            super::gate::COOKIE
        );
        return Ok((
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/dashboard".to_string()),
                (header::SET_COOKIE, cookie),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
        )
            .into_response());
    }
    let html = blocking(move || render(&state, &who)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `2026-11-27 21:05:09Z` from unix seconds.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
th{background:#eef}td{vertical-align:top}.ok{color:#070}.bad{color:#b00}.muted{color:#777}code{font-size:.95em}\
#audit td:nth-child(2){white-space:nowrap}#audit td:nth-child(5){word-break:break-all;max-width:28em}";

fn render(state: &AppState, who: &Principal) -> Result<String, ApiError> {
    let store = &state.store;
    let now = crate::time::now();
    let releases = store.list_releases()?;
    let names: BTreeMap<_, _> = releases
        .iter()
        .map(|r| (r.id, format!("{}@{}", r.name, r.version)))
        .collect();
    let mut fleet = Vec::new();
    for d in store.list_devices()? {
        let st = store.status(d.id)?;
        fleet.push((d, st));
    }
    let deployments = store.list_deployments()?;
    let audit = crate::audit::read_entries(state.audit.dir())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;

    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"15\">\
<title>shoal seeder</title><style>{STYLE}</style></head><body>\
<h1>shoal seeder</h1><p class=\"muted\">{} &middot; viewed with {} &middot; read only</p>",
        utc(now),
        esc(&who.name())
    );

    let _ = write!(
        o,
        "<h2>Devices ({})</h2><table id=\"devices\"><tr><th>device</th><th>admission</th><th>group</th>\
<th>site</th><th>type</th><th>reported</th><th>release</th><th>progress</th><th>last seen</th></tr>",
        fleet.len()
    );
    for (d, st) in &fleet {
        let admission = if d.decommissioned {
            "decommissioned".to_string()
        } else {
            format!("{:?}", d.state).to_lowercase()
        };
        let (reported, release, progress) = describe_status(st.as_ref(), &names);
        let _ = write!(
            o,
            "<tr class=\"device\" data-id=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>\
<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.id,
            esc(&d.id.to_hex()[..16]),
            esc(&admission),
            esc(d.group.as_deref().unwrap_or("-")),
            esc(&d.site),
            esc(&d.device_type),
            reported,
            esc(&release),
            esc(&progress),
            d.last_seen.map_or_else(|| "never".to_string(), utc)
        );
    }
    o.push_str("</table>");

    let _ = write!(
        o,
        "<h2>Releases ({})</h2><table id=\"releases\"><tr><th>release</th><th>counter</th><th>device types</th>\
<th>size</th><th>unique</th><th>published</th><th>id</th></tr>",
        releases.len()
    );
    for r in &releases {
        let _ = write!(
            o,
            "<tr class=\"release\"><td>{}@{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&r.name),
            esc(&r.version),
            r.counter,
            esc(&r.device_types.join(", ")),
            mib(r.total_bytes),
            mib(r.unique_bytes),
            r.published_at.map_or_else(|| "-".to_string(), utc),
            r.id.short()
        );
    }
    o.push_str("</table>");

    let _ = write!(o, "<h2>Deployments ({})</h2>", deployments.len());
    for d in deployments.iter().rev() {
        let phases = store.deployment_progress(d.id)?;
        let class = match d.state {
            DeploymentState::Paused | DeploymentState::Aborted => "bad",
            DeploymentState::Complete => "ok",
            DeploymentState::Active => "",
        };
        let _ = write!(
            o,
            "<div class=\"deployment\" id=\"deployment-{}\"><h3>deployment {}: {}@{} to group {} \
<span class=\"{class}\">{}</span>, phase {} of {}</h3>",
            d.id,
            d.id,
            esc(&d.release_name),
            esc(&d.release_version),
            esc(&d.group),
            format!("{:?}", d.state).to_lowercase(),
            d.phase + 1,
            d.phase_sizes.len().max(1)
        );
        if let Some(reason) = &d.paused_reason
            && d.state == DeploymentState::Paused
        {
            let _ = write!(o, "<p class=\"bad\">{}</p>", esc(reason));
        }
        let _ = write!(
            o,
            "<table class=\"phases\"><tr><th>phase</th><th>size</th><th>devices</th><th>released</th>\
<th>succeeded</th><th>failed</th><th>in progress</th></tr>"
        );
        for (i, p) in phases.iter().enumerate() {
            let amount = d
                .phases
                .get(i)
                .map_or_else(|| "-".to_string(), ToString::to_string);
            let _ = write!(
                o,
                "<tr class=\"phase\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"ok\">{}</td>\
<td class=\"bad\">{}</td><td>{}</td></tr>",
                i + 1,
                esc(&amount),
                p.devices,
                if p.released { "yes" } else { "no" },
                p.succeeded,
                p.failed,
                p.working
            );
        }
        let _ = write!(
            o,
            "</table><p class=\"muted\">success threshold {}, failure threshold {}, created {}</p></div>",
            d.success_threshold,
            d.failure_threshold
                .map_or_else(|| "none".to_string(), |f| f.to_string()),
            utc(d.created_at)
        );
    }

    o.push_str(
        "<h2>Bytes by site</h2><table id=\"sites\"><tr><th>site</th><th>devices</th><th>WAN</th><th>LAN</th>\
<th>local</th><th>LAN share</th></tr>",
    );
    for (site, b) in site_bytes(&fleet) {
        let fetched = b.wan + b.lan;
        let share = if fetched == 0 {
            "-".to_string()
        } else {
            format!("{:.0}%", 100.0 * b.lan as f64 / fetched as f64)
        };
        let _ = write!(
            o,
            "<tr class=\"site\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{share}</td></tr>",
            esc(&site),
            b.devices,
            mib(b.wan),
            mib(b.lan),
            mib(b.local)
        );
    }
    o.push_str("</table>");

    let _ = write!(
        o,
        "<h2>Audit log ({} entries, newest first)</h2><table id=\"audit\"><tr><th>#</th><th>time</th><th>who</th>\
<th>from</th><th>what</th><th>outcome</th><th>detail</th></tr>",
        audit.len()
    );
    for e in audit.iter().rev().take(AUDIT_ROWS) {
        let class = if e.outcome == "ok" { "ok" } else { "bad" };
        let _ = write!(
            o,
            "<tr class=\"audit\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
<td class=\"{class}\">{} ({})</td><td>{}</td></tr>",
            e.seq,
            utc(e.time),
            esc(&e.actor),
            esc(&e.from),
            esc(&e.action),
            esc(&e.outcome),
            e.status,
            esc(&e.detail)
        );
    }
    o.push_str("</table></body></html>");
    Ok(o)
}

/// The reported state (HTML), the release it is about, and progress.
fn describe_status(
    st: Option<&StatusRecord>,
    names: &BTreeMap<shoal_core::Hash, String>,
) -> (String, String, String) {
    let Some(s) = st else {
        return (
            "<span class=\"muted\">no report</span>".into(),
            "-".into(),
            "-".into(),
        );
    };
    let state = format!("{:?}", s.state).to_lowercase();
    let class = match state.as_str() {
        "success" => "ok",
        "failure" | "rolledback" => "bad",
        _ => "",
    };
    let release = s.release.map_or_else(
        || "-".to_string(),
        |r| names.get(&r).cloned().unwrap_or_else(|| r.short()),
    );
    (
        format!("<span class=\"{class}\">{state}</span>"),
        release,
        format!("{}/{} bytes", s.done_bytes, s.total_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_dates() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_795_820_709), "2026-11-27 23:05:09Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
    }
}
