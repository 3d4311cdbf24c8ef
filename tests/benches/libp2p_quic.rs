//! libp2p QUIC: chunks over libp2p's own QUIC transport (`libp2p-quic` 0.14) on
//! loopback, beside `iperf3` TCP over loopback in the same run: the head-to-head figure
//! decision 0007 (LAN chunks over a quinn endpoint of our own) was taken without.
//!
//! `cargo bench -p shoal-tests --bench libp2p_quic` (needs `iperf3`:
//! `apt-get install -y iperf3`; `SHOAL_BENCH_MIB` changes the size, 1024 by default).
//!
//! Two libp2p swarms keyed by ed25519 identities, in two processes: this binary starts
//! itself again (`--serve-libp2p-chunks`) as the serving side, so that each side's CPU
//! is its own. The serving side holds `SHOAL_BENCH_MIB` MiB of pseudo-random bytes in
//! memory, cut as a release is (`chunk_bytes`, default profile: 16 to 256 KiB, about
//! 80 KiB on average). The fetching side (this process) cuts the same bytes to learn
//! every chunk's hash and length, dials, and asks for every chunk with libp2p's
//! request-response on `/shoal-bench/chunks/1`: a request names up to `PER_REQUEST`
//! chunks by hash (request-response opens one QUIC stream per request), `REQUESTS`
//! requests in flight. 8 of 16 is what the protocol figure of `lan_transfer` keeps in
//! flight over our own endpoint (about 10 MiB), so the two figures compare like for
//! like. Each chunk's length and BLAKE3 are checked against the hash asked for, as that
//! figure does, and nothing is kept: memory to memory, as iperf3.
//!
//! The codec caps what it reads (`RESPONSE_CAP`, `PER_REQUEST` hashes): a peer cannot
//! make either side allocate more than one full response. Request-response hands a
//! response over whole, so the client checks a request's chunks once all of them have
//! arrived (our own protocol checks each as it completes).
//!
//! Each run measures libp2p's transport twice, each time with a fresh serving process:
//! 1. **default**: `libp2p::quic::Config::new` as `SwarmBuilder::with_quic` builds it
//!    (MTU discovery up to 1,452 bytes, 10 MB stream and 15 MB connection windows,
//!    5 s keep-alive);
//! 2. **tuned**: what its public `Config` lets us change for throughput
//!    (`Tuning::apply`): MTU discovery up to 65,527 bytes and our xfer endpoint's
//!    windows, 1 MiB per stream and 4 MiB per connection. Its other fields (handshake
//!    and idle timeouts, keep-alive, stream limit) do not bear on a bulk transfer.
//!
//! What the public `Config` cannot change (read from `libp2p-quic-0.14.0/src/config.rs`
//! and `transport.rs`): GSO stays on (quinn's default; decision 0005 turned it off for
//! our endpoints); the UDP sockets keep the system's buffer sizes; the endpoint
//! advertises quinn's default `max_udp_payload_size` of 1,472 bytes, and MTU discovery
//! stops at the smaller of its upper bound and the peer's value, so no datagram is
//! larger than 1,472 bytes even on loopback; the send window is quinn's default;
//! libp2p-tls offers ChaCha20-Poly1305 before the AES-GCM suites on both sides, so
//! packets are sealed with it (a profile shows `chacha20_poly1305_seal_avx2`) where our
//! endpoints use AES-GCM.
//!
//! The figures: bytes per second from the first request to the last response; CPU
//! seconds per GiB of each process over the same span, from `/proc`; UDP datagrams
//! dropped over the span because a receive buffer was full (`/proc/net/snmp`:
//! system-wide, so other UDP traffic on the machine counts too). Drops read as
//! congestion to QUIC (decision 0005).

