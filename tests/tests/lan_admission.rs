//! What one real node, holding an installed release, serves on `/shoal/xfer/1` to a
//! bare client (`shoal_tests::xfer`) that does not play by the rules:
//!
//! - a valid admission for another site, another device's admission shown over a
//!   connection with a different key, and no `Hello` at all: each gets nothing (no
//!   have-map, no chunk, no release), only a refusal, and the node keeps the refusal
//!   under the key the client showed;
//! - an admission that expires while connected: the connection is closed then;
//! - a third connection from one admitted peer is refused;
//! - `--lan-rate`: a node that was idle serves at its rate, not in a burst.

use shoal_core::Hash;
use shoal_core::SecretKey;
use shoal_core::lan::{Request, Response};
use shoal_tests::xfer::{self, RawClient};
use shoal_tests::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;
/// Longer than the node gives a client for its `Hello` (5 s).
const WAIT: Duration = Duration::from_secs(8);

/// A seeder and one node `n0` (site `s`) that installed a 4 MiB release and serves it.
struct OneNode {
    _tmp: tempfile::TempDir,
    seeder: SeederProcess,
    node: NodeProcess,
    addr: SocketAddr,
    release: Hash,
    chunks: Vec<(Hash, u32)>,
    online: SecretKey,
}

impl OneNode {
    fn start(flags: &[&str]) -> OneNode {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        make_keys_and_root(dir);
        let seeder = SeederProcess::start(dir);
        init_named_node(dir, "n0", &seeder, "n0-target", &[]);
        preauthorize(&seeder, "n0");
        ship(dir, &seeder, &bytes(4 * MIB, 41), "1.0", 1, &[]);
        let addr = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let listen = addr.to_string();
        let mut all = vec!["--listen", listen.as_str(), "--no-mdns"];
        all.extend_from_slice(flags);
        let node = NodeProcess::start(dir, "shoal-node", "n0", &all);
        wait_for_all(dir, &["n0".to_string()], Duration::from_secs(120), |s| {
            s["installed_counter"] == 1
        });
        let (release, chunks) = xfer::release_chunks(&dir.join("rel-1.0.shoal"));
        let online = xfer::secret_key(&dir.join("online.key"));
        OneNode {
            _tmp: tmp,
            seeder,
            node,
            addr,
            release,
            chunks,
            online,
        }
    }

    fn dir(&self) -> &Path {
        self._tmp.path()
    }

    /// A valid admission of this site for `key`, for an hour.
    fn admission(&self, key: &SecretKey) -> Vec<u8> {
        xfer::admission(&self.online, key, "s", xfer::unix_now() + 3600)
    }

    fn get_chunks(&self, n: usize) -> Request {
        Request::GetChunks {
            release: self.release,
            hashes: self.chunks.iter().take(n).map(|c| c.0).collect(),
        }
    }

