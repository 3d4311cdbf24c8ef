//! Every role against every management API endpoint, over a real seeder: what a role
//! may do answers 2xx (a change adds one `ok` entry to the audit log, a read none);
//! what it may not answers 403, also with a malformed body (the permission is checked
//! before the body is read), and adds one `refused` entry; no token or a wrong one
//! answers 401 and adds one. A deployer for group A cannot deploy to, or control a
//! deployment of, group B. No token's secret is stored anywhere in the data folder.

mod common;

use common::{Seeder, Work, ok};
use serde_json::{Value, json};
use shoal_core::Hash;
use std::cell::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Admin,
    ReleaseManager,
    Deployer,
    Viewer,
}

use Role::*;
const ALL: [Role; 4] = [Admin, ReleaseManager, Deployer, Viewer];

impl Role {
    fn name(self) -> &'static str {
        match self {
            Admin => "admin",
            ReleaseManager => "release-manager",
            Deployer => "deployer",
            Viewer => "viewer",
        }
    }
}

enum Body {
    None,
    Json(Value),
    Bytes(Vec<u8>),
    /// Declared JSON, cut off mid-object.
    Malformed,
}

struct Req {
    method: &'static str,
    path: String,
    body: Body,
}

fn req(method: &'static str, path: impl Into<String>, body: Body) -> Req {
    Req {
        method,
        path: path.into(),
        body,
    }
}

struct Ctx {
    work: Work,
    seeder: Seeder,
    agent: ureq::Agent,
    admin: String,
    tokens: Vec<(Role, String)>,
    n: Cell<u64>,
    /// Every token secret the seeder answered.
    secrets: std::cell::RefCell<Vec<String>>,
}

impl Ctx {
    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    fn next(&self) -> u64 {
        self.n.set(self.n.get() + 1);
        self.n.get()
    }

    /// Sends `r` with `token`; the status and the JSON answer (Null if not JSON).
    fn send(&self, token: Option<&str>, r: &Req) -> (u16, Value) {
        let url = format!("{}{}", self.seeder.http, r.path);
        let auth = token.map(|t| format!("Bearer {t}"));
        let result = match (r.method, &r.body) {
            ("GET", _) => {
                let mut b = self.agent.get(&url);
                if let Some(a) = &auth {
                    b = b.header("Authorization", a);
                }
                b.call()
            }
            (m, body) => {
                let mut b = match m {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    other => panic!("method {other}"),
                };
                if let Some(a) = &auth {
                    b = b.header("Authorization", a);
                }
                match body {
                    Body::None => b.send_empty(),
                    Body::Json(v) => b.send_json(v),
                    Body::Bytes(bytes) => b.send(&bytes[..]),
                    Body::Malformed => b
                        .header("Content-Type", "application/json")
                        .send(&br#"{"role": "admin", "group"#[..]),
                }
            }
        };
        let mut resp = result.expect("the seeder answers");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(secret) = v["secret"].as_str() {
            self.secrets.borrow_mut().push(secret.to_string());
        }
        (status, v)
    }

    /// As the admin; must succeed.
    fn admin(&self, r: Req) -> Value {
        let (status, v) = self.send(Some(&self.admin), &r);
        assert!(
            (200..300).contains(&status),
            "{} {}: {status} {v}",
            r.method,
            r.path
        );
        v
    }

    /// A new signed release of one chunk: (release file bytes, id, chunk, chunk hash).
    fn release(&self) -> (Vec<u8>, String, Vec<u8>, String) {
        let n = self.next();
        let data = format!("payload number {n}").into_bytes();
        let path = self.work.release(
            &format!("p{n}.bin"),
            &data,
            "fw",
            &format!("{n}.0"),
            n,
            Some("release.key"),
        );
        let bytes = std::fs::read(path).unwrap();
        let id = shoal_core::release::decode_release(&bytes)
            .unwrap()
            .body_hash()
            .to_hex();
        let hash = Hash::of(&data).to_hex();
        (bytes, id, data, hash)
    }

    /// A release uploaded (not its chunk): (id, chunk, hash).
    fn uploaded(&self) -> (String, Vec<u8>, String) {
        let (bytes, id, data, hash) = self.release();
        self.admin(req("POST", "/api/v1/releases", Body::Bytes(bytes)));
        (id, data, hash)
    }

    /// A device key's public text.
    fn device_key(&self) -> String {
        let n = self.next();
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&n.to_le_bytes());
        shoal_core::SecretKey::from_seed(seed).public().to_text()
    }

