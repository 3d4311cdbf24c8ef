//! The operator commands (`publish`, `devices`, `deploy`, `tokens`): thin clients of
//! the management API. Each prints a human summary, or the API's JSON with `--json`.
//! `audit` is the exception: it reads the log file offline.

pub mod audit;
pub mod deploy;
pub mod devices;
pub mod https;
pub mod publish;
pub mod tokens;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::PathBuf;

/// Where the management API is, how to know it and how to authenticate, from
/// `--url/--cert/--token-file` or `SHOAL_URL/SHOAL_CERT/SHOAL_TOKEN_FILE`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ApiFlags {
    /// The seeder's management API, e.g. https://127.0.0.1:7480 (HTTPS only).
    #[arg(long, env = "SHOAL_URL", global = true)]
    pub url: Option<String>,
    /// A file holding a bearer token (the seeder writes DIR/admin.token).
    #[arg(long, env = "SHOAL_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// The seeder's certificate to pin (PEM; the seeder writes DIR/tls/cert.pem); the
    /// system's root certificates when not given.
    #[arg(long, value_name = "PEM", env = "SHOAL_CERT", global = true)]
    pub cert: Option<PathBuf>,
}

/// A client of the management API.
pub struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(flags: &ApiFlags) -> Result<Api> {
        let Some(url) = &flags.url else {
            bail!("no seeder given: pass --url or set SHOAL_URL");
        };
        https::require_https(url)?;
        let Some(token_file) = &flags.token_file else {
            bail!("no token given: pass --token-file or set SHOAL_TOKEN_FILE");
        };
        let token = crate::files::read_text_capped(token_file, 4096)?
            .trim()
            .to_string();
        if token.is_empty() {
            bail!("{}: the token file is empty", token_file.display());
        }
        let agent = https::agent(&https::Trust::from_flag(flags.cert.as_deref())?)?;
        Ok(Api {
            base: url.trim_end_matches('/').to_string(),
            token,
            agent,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn finish(
        &self,
        what: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let mut r =
            r.with_context(|| format!("{what}: cannot reach the seeder at {}", self.base))?;
        let status = r.status();
        let body: Value = r
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_json()
            .with_context(|| format!("{what}: the seeder answered {status} without JSON"))?;
        if !status.is_success() {
            let msg = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            bail!("{what}: the seeder refused ({status}): {msg}");
        }
        Ok(body)
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        let r = self
            .agent
            .get(self.url(path))
            .header("Authorization", self.auth())
            .call();
        self.finish(&format!("GET {path}"), r)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        let r = self
            .agent
            .post(self.url(path))
            .header("Authorization", self.auth())
            .send_json(body);
        self.finish(&format!("POST {path}"), r)
    }

    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Result<Value> {
        let r = self
            .agent
            .post(self.url(path))
            .header("Authorization", self.auth())
            .header("Content-Type", "application/octet-stream")
            .send(body);
        self.finish(&format!("POST {path}"), r)
    }

    pub fn put_bytes(&self, path: &str, body: &[u8]) -> Result<Value> {
        let r = self
            .agent
            .put(self.url(path))
            .header("Authorization", self.auth())
            .header("Content-Type", "application/octet-stream")
            .send(body);
        self.finish(&format!("PUT {path}"), r)
    }
}

/// Prints `v` as indented JSON.
pub fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