use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, Swarm};
use shoal_core::Hash;
use shoal_core::chunker::chunk_bytes;
use shoal_core::release::ChunkingProfile;
use shoal_tests::{bytes, iperf3, process_cpu};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;
/// The client's requests in flight and chunks per request.
const REQUESTS: usize = 8;
const PER_REQUEST: usize = 16;
const PROTOCOL: &str = "/shoal-bench/chunks/1";
/// The largest chunk the default profile cuts.
const MAX_CHUNK: usize = ChunkingProfile::DEFAULT.max as usize;
/// The largest response: a count, a length per chunk, `PER_REQUEST` chunks at most.
const RESPONSE_CAP: usize = 4 + 4 * PER_REQUEST + PER_REQUEST * MAX_CHUNK;
/// The serving side's flag (this binary started again).
const SERVE_ARG: &str = "--serve-libp2p-chunks";
/// Seeds of the image bytes and of the two identities.
const IMAGE_SEED: u64 = 31;
const SERVER_KEY: u8 = 1;
const CLIENT_KEY: u8 = 2;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = std::env::var("SHOAL_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    if let Some(i) = args.iter().position(|a| a == SERVE_ARG) {
        let tuning = args
            .get(i + 1)
            .and_then(|t| Tuning::parse(t))
            .expect("--serve-libp2p-chunks default|tuned");
        serve(tuning, mib);
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("libp2p_quic: skipped (run with `cargo bench`)");
        return;
    }
    if Command::new("iperf3").arg("--version").output().is_err() {
        eprintln!("libp2p_quic: iperf3 is not installed (apt-get install -y iperf3)");
        std::process::exit(1);
    }
    let image = bytes(mib * MIB, IMAGE_SEED);
    let (_, refs) = chunk_bytes(ChunkingProfile::DEFAULT, &image).expect("the default profile");
    drop(image);
    let chunks: Vec<(Hash, u32)> = refs.iter().map(|c| (c.hash, c.len)).collect();
    let runs: Vec<(Tuning, Fetch)> = [Tuning::Default, Tuning::Tuned]
        .into_iter()
        .map(|t| (t, fetch(t, mib, &chunks)))
        .collect();
    let tcp = iperf3(5).expect("iperf3 ran");
    println!(
        "libp2p_quic: {mib} MiB in {} chunks over libp2p's QUIC on loopback, {REQUESTS} requests of {PER_REQUEST} chunks in flight; serving and fetching side in two processes",
        chunks.len()
    );
    let mut json = format!(
        "{{\"release_mib\":{mib},\"chunks\":{},\"iperf3_tcp_mbps\":{:.0}",
        chunks.len(),
        tcp / 1e6
    );
    for (t, f) in &runs {
        let rate = f.bytes as f64 / f.secs;
        let gib = f.bytes as f64 / (1u64 << 30) as f64;
        println!(
            "  libp2p-quic, {:7} Config:  {:8.0} MB/s ({} bytes in {:.0} ms), ratio {:.3}",
            t.name(),
            rate / 1e6,
            f.bytes,
            f.secs * 1000.0,
            rate / tcp
        );
        println!(
            "    CPU seconds per GiB: serving side {:.2}, fetching side {:.2}; UDP receive-buffer drops {} (system-wide)",
            f.cpu_server / gib,
            f.cpu_client / gib,
            f.rcvbuf_errors
        );
        let n = t.name();
        json += &format!(
            ",\"{n}_mbps\":{:.0},\"{n}_ratio\":{:.3},\"{n}_cpu_serving_s_per_gib\":{:.2},\"{n}_cpu_fetching_s_per_gib\":{:.2},\"{n}_udp_rcvbuf_drops\":{}",
            rate / 1e6,
            rate / tcp,
            f.cpu_server / gib,
            f.cpu_client / gib,
            f.rcvbuf_errors
        );
    }
    println!("  iperf3 TCP over loopback:       {:8.0} MB/s", tcp / 1e6);
    println!("  tuned: {}", Tuning::Tuned.describe());
    println!("{json}}}");
}

/// Which `libp2p::quic::Config` both sides use.
#[derive(Clone, Copy, Debug)]
enum Tuning {
    Default,
    Tuned,
}

/// Tuned: MTU discovery up to the largest UDP payload, as our endpoints do (the peer's
/// advertised 1,472 bytes still caps it: see the module doc), so 1,472 instead of 1,452.
const TUNED_MTU: u16 = 65_527;
/// Tuned windows, per stream and per connection: our xfer endpoint's
/// (`node/src/wan/tls.rs`). On loopback, alternating runs of 256 MiB measured these
/// a few percent above libp2p's 10 MB and 15 MB and above 16/64 MiB and 64/256 MiB
/// (within this shared machine's noise); 4 MiB is still many times what a LAN's
/// round trip needs.
const TUNED_STREAM_WINDOW: u32 = 1024 * 1024;
const TUNED_CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;

impl Tuning {
    fn name(self) -> &'static str {
        match self {
            Tuning::Default => "default",
            Tuning::Tuned => "tuned",
        }
    }

    fn parse(name: &str) -> Option<Tuning> {
        [Tuning::Default, Tuning::Tuned]
            .into_iter()
            .find(|t| t.name() == name)
    }

    fn describe(self) -> String {
        match self {
            Tuning::Default => "libp2p's defaults".into(),
            Tuning::Tuned => format!(
                "mtu_upper_bound {TUNED_MTU}, max_stream_data {TUNED_STREAM_WINDOW}, max_connection_data {TUNED_CONNECTION_WINDOW}"
            ),
        }
    }

    fn apply(self, config: libp2p::quic::Config) -> libp2p::quic::Config {
        match self {
            Tuning::Default => config,
            Tuning::Tuned => {
                let mut c = config.mtu_upper_bound(TUNED_MTU);
                c.max_stream_data = TUNED_STREAM_WINDOW;
                c.max_connection_data = TUNED_CONNECTION_WINDOW;
                c
            }
        }
    }
}