    /// A preauthorized device: its id.
    fn device(&self) -> String {
        let key = self.device_key();
        let v = self.admin(req(
            "POST",
            "/api/v1/devices/preauthorize",
            Body::Json(json!({ "public_key": key, "group": "A" })),
        ));
        v["id"].as_str().unwrap().to_string()
    }

    /// A new deployment of the base release to `group`: its id.
    fn deployment(&self, group: &str) -> u64 {
        let v = self.admin(req(
            "POST",
            "/api/v1/deployments",
            Body::Json(json!({ "release": "base@1", "group": group })),
        ));
        v["id"].as_u64().unwrap()
    }
}

impl Ctx {
    /// A new deployment to `group`, paused: its id.
    fn paused(&self, group: &str) -> u64 {
        let id = self.deployment(group);
        self.admin(req(
            "POST",
            format!("/api/v1/deployments/{id}/pause"),
            Body::None,
        ));
        id
    }
}

struct Case {
    name: &'static str,
    allowed: &'static [Role],
    /// Prepares what the request needs (as the admin) and returns it.
    make: fn(&Ctx) -> Req,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "list releases",
            allowed: &ALL,
            make: |_| req("GET", "/api/v1/releases", Body::None),
        },
        Case {
            name: "list devices",
            allowed: &ALL,
            make: |_| req("GET", "/api/v1/devices", Body::None),
        },
        Case {
            name: "list deployments",
            allowed: &ALL,
            make: |_| req("GET", "/api/v1/deployments", Body::None),
        },
        Case {
            name: "show a deployment",
            allowed: &ALL,
            make: |c| {
                req(
                    "GET",
                    format!("/api/v1/deployments/{}", c.deployment("A")),
                    Body::None,
                )
            },
        },
        Case {
            name: "stats",
            allowed: &ALL,
            make: |_| req("GET", "/api/v1/stats", Body::None),
        },
        Case {
            name: "audit entries",
            allowed: &ALL,
            make: |_| req("GET", "/api/v1/audit", Body::None),
        },
        Case {
            name: "metrics",
            allowed: &ALL,
            make: |_| req("GET", "/metrics", Body::None),
        },
        Case {
            name: "dashboard",
            allowed: &ALL,
            make: |_| req("GET", "/dashboard", Body::None),
        },
        Case {
            name: "list tokens",
            allowed: &[Admin],
            make: |_| req("GET", "/api/v1/tokens", Body::None),
        },
        Case {
            name: "upload a release",
            allowed: &[Admin, ReleaseManager],
            make: |c| req("POST", "/api/v1/releases", Body::Bytes(c.release().0)),
        },
        Case {
            name: "upload a chunk",
            allowed: &[Admin, ReleaseManager],
            make: |c| {
                let (id, data, hash) = c.uploaded();
                req(
                    "PUT",
                    format!("/api/v1/releases/{id}/chunks/{hash}"),
                    Body::Bytes(data),
                )
            },
        },
        Case {
            name: "publish a release",
            allowed: &[Admin, ReleaseManager],
            make: |c| {
                let (id, data, hash) = c.uploaded();
                c.admin(req(
                    "PUT",
                    format!("/api/v1/releases/{id}/chunks/{hash}"),
                    Body::Bytes(data),
                ));
                req("POST", format!("/api/v1/releases/{id}/publish"), Body::None)
            },
        },
        Case {
            name: "preauthorize a device",
            allowed: &[Admin],
            make: |c| {
                req(
                    "POST",
                    "/api/v1/devices/preauthorize",
                    Body::Json(json!({ "public_key": c.device_key(), "group": "A" })),
                )
            },
        },
        Case {
            name: "accept a device",
            allowed: &[Admin],
            make: |c| {
                req(
                    "POST",
                    format!("/api/v1/devices/{}/accept", c.device()),
                    Body::Json(json!({ "group": "A" })),
                )
            },
        },
        Case {
            name: "reject a device",
            allowed: &[Admin],
            make: |c| {
                req(
                    "POST",
                    format!("/api/v1/devices/{}/reject", c.device()),
                    Body::Json(json!({})),
                )
            },
        },
        Case {
            name: "decommission a device",
            allowed: &[Admin],
            make: |c| {
                req(
                    "POST",
                    format!("/api/v1/devices/{}/decommission", c.device()),
                    Body::Json(json!({})),
                )
            },
        },
        Case {
            name: "deploy to group A",
            allowed: &[Admin, Deployer],
            make: |_| {
                req(
                    "POST",
                    "/api/v1/deployments",
                    Body::Json(json!({ "release": "base@1", "group": "A", "phases": "50%,100%" })),
                )
            },
        },
        Case {
            name: "deploy to group B",
            allowed: &[Admin],
            make: |_| {
                req(
                    "POST",
                    "/api/v1/deployments",
                    Body::Json(json!({ "release": "base@1", "group": "B" })),
                )
            },
        },
        Case {
            name: "pause a deployment of A",
            allowed: &[Admin, Deployer],
            make: |c| {
                req(
                    "POST",
                    format!("/api/v1/deployments/{}/pause", c.deployment("A")),
                    Body::None,
                )
            },
        },
        Case {
            name: "resume a deployment of A",
            allowed: &[Admin, Deployer],
            make: |c| {
                req(
                    "POST",
                    format!("/api/v1/deployments/{}/resume", c.paused("A")),
                    Body::None,
                )
            },
        },
        Case {
            name: "abort a deployment of A",
            allowed: &[Admin, Deployer],
            make: |c| {
                req(
                    "POST",
                    format!("/api/v1/deployments/{}/abort", c.deployment("A")),
                    Body::None,
                )
            },
        },
        Case {
            name: "pause a deployment of B",
            allowed: &[Admin],
            make: |c| {
                req(
                    "POST",
                    format!("/api/v1/deployments/{}/pause", c.deployment("B")),
                    Body::None,
                )
            },
        },
        Case {
            name: "resume a deployment of B",
            allowed: &[Admin],
            make: |c| {
                req(
                    "POST",
                    format!("/api/v1/deployments/{}/resume", c.paused("B")),
                    Body::None,
                )
            },
        },
        Case {
            name: "abort a deployment of B",
            allowed: &[Admin],
            make: |c| {
                req(
                    "POST",
                    format!("/api/v1/deployments/{}/abort", c.deployment("B")),
                    Body::None,
                )
            },
        },
        Case {
            name: "create a token",
            allowed: &[Admin],
            make: |_| {
                req(
                    "POST",
                    "/api/v1/tokens",
                    Body::Json(json!({ "role": "viewer" })),
                )
            },
        },
        Case {
            name: "revoke a token",
            allowed: &[Admin],
            make: |c| {
                let v = c.admin(req(
                    "POST",
                    "/api/v1/tokens",
                    Body::Json(json!({ "role": "viewer" })),
                ));
                req(
                    "POST",
                    format!("/api/v1/tokens/{}/revoke", v["token"]["id"]),
                    Body::None,
                )
            },
        },
    ]
}

