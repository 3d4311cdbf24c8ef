//! Discovery: a libp2p swarm (QUIC transport, mDNS, identify) whose identity is the
//! device key. It finds peers on the LAN, exchanges [`Intro`]s with them on
//! `/shoal/intro/1` (admission and xfer port, checked before anything is dialed), and
//! hands the xfer addresses of admitted peers to the dialer. It moves no chunk.

use super::Ctx;
use crate::error::NodeError;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identify, mdns, request_response};
use shoal_core::lan::{INTRO_CAP, INTRO_PROTOCOL, Intro};
use shoal_core::{PublicKey, SecretKey};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// How often intros that waited for this node's admission are tried again.
const INTRO_RETRY: Duration = Duration::from_millis(200);

#[derive(NetworkBehaviour)]
struct Behaviour {
    mdns: mdns::tokio::Behaviour,
    identify: identify::Behaviour,
    intro: request_response::Behaviour<IntroCodec>,
}

/// `/shoal/intro/1`: one [`Intro`] each way, in the core codec, capped.
#[derive(Debug, Clone, Default)]
struct IntroCodec;

async fn read_intro<T: AsyncRead + Unpin + Send>(io: &mut T) -> std::io::Result<Intro> {
    let mut buf = Vec::new();
    io.take(INTRO_CAP as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > INTRO_CAP {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("an intro over {INTRO_CAP} bytes"),
        ));
    }
    Intro::decode(&buf)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