    /// The reason the node gave `key` when it refused it (waits for the status file to
    /// show it: the node writes its status about once a second).
    fn refusal_of(&self, key: &SecretKey) -> String {
        let id = key.key_id().to_hex();
        let start = Instant::now();
        loop {
            let s = named_status(self.dir(), "n0").unwrap();
            if let Some(r) = s["lan_refusals"][&id].as_str() {
                return r.to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the node did not keep a refusal of {}: {s}",
                key.key_id().short()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(self) {
        self.node.stop();
        self.seeder.stop();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// What a client that is not served may get: refusals, nothing else.
fn assert_only_refusals(what: &str, got: &[Response]) {
    for r in got {
        assert!(
            matches!(r, Response::Refused { .. }),
            "{what}: served {}",
            format!("{r:?}").chars().take(120).collect::<String>()
        );
    }
}

/// Says `hello` (if any) and, without waiting for its answer, subscribes on the control
/// stream and asks for chunks and for the release on streams of their own; returns
/// what came back on the control stream and on the others.
async fn everything_at_once(
    site: &OneNode,
    client: &RawClient,
    hello: Option<Vec<u8>>,
) -> (Vec<Response>, Vec<Response>) {
    let mut control = Vec::new();
    if let Some(admission) = hello {
        control.push(Request::Hello { admission });
    }
    control.push(Request::Subscribe {
        release: site.release,
    });
    let (_send, mut recv) = client.open(&control).await.expect("a control stream");
    let ask_chunks = [site.get_chunks(8)];
    let ask_release = [Request::GetRelease { id: site.release }];
    let (on_control, chunks, release) = tokio::join!(
        xfer::responses(&mut recv, WAIT),
        client.ask(&ask_chunks, WAIT),
        client.ask(&ask_release, WAIT),
    );
    (on_control, [chunks, release].concat())
}

/// Connects with `key`, says `hello` (if any) and asks for everything at once; checks
/// that nothing but a refusal came back and that the node closed the connection.
async fn assert_gets_nothing(site: &OneNode, key: &SecretKey, hello: Option<Vec<u8>>, what: &str) {
    let client = RawClient::connect(site.addr, key).await.unwrap();
    let (control, others) = everything_at_once(site, &client, hello).await;
    println!("{what}: control stream {control:?}, other streams {others:?}");
    assert!(
        matches!(control.first(), Some(Response::Refused { .. })),
        "{what}: no refusal"
    );
    assert_only_refusals(what, &control);
    assert_only_refusals(what, &others);
    assert!(
        client.closed_within(WAIT).await.is_some(),
        "{what}: still connected"
    );
}

#[test]
fn a_valid_admission_for_another_site_gets_nothing() {
    let site = OneNode::start(&[]);
    let key = SecretKey::from_seed([51; 32]);
    let elsewhere = xfer::admission(&site.online, &key, "elsewhere", xfer::unix_now() + 3600);
    runtime().block_on(assert_gets_nothing(
        &site,
        &key,
        Some(elsewhere),
        "another site",
    ));
    let why = site.refusal_of(&key);
    assert!(why.contains("site"), "{why}");
    site.stop();
}

#[test]
fn another_devices_admission_over_another_key_gets_nothing() {
    let site = OneNode::start(&[]);
    // the node's own admission, as the seeder issued it: valid, for this site, but
    // for n0's key and not for the key this client's certificate carries
    let stolen = std::fs::read(site.dir().join("n0/admission.shoal")).unwrap();
    let thief = SecretKey::from_seed([52; 32]);
    runtime().block_on(assert_gets_nothing(
        &site,
        &thief,
        Some(stolen),
        "a stolen admission",
    ));
    let why = site.refusal_of(&thief);
    assert!(why.contains("device"), "{why}");
    site.stop();
}

#[test]
fn a_client_that_skips_the_hello_gets_nothing() {
    let site = OneNode::start(&[]);
    // a device the site did admit: the Hello is what it must not skip
    let key = SecretKey::from_seed([53; 32]);
    runtime().block_on(async {
        // Subscribe first on the control stream, chunks and the release beside it
        assert_gets_nothing(&site, &key, None, "no hello").await;
        // a control stream that says nothing, and a chunk request beside it
        let client = RawClient::connect(site.addr, &key).await.unwrap();
        let (_silent, _recv) = client.open(&[]).await.unwrap();
        let got = client.ask(&[site.get_chunks(8)], WAIT).await;
        println!("a silent control stream: {got:?}");
        assert!(got.is_empty(), "served without a Hello: {got:?}");
        assert!(
            client.closed_within(WAIT).await.is_some(),
            "still connected"
        );
    });
    println!("refused: {}", site.refusal_of(&key));
    site.stop();
}

// guards: a connection that outlived its admission (checked only at the Hello)
#[test]
fn a_connection_ends_when_the_admission_expires() {
    let site = OneNode::start(&[]);
    let key = SecretKey::from_seed([54; 32]);
    let expires_at = xfer::unix_now() + 4;
    let short = xfer::admission(&site.online, &key, "s", expires_at);
    runtime().block_on(async {
        let client = RawClient::connect(site.addr, &key).await.unwrap();
        let (answer, send, mut recv) = client.hello(short, WAIT).await.unwrap();
        assert!(matches!(answer, Some(Response::Hello { .. })), "{answer:?}");
        // served while the admission holds
        let mut send = send;
        let body = Request::Subscribe {
            release: site.release,
        }
        .encode()
        .unwrap();
        shoal_node::wan::stream::write_frame(&mut send, &body, shoal_core::lan::REQUEST_CAP)
            .await
            .unwrap();
        let map = xfer::next(&mut recv, WAIT).await;
        assert!(matches!(map, Some(Response::HaveMap { .. })), "{map:?}");
        let got = client.ask(&[site.get_chunks(1)], WAIT).await;
        assert!(
            matches!(got.first(), Some(Response::Chunk { .. })),
            "{got:?}"
        );
        // then closed at the expiry, not before
        let reason = client.closed_within(Duration::from_secs(15)).await;
        let now = xfer::unix_now();
        println!("closed at {now} (admission until {expires_at}): {reason:?}");
        let Some(quinn::ConnectionError::ApplicationClosed(close)) = reason else {
            panic!("not closed by the node after the admission expired: {reason:?}");
        };
        assert_eq!(close.error_code, quinn::VarInt::from_u32(4));
        assert!(now >= expires_at, "closed at {now}, before {expires_at}");
        let after = client.ask(&[site.get_chunks(1)], WAIT).await;
        assert!(after.is_empty(), "served after the expiry: {after:?}");
    });
    site.stop();
}

#[test]
fn a_third_connection_from_one_peer_is_refused() {
    let site = OneNode::start(&[]);
    let key = SecretKey::from_seed([55; 32]);
    runtime().block_on(async {
        let mut held = Vec::new();
        for i in 0..3 {
            let client = RawClient::connect(site.addr, &key).await.unwrap();
            let (answer, send, recv) = client.hello(site.admission(&key), WAIT).await.unwrap();
            let shown: String = format!("{answer:?}").chars().take(80).collect();
            println!("connection {i}: {shown}");
            if i < 2 {
                assert!(matches!(answer, Some(Response::Hello { .. })), "{answer:?}");
                held.push((client, send, recv));
            } else {
                let Some(Response::Refused { reason }) = answer else {
                    panic!("a third connection was not refused: {answer:?}");
                };
                assert!(reason.contains("already holds 2"), "{reason}");
                assert!(client.closed_within(WAIT).await.is_some());
            }
        }
        // one goes: there is room again
        let (first, _, _) = held.remove(0);
        first.conn.close(0u32.into(), b"bye");
        first.closed_within(WAIT).await;
        let mut answer = None;
        for _ in 0..20 {
            let client = RawClient::connect(site.addr, &key).await.unwrap();
            answer = client.hello(site.admission(&key), WAIT).await.unwrap().0;
            if matches!(answer, Some(Response::Hello { .. })) {
                break;
            }
            // the node notices the close a moment later
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(matches!(answer, Some(Response::Hello { .. })), "{answer:?}");
    });
    site.stop();
}

// guards: a LAN rate limit that let idle time pile up as credit, so that a node idle
// for a while served that many bytes at once
#[test]
fn a_node_limited_by_lan_rate_serves_no_faster_than_its_rate() {
    let rate: u64 = 1_000_000;
    let site = OneNode::start(&["--lan-rate", "1000000"]);
    // idle: under the old pacer these seconds became credit
    std::thread::sleep(Duration::from_secs(5));
    let key = SecretKey::from_seed([56; 32]);
    let (bytes, took) = runtime().block_on(async {
        let client = RawClient::connect(site.addr, &key).await.unwrap();
        let (answer, _send, _recv) = client.hello(site.admission(&key), WAIT).await.unwrap();
        assert!(matches!(answer, Some(Response::Hello { .. })), "{answer:?}");
        let start = Instant::now();
        let mut bytes = 0u64;
        for batch in site.chunks.chunks(shoal_core::lan::MAX_CHUNKS_PER_REQUEST) {
            let ask = Request::GetChunks {
                release: site.release,
                hashes: batch.iter().map(|c| c.0).collect(),
            };
            for r in client.ask(&[ask], Duration::from_secs(60)).await {
                if let Response::Chunk { data, .. } = r {
                    bytes += data.len() as u64;
                }
            }
        }
        (bytes, start.elapsed())
    });
    let unique: u64 = site.chunks.iter().map(|c| u64::from(c.1)).sum();
    let measured = bytes as f64 / took.as_secs_f64();
    println!("served {bytes} bytes in {took:?}: {measured:.0} B/s for a limit of {rate} B/s");
    assert_eq!(bytes, unique, "every chunk served");
    // a limit only makes it slower: the bound is one-sided and loose
    assert!(
        measured <= 1.5 * rate as f64,
        "{measured:.0} B/s, over 1.5 x the limit of {rate} B/s"
    );
    site.stop();
}