/// The audit log's entries so far.
fn audit(ctx: &Ctx) -> Vec<shoal_seeder::audit::Entry> {
    shoal_seeder::audit::read_entries(&ctx.seeder.data).unwrap()
}

/// Asserts that exactly one entry was added since `before` entries, and returns it.
fn one_more(ctx: &Ctx, before: usize, what: &str) -> shoal_seeder::audit::Entry {
    let mut entries = audit(ctx);
    assert_eq!(entries.len(), before + 1, "{what}: exactly one audit entry");
    entries.pop().unwrap()
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_role_against_every_endpoint() {
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    let admin = std::fs::read_to_string(seeder.token_file())
        .unwrap()
        .trim()
        .to_string();
    // one token per role, made with the CLI in the issue's literal form:
    // `tokens --url U --token-file F create --role ROLE [--group G] --out FILE`
    // (the pinned certificate comes from SHOAL_CERT)
    let mut tokens = vec![(Admin, admin.clone())];
    for (role, extra) in [
        (ReleaseManager, vec![]),
        (Deployer, vec!["--group", "A"]),
        (Viewer, vec![]),
    ] {
        let file = format!("{}.token", role.name());
        let token_file = seeder.token_file();
        let mut args = vec![
            "tokens",
            "--url",
            &seeder.http,
            "--token-file",
            token_file.to_str().unwrap(),
            "create",
            "--role",
            role.name(),
        ];
        args.extend(extra);
        args.extend(["--out", &file]);
        let o = std::process::Command::new(common::bin())
            .current_dir(work.dir.path())
            .args(&args)
            .env("SHOAL_CERT", &seeder.cert_pem)
            .env_remove("SHOAL_URL")
            .env_remove("SHOAL_TOKEN_FILE")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains(role.name()), "{out}");
        let secret = std::fs::read_to_string(work.path(&file))
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(secret.len(), 64);
        tokens.push((role, secret));
    }
    let ctx = Ctx {
        agent: seeder.agent(),
        work,
        seeder,
        admin,
        tokens,
        n: Cell::new(0),
        secrets: Default::default(),
    };
    // the release every deployment case deploys: base@1
    let data = b"the base release".to_vec();
    let rel = ctx
        .work
        .release("base.bin", &data, "base", "1", 1, Some("release.key"));
    let v = ctx.admin(req(
        "POST",
        "/api/v1/releases",
        Body::Bytes(std::fs::read(rel).unwrap()),
    ));
    let id = v["release"]["id"].as_str().unwrap().to_string();
    let hash = Hash::of(&data).to_hex();
    ctx.admin(req(
        "PUT",
        format!("/api/v1/releases/{id}/chunks/{hash}"),
        Body::Bytes(data),
    ));
    ctx.admin(req(
        "POST",
        format!("/api/v1/releases/{id}/publish"),
        Body::None,
    ));

    let mut checked = 0;
    let mut malformed = 0;
    for case in cases() {
        for role in ALL {
            let r = (case.make)(&ctx);
            let before = audit(&ctx).len();
            let (status, answer) = ctx.send(Some(ctx.token(role)), &r);
            let what = format!("{} as {}: {} {}", case.name, role.name(), r.method, r.path);
            let action = format!("{} {}", r.method, r.path.split('?').next().unwrap());
            let read = r.method == "GET";
            let chunk = r.method == "PUT" && r.path.contains("/chunks/");
            if case.allowed.contains(&role) {
                assert!(
                    (200..300).contains(&status),
                    "{what}: expected 2xx, got {status} {answer}"
                );
                if read || chunk {
                    // successful reads and chunk uploads are not audited (gate's doc)
                    assert_eq!(audit(&ctx).len(), before, "{what}: no audit entry");
                } else {
                    let e = one_more(&ctx, before, &what);
                    assert_eq!(
                        (e.outcome.as_str(), e.status, &e.action),
                        ("ok", status, &action),
                        "{what}: {e:?}"
                    );
                    assert!(e.actor.contains(role.name()), "{what}: {e:?}");
                }
            } else {
                assert_eq!(status, 403, "{what}: expected 403, got {status} {answer}");
                let e = one_more(&ctx, before, &what);
                assert_eq!(
                    (e.outcome.as_str(), e.status, &e.action),
                    ("refused", 403, &action),
                    "{what}: {e:?}"
                );
                assert!(e.actor.contains(role.name()), "{what}: {e:?}");
                assert!(e.from.starts_with("127.0.0.1:"), "{what}: {e:?}");
                // guards: the body parsed before the permission was checked (a
                // malformed one answered 422 "failed" instead of 403 "refused").
                // Not for a deployer's new deployment: it may call that route, and
                // only the body names the group it is held to.
                let group_in_body = role == Deployer && action == "POST /api/v1/deployments";
                if !read && !group_in_body {
                    let bad = req(r.method, r.path.clone(), Body::Malformed);
                    let before = audit(&ctx).len();
                    let (status, answer) = ctx.send(Some(ctx.token(role)), &bad);
                    assert_eq!(
                        status, 403,
                        "{what}, malformed body: expected 403, got {status} {answer}"
                    );
                    let e = one_more(&ctx, before, &what);
                    assert_eq!((e.outcome.as_str(), e.status), ("refused", 403), "{e:?}");
                    malformed += 1;
                }
            }
            checked += 1;
        }
        // and without a token, or with a wrong one: 401, one entry each
        let r = (case.make)(&ctx);
        for token in [None, Some("0".repeat(64))] {
            let before = audit(&ctx).len();
            let (status, _) = ctx.send(token.as_deref(), &r);
            assert_eq!(status, 401, "{} without a valid token", case.name);
            let e = one_more(&ctx, before, case.name);
            assert_eq!(
                (e.outcome.as_str(), e.actor.as_str(), e.status),
                ("refused", "unauthenticated", 401)
            );
        }
    }
    assert_eq!(checked, cases().len() * 4);
    println!("{checked} role/endpoint pairs, {malformed} refusals with a malformed body");
    assert!(malformed >= 30, "{malformed}");

    // a revoked token lets nobody in
    let viewer = ctx.token(Viewer).to_string();
    let list = ctx.admin(req("GET", "/api/v1/tokens", Body::None));
    let viewer_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "viewer" && t["revoked_at"].is_null())
        .unwrap()["id"]
        .clone();
    ctx.seeder
        .cli_ok(&["tokens", "revoke", &viewer_id.to_string()]);
    let (status, _) = ctx.send(Some(&viewer), &req("GET", "/api/v1/devices", Body::None));
    assert_eq!(status, 401);

    // guards: a cookie (what a browser sends on its own) changing anything: the
    // dashboard's cookie counts for GET /dashboard only
    let cookie = format!("shoal_token={}", ctx.admin);
    let post = ctx
        .agent
        .post(format!("{}/api/v1/tokens", ctx.seeder.http))
        .header("Cookie", &cookie)
        .send_json(json!({ "role": "admin" }))
        .unwrap();
    assert_eq!(
        post.status().as_u16(),
        401,
        "a cookie does not authorize a change"
    );
    let page = ctx
        .agent
        .get(format!("{}/dashboard", ctx.seeder.http))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200, "it does open the dashboard");

    // the whole log is intact
    let out = ok(
        ctx.work.dir.path(),
        &[
            "audit",
            "verify",
            "--data",
            ctx.seeder.data.to_str().unwrap(),
        ],
    );
    assert!(out.starts_with("audit log intact:"), "{out}");

    // guards: a token's secret kept by the seeder: none is in any file of its data
    // folder (the redb store, the audit log, ...), as text or as raw bytes; the
    // bootstrap admin token only in admin.token, where the seeder hands it over
    let store = ctx.seeder.data.join("seeder.redb");
    let all = files(&ctx.seeder.data);
    assert!(all.contains(&store), "{all:?}");
    assert!(all.contains(&ctx.seeder.data.join("audit.log")), "{all:?}");
    // the role tokens, and those the cases made, whose secrets only their answers held
    let mut made: Vec<String> = ctx.tokens[1..].iter().map(|(_, t)| t.clone()).collect();
    made.extend(ctx.secrets.take());
    assert!(made.len() >= 3 + 4, "{} secrets", made.len());
    for path in &all {
        let bytes = std::fs::read(path).unwrap();
        for (i, secret) in std::iter::once(&ctx.admin).chain(&made).enumerate() {
            if i == 0 && path.ends_with("admin.token") {
                continue;
            }
            let raw: Vec<u8> = (0..32)
                .map(|j| u8::from_str_radix(&secret[2 * j..2 * j + 2], 16).unwrap())
                .collect();
            assert!(
                !contains(&bytes, secret.as_bytes()) && !contains(&bytes, &raw),
                "a token secret is in {}",
                path.display()
            );
        }
    }
}