async fn write_intro<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    intro: Intro,
) -> std::io::Result<()> {
    let bytes = intro
        .encode()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl request_response::Codec for IntroCodec {
    type Protocol = StreamProtocol;
    type Request = Intro;
    type Response = Intro;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Intro> {
        read_intro(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Intro> {
        read_intro(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Intro,
    ) -> std::io::Result<()> {
        write_intro(io, req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Intro,
    ) -> std::io::Result<()> {
        write_intro(io, res).await
    }
}

/// The libp2p peer id of a device key.
pub fn peer_id(key: &PublicKey) -> Option<PeerId> {
    let k = libp2p::identity::ed25519::PublicKey::try_from_bytes(&key.0).ok()?;
    Some(PeerId::from_public_key(&libp2p::identity::PublicKey::from(
        k,
    )))
}

/// Where to dial the peer that sent `intro` from `ip`: nowhere if it serves nothing
/// (port 0).
fn xfer_addr(ip: IpAddr, intro: &Intro) -> Option<SocketAddr> {
    (intro.xfer_port != 0).then(|| SocketAddr::new(ip, intro.xfer_port))
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        libp2p::multiaddr::Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Starts the swarm on `listen_ip` (any port); admitted peers' xfer addresses go to
/// `found`. `xfer_port` is this node's, or 0 if it serves nothing.
pub fn start(
    ctx: Arc<Ctx>,
    key: &SecretKey,
    listen_ip: IpAddr,
    xfer_port: u16,
    found: mpsc::UnboundedSender<SocketAddr>,
) -> Result<(), NodeError> {
    let fail = |what: &str, e: String| NodeError::Config(format!("LAN discovery: {what}: {e}"));
    let mut seed = key.seed();
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .map_err(|e| fail("the device key", e.to_string()))?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_quic()
        .with_behaviour(|k| {
            Ok(Behaviour {
                mdns: mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    k.public().to_peer_id(),
                )?,
                identify: identify::Behaviour::new(identify::Config::new(
                    "/shoal/id/1".into(),
                    k.public(),
                )),
                intro: request_response::Behaviour::new(
                    [(
                        StreamProtocol::new(INTRO_PROTOCOL),
                        request_response::ProtocolSupport::Full,
                    )],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(10)),
                ),
            })
        })
        .map_err(|e| fail("the behaviour", e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    let listen: Multiaddr = match listen_ip {
        IpAddr::V4(ip) => format!("/ip4/{ip}/udp/0/quic-v1"),
        IpAddr::V6(ip) => format!("/ip6/{ip}/udp/0/quic-v1"),
    }
    .parse()
    .map_err(|e: libp2p::multiaddr::Error| fail("the listen address", e.to_string()))?;
    swarm
        .listen_on(listen)
        .map_err(|e| fail("listen", e.to_string()))?;
    tokio::spawn(async move {
        let mut remote: HashMap<PeerId, IpAddr> = HashMap::new();
        let mut introduced: HashSet<PeerId> = HashSet::new();
        // Intros wait for this node's admission, which comes from the seeder moments
        // after start; a fetch starting meanwhile counts only the peers introduced by
        // then (a 3 s tick measured 1.73 x WAN amplification on a site found by mDNS
        // alone), so look often: the tick does nothing once everyone is introduced.
        let mut tick = tokio::time::interval(INTRO_RETRY);
        let intro = |ctx: &Ctx| {
            ctx.shared.admission().map(|admission| Intro {
                admission,
                xfer_port,
            })
        };
        // the admission must be for the key libp2p authenticated
        let check = |ctx: &Ctx, peer: &PeerId, intro: &Intro| -> Result<(), String> {
            let id = ctx.check_admission(&intro.admission, None)?.id;
            let signed =
                <shoal_core::Admission as shoal_core::Document>::decode_envelope(&intro.admission)
                    .map_err(|e| e.to_string())?;
            let adm = signed.decode_unverified().map_err(|e| e.to_string())?;
            if peer_id(&adm.device_key).as_ref() != Some(peer) {
                return Err(format!(
                    "the admission of {} is not for this libp2p peer",
                    id.short()
                ));
            }
            Ok(())
        };
        loop {
            let event = tokio::select! {
                e = swarm.select_next_some() => e,
                _ = tick.tick() => {
                    // intros that had to wait for this node's admission
                    if let Some(i) = intro(&ctx) {
                        let pending: Vec<PeerId> = remote.keys().filter(|p| !introduced.contains(p)).copied().collect();
                        for p in pending {
                            introduced.insert(p);
                            swarm.behaviour_mut().intro.send_request(&p, i.clone());
                        }
                    }
                    continue;
                }
            };
            match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    info!(%address, "LAN discovery listening")
                }
                SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(list))) => {
                    for (peer, addr) in list {
                        if !swarm.is_connected(&peer) {
                            debug!(%peer, %addr, "mDNS found a peer");
                            let _ = swarm.dial(addr);
                        }
                    }
                }
                SwarmEvent::ConnectionEstablished {
                    peer_id, endpoint, ..
                } => {
                    if let Some(ip) = ip_of(endpoint.get_remote_address()) {
                        remote.insert(peer_id, ip);
                    }
                    if endpoint.is_dialer()
                        && let Some(i) = intro(&ctx)
                    {
                        introduced.insert(peer_id);
                        swarm.behaviour_mut().intro.send_request(&peer_id, i);
                    }
                }
                SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } => {
                    remote.remove(&peer_id);
                    introduced.remove(&peer_id);
                }
                SwarmEvent::Behaviour(BehaviourEvent::Intro(
                    request_response::Event::Message { peer, message, .. },
                )) => {
                    let (theirs, channel) = match message {
                        request_response::Message::Request {
                            request, channel, ..
                        } => (request, Some(channel)),
                        request_response::Message::Response { response, .. } => (response, None),
                    };
                    match check(&ctx, &peer, &theirs) {
                        Ok(()) => {
                            if let Some(addr) =
                                remote.get(&peer).and_then(|ip| xfer_addr(*ip, &theirs))
                            {
                                let _ = found.send(addr);
                            }
                            if let Some(channel) = channel
                                && let Some(mine) = intro(&ctx)
                            {
                                introduced.insert(peer);
                                let _ = swarm.behaviour_mut().intro.send_response(channel, mine);
                            }
                        }
                        Err(reason) => {
                            warn!(%peer, "disconnecting a LAN peer: {reason}");
                            ctx.counters.refusal(None, &reason);
                            let _ = swarm.disconnect_peer_id(peer);
                        }
                    }
                }
                _ => {}
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // guards: peers dialing (and waiting for) a node that serves nothing
    #[test]
    fn a_peer_that_serves_nothing_is_not_dialed() {
        let ip: IpAddr = [10, 0, 0, 7].into();
        let intro = |xfer_port| Intro {
            admission: vec![1],
            xfer_port,
        };
        assert_eq!(xfer_addr(ip, &intro(0)), None);
        assert_eq!(xfer_addr(ip, &intro(7700)), Some(SocketAddr::new(ip, 7700)));
    }
}
