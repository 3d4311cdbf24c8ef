//! Every role against every management API endpoint, over a real seeder: what a role
//! may do answers 2xx; what it may not answers 403 and leaves a `refused` entry in the
//! audit log. A deployer for group A cannot deploy to, or control a deployment of,
//! group B.

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
                }
            }
        };
        let mut resp = result.expect("the seeder answers");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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
                let id = c.deployment("A");
                c.admin(req(
                    "POST",
                    format!("/api/v1/deployments/{id}/pause"),
                    Body::None,
                ));
                req(
                    "POST",
                    format!("/api/v1/deployments/{id}/resume"),
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

#[test]
fn every_role_against_every_endpoint() {
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    let admin = std::fs::read_to_string(seeder.token_file())
        .unwrap()
        .trim()
        .to_string();
    // one token per role, made with the CLI
    let mut tokens = vec![(Admin, admin.clone())];
    for (role, extra) in [
        (ReleaseManager, vec![]),
        (Deployer, vec!["--group", "A"]),
        (Viewer, vec![]),
    ] {
        let file = format!("{}.token", role.name());
        let mut args = vec!["tokens", "create", "--role", role.name(), "--out", &file];
        args.extend(extra);
        let out = seeder.cli_ok(&args);
        assert!(out.contains(role.name()), "{out}");
        let secret = std::fs::read_to_string(work.path(&file))
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(secret.len(), 64);
        tokens.push((role, secret));
    }
    let ctx = Ctx {
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into(),
        work,
        seeder,
        admin,
        tokens,
        n: Cell::new(0),
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
    for case in cases() {
        for role in ALL {
            let r = (case.make)(&ctx);
            let before = shoal_seeder::audit::read_entries(&ctx.seeder.data)
                .unwrap()
                .len();
            let (status, answer) = ctx.send(Some(ctx.token(role)), &r);
            let what = format!("{} as {}: {} {}", case.name, role.name(), r.method, r.path);
            if case.allowed.contains(&role) {
                assert!(
                    (200..300).contains(&status),
                    "{what}: expected 2xx, got {status} {answer}"
                );
            } else {
                assert_eq!(status, 403, "{what}: expected 403, got {status} {answer}");
                let entries = shoal_seeder::audit::read_entries(&ctx.seeder.data).unwrap();
                assert_eq!(
                    entries.len(),
                    before + 1,
                    "{what}: one audit entry for the refusal"
                );
                let e = entries.last().unwrap();
                assert_eq!(
                    (e.outcome.as_str(), e.status, e.action.clone()),
                    (
                        "refused",
                        403,
                        format!("{} {}", r.method, r.path.split('?').next().unwrap())
                    ),
                    "{what}: {e:?}"
                );
                assert!(e.actor.contains(role.name()), "{what}: {e:?}");
                assert!(e.from.starts_with("127.0.0.1:"), "{what}: {e:?}");
            }
            checked += 1;
        }
        // and without a token, or with a wrong one: 401, audited
        let r = (case.make)(&ctx);
        for token in [None, Some("0".repeat(64))] {
            let (status, _) = ctx.send(token.as_deref(), &r);
            assert_eq!(status, 401, "{} without a valid token", case.name);
            let e = shoal_seeder::audit::read_entries(&ctx.seeder.data)
                .unwrap()
                .pop()
                .unwrap();
            assert_eq!(
                (e.outcome.as_str(), e.actor.as_str()),
                ("refused", "unauthenticated")
            );
        }
    }
    assert_eq!(checked, cases().len() * 4);

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
}