/// A swarm of one request-response behaviour on libp2p's QUIC, its identity the
/// ed25519 key of seed `[key; 32]`.
fn swarm(key: u8, tuning: Tuning) -> Swarm<request_response::Behaviour<ChunkCodec>> {
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes([key; 32])
        .expect("any 32 bytes are an ed25519 seed");
    libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_quic_config(|c| tuning.apply(c))
        .with_behaviour(|_| {
            request_response::Behaviour::new(
                [(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(60)),
            )
        })
        .expect("the behaviour cannot fail to build")
        // the connection must outlive the pause between dialing and the first request
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Chunks in one buffer: on the serving side the whole image and each chunk's range in
/// it (sent without a copy), on the fetching side one response's bytes.
#[derive(Debug)]
struct Chunks {
    data: Arc<Vec<u8>>,
    ranges: Vec<Range<usize>>,
}

/// `/shoal-bench/chunks/1`. Request: a count (u32, little-endian, 1 to `PER_REQUEST`),
/// then that many 32-byte hashes. Response: a count (at most `PER_REQUEST`), a length
/// per chunk (u32, at most `MAX_CHUNK`), then the chunks' bytes one after another.
/// Each side closes its half after writing; bytes after a message are an error.
#[derive(Debug, Clone, Default)]
struct ChunkCodec;

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

async fn read_u32<T: AsyncRead + Unpin>(io: &mut T) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    io.read_exact(&mut b).await?;
    Ok(u32::from_le_bytes(b))
}

/// Reads a count of at most `PER_REQUEST`.
async fn read_count<T: AsyncRead + Unpin>(io: &mut T) -> std::io::Result<usize> {
    let n = read_u32(io).await? as usize;
    if n > PER_REQUEST {
        return Err(invalid(format!(
            "a count of at most {PER_REQUEST}, found {n}"
        )));
    }
    Ok(n)
}

async fn expect_end<T: AsyncRead + Unpin>(io: &mut T, what: &str) -> std::io::Result<()> {
    match io.read(&mut [0u8; 1]).await? {
        0 => Ok(()),
        _ => Err(invalid(format!(
            "the end of the stream after the {what}, found more bytes"
        ))),
    }
}

impl request_response::Codec for ChunkCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<Hash>;
    type Response = Chunks;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<Hash>> {
        let n = read_count(io).await?;
        if n == 0 {
            return Err(invalid(
                "a request for at least one chunk, found none".into(),
            ));
        }
        let mut hashes = Vec::with_capacity(n);
        for _ in 0..n {
            let mut h = [0u8; 32];
            io.read_exact(&mut h).await?;
            hashes.push(Hash(h));
        }
        expect_end(io, "request").await?;
        Ok(hashes)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Chunks> {
        let n = read_count(io).await?;
        let mut ranges = Vec::with_capacity(n);
        let mut total = 0;
        for _ in 0..n {
            let len = read_u32(io).await? as usize;
            if len > MAX_CHUNK {
                return Err(invalid(format!(
                    "a chunk of at most {MAX_CHUNK} bytes, found {len}"
                )));
            }
            ranges.push(total..total + len);
            total += len;
        }
        // bounded: n <= PER_REQUEST chunks of <= MAX_CHUNK bytes each
        debug_assert!(total + 4 + 4 * n <= RESPONSE_CAP);
        let mut data = vec![0u8; total];
        io.read_exact(&mut data).await?;
        expect_end(io, "response").await?;
        Ok(Chunks {
            data: Arc::new(data),
            ranges,
        })
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        hashes: Vec<Hash>,
    ) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(4 + 32 * hashes.len());
        buf.extend_from_slice(&(hashes.len() as u32).to_le_bytes());
        for h in &hashes {
            buf.extend_from_slice(h.as_bytes());
        }
        io.write_all(&buf).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        chunks: Chunks,
    ) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(4 + 4 * chunks.ranges.len());
        head.extend_from_slice(&(chunks.ranges.len() as u32).to_le_bytes());
        for r in &chunks.ranges {
            head.extend_from_slice(&(r.len() as u32).to_le_bytes());
        }
        io.write_all(&head).await?;
        for r in &chunks.ranges {
            io.write_all(&chunks.data[r.clone()]).await?;
        }
        io.close().await
    }
}

/// The serving side (a child process): listens on loopback, prints `listening
/// <multiaddr>`, serves chunks of the image until its stdin closes.
fn serve(tuning: Tuning, mib: usize) {
    let image = Arc::new(bytes(mib * MIB, IMAGE_SEED));
    let (_, refs) = chunk_bytes(ChunkingProfile::DEFAULT, &image).expect("the default profile");
    let mut at = HashMap::new();
    let mut offset = 0;
    for c in refs {
        at.insert(c.hash, offset..offset + c.len as usize);
        offset += c.len as usize;
    }
    // the parent closes our stdin when it is done, or dies
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async move {
        let mut swarm = swarm(SERVER_KEY, tuning);
        swarm
            .listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("a multiaddr"))
            .expect("listen on loopback");
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    println!("listening {address}/p2p/{}", swarm.local_peer_id());
                    let _ = std::io::stdout().flush();
                }
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                }) => {
                    // a hash we do not hold is answered with no chunk, which the
                    // client's check reports
                    let ranges = request
                        .iter()
                        .map(|h| at.get(h).cloned())
                        .collect::<Option<Vec<_>>>()
                        .unwrap_or_default();
                    let chunks = Chunks {
                        data: image.clone(),
                        ranges,
                    };
                    let _ = swarm.behaviour_mut().send_response(channel, chunks);
                }
                _ => {}
            }
        }
    });
}

struct Fetch {
    bytes: u64,
    secs: f64,
    cpu_server: f64,
    cpu_client: f64,
    rcvbuf_errors: u64,
}

/// Starts a serving process with `tuning`, fetches every chunk from it and checks each.
fn fetch(tuning: Tuning, mib: usize, chunks: &[(Hash, u32)]) -> Fetch {
    let mut child = Command::new(std::env::current_exe().expect("this bench's path"))
        .args([SERVE_ARG, tuning.name()])
        .env("SHOAL_BENCH_MIB", mib.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the serving side starts");
    let server_pid = child.id();
    let stdout = child.stdout.take().expect("piped stdout");
    let addr: Multiaddr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening ").map(str::to_string))
        .expect("the serving side listens")
        .parse()
        .expect("a multiaddr");
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let fetched = rt.block_on(async move {
        let mut swarm = swarm(CLIENT_KEY, tuning);
        swarm.dial(addr).expect("dial");
        let peer = loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => break peer_id,
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    panic!("cannot connect to the serving side: {error}")
                }
                _ => {}
            }
        };
        let udp0 = udp_rcvbuf_errors();
        let (s0, c0) = (process_cpu(server_pid), process_cpu(std::process::id()));
        let start = Instant::now();
        let mut batches = chunks.chunks(PER_REQUEST);
        let mut pending: HashMap<OutboundRequestId, &[(Hash, u32)]> = HashMap::new();
        let mut total = 0u64;
        loop {
            while pending.len() < REQUESTS {
                let Some(batch) = batches.next() else { break };
                let hashes = batch.iter().map(|c| c.0).collect();
                let id = swarm.behaviour_mut().send_request(&peer, hashes);
                pending.insert(id, batch);
            }
            if pending.is_empty() {
                break;
            }
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) => {
                    let want = pending
                        .remove(&request_id)
                        .expect("a response to a request of ours");
                    total += check(want, &response);
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    error, ..
                }) => panic!("a request failed: {error}"),
                SwarmEvent::ConnectionClosed { cause, .. } => {
                    panic!("the connection closed: {cause:?}")
                }
                _ => {}
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let (s1, c1) = (process_cpu(server_pid), process_cpu(std::process::id()));
        let udp1 = udp_rcvbuf_errors();
        Fetch {
            bytes: total,
            secs,
            cpu_server: s1 - s0,
            cpu_client: c1 - c0,
            rcvbuf_errors: udp1.saturating_sub(udp0),
        }
    });
    // closing its stdin ends the serving side
    drop(child.stdin.take());
    let _ = child.wait();
    let want: u64 = chunks.iter().map(|c| c.1 as u64).sum();
    assert_eq!(fetched.bytes, want, "every chunk arrived");
    fetched
}

/// Checks a response against the chunks asked for (length and BLAKE3); its bytes.
fn check(want: &[(Hash, u32)], got: &Chunks) -> u64 {
    assert_eq!(got.ranges.len(), want.len(), "one chunk per hash asked");
    let mut bytes = 0;
    for (&(hash, len), r) in want.iter().zip(&got.ranges) {
        assert_eq!(
            r.len(),
            len as usize,
            "the length of chunk {}",
            hash.short()
        );
        assert_eq!(
            Hash::of(&got.data[r.clone()]),
            hash,
            "a chunk that does not match"
        );
        bytes += len as u64;
    }
    bytes
}

/// UDP datagrams dropped so far because a socket's receive buffer was full,
/// system-wide (`/proc/net/snmp`; 0 where it cannot be read).
fn udp_rcvbuf_errors() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut rows = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .position(|n| n == "RcvbufErrors")
        .and_then(|i| values.split_whitespace().nth(i))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
