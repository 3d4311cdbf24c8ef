//! The scheduler in a swarm: many real schedulers over an in-memory network on a
//! virtual clock (see `swarm/harness.rs`). Each test reads as a script and ends in
//! asserts on what crossed the WAN, who banned or dropped whom, and who finished.

#[path = "swarm/harness.rs"]
mod harness;

use harness::{Mode, Setup, Swarm, seed};
use shoal_core::plan::Bitset;
use shoal_core::sched::{
    Action, ChunkInfo, Config, Fault, LanOutcome, Scheduler, Time, rendezvous_winner,
};
use shoal_core::{Hash, KeyId};
use std::collections::BTreeSet;

const STEPS: u64 = 2_000_000;

/// Who is first in rendezvous order for each chunk over every WAN-capable node.
fn first_choice(s: &Swarm) -> Vec<usize> {
    let ids: Vec<_> = s.nodes.iter().filter(|n| n.wan).map(|n| n.id).collect();
    s.chunks
        .iter()
        .map(|c| {
            let w = rendezvous_winner(&ids, &c.hash).expect("there are members");
            s.index_of(&w).expect("a node")
        })
        .collect()
}

fn banned_by(s: &Swarm, i: usize) -> Vec<(usize, Fault)> {
    s.actions_of(i, |a| matches!(a, Action::Ban { .. }))
        .into_iter()
        .filter_map(|a| match a {
            Action::Ban { peer, reason } => Some((s.index_of(&peer)?, reason)),
            _ => None,
        })
        .collect()
}

fn dropped_by(s: &Swarm, i: usize) -> Vec<(usize, Fault)> {
    s.actions_of(i, |a| matches!(a, Action::Drop { .. }))
        .into_iter()
        .filter_map(|a| match a {
            Action::Drop { peer, reason } => Some((s.index_of(&peer)?, reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_chunk_crosses_the_wan_once_and_all_complete() {
    let (seed, _guard) = seed(1);
    let setup = Setup::new(20, 300, seed);
    let mut s = Swarm::new(&setup);
    s.start(&setup.config);

    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    assert!(s.nodes.iter().all(|n| n.holds.is_full()));
    for (c, &n) in s.wan_crossings.iter().enumerate() {
        assert_eq!(n, 1, "chunk {c} crossed the WAN {n} times");
    }
    // The one who fetched each chunk is the one rendezvous names.
    let first = first_choice(&s);
    for &(_, node, c) in &s.wan_log {
        assert_eq!(
            node, first[c],
            "chunk {c} fetched by a node not responsible"
        );
    }
    assert_eq!(s.sum_stats(|st| st.takeovers), 0);
    assert_eq!(s.sum_stats(|st| st.wan_chunks), 300);
    for n in &s.nodes {
        let st = n.sched.stats();
        assert_eq!(st.lan_chunks + st.wan_chunks, 300);
        assert_eq!((st.bans, st.drops), (0, 0));
    }
    // Every node did part of the WAN work (about 15 chunks each).
    let fetchers: BTreeSet<usize> = s.wan_log.iter().map(|&(_, n, _)| n).collect();
    assert_eq!(fetchers.len(), 20);
}

/// What a takeover test checks after the swarm finished, `lost` being the chunks the
/// failed node was first for that no other node held when it failed.
fn assert_takeover_bounds(s: &Swarm, victim: usize, lost: &BTreeSet<usize>, failed_at: Time) {
    let first = first_choice(s);
    for (c, &n) in s.wan_crossings.iter().enumerate() {
        assert!(n >= 1, "chunk {c} never crossed the WAN");
        assert!(n <= 2, "chunk {c} crossed the WAN {n} times");
        if n == 2 {
            assert!(
                lost.contains(&c),
                "chunk {c} crossed twice but was not lost"
            );
        }
    }
    let second_copies = s.total_wan_crossings() - s.chunks.len() as u64;
    let takeovers = s.sum_stats(|st| st.takeovers);
    // The harness's own count: WAN fetches by a node other than the first in order.
    let not_first: Vec<_> = s
        .wan_log
        .iter()
        .filter(|&&(_, n, c)| n != first[c])
        .collect();
    assert_eq!(takeovers, not_first.len() as u64);
    // Only the victim's lost chunks were taken over, and none before it failed.
    for &&(t, _, c) in &not_first {
        assert!(lost.contains(&c), "chunk {c} taken over but not lost");
        assert_eq!(first[c], victim);
        assert!(t >= failed_at);
    }
    // A second copy is the victim's own fetch that never reached anyone plus a
    // takeover fetch: every second copy is a takeover, and a takeover is only for a
    // lost chunk (each at most once: the takers agree on who is next).
    assert!(takeovers > 0, "no takeover happened");
    assert!(
        second_copies <= takeovers && takeovers <= lost.len() as u64,
        "second copies {second_copies}, takeovers {takeovers}, lost {}",
        lost.len()
    );
    // Sharper: every lost chunk is needed by the live nodes and nobody else holds it,
    // so exactly one taker fetches it; and it crossed twice exactly when the victim
    // had fetched it (landed or still in flight) before it failed.
    assert_eq!(takeovers, lost.len() as u64);
    let victim_fetched = s
        .wan_log
        .iter()
        .filter(|&&(t, n, c)| n == victim && t <= failed_at && lost.contains(&c))
        .count();
    assert_eq!(second_copies, victim_fetched as u64);
}

/// Runs 20 nodes until a third of the WAN work is done, then picks the node with the
/// most WAN fetches in flight (it surely has chunks nobody else holds).
fn swarm_at_mid_transfer(seed: u64) -> (Swarm, usize) {
    let setup = Setup::new(20, 300, seed);
    let mut s = Swarm::new(&setup);
    s.start(&setup.config);
    assert!(s.drive_while(STEPS, |s| s.wan_log.len() < 100));
    let victim = (0..20)
        .max_by_key(|&i| (s.nodes[i].sched.wan_in_flight(), i))
        .expect("20 nodes");
    assert!(s.nodes[victim].sched.wan_in_flight() > 0);
    (s, victim)
}

fn lost_chunks(s: &Swarm, victim: usize) -> BTreeSet<usize> {
    let first = first_choice(s);
    (0..s.chunks.len())
        .filter(|&c| first[c] == victim)
        .filter(|&c| !(0..s.nodes.len()).any(|j| j != victim && s.nodes[j].holds.get(c)))
        .collect()
}

#[test]
fn a_dead_responsible_node_is_taken_over() {
    let (seed, _guard) = seed(2);
    let (mut s, victim) = swarm_at_mid_transfer(seed);
    let lost = lost_chunks(&s, victim);
    let died_at = s.now;

    s.kill(victim);
    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    assert!(
        s.nodes
            .iter()
            .filter(|n| n.mode == Mode::Honest)
            .all(|n| n.holds.is_full())
    );
    assert_takeover_bounds(&s, victim, &lost, died_at);
    eprintln!(
        "dead victim {victim}: lost {}, takeovers {}, second copies {}",
        lost.len(),
        s.sum_stats(|st| st.takeovers),
        s.total_wan_crossings() - 300
    );
    // Gone is not a fault: nobody was dropped or banned.
    assert_eq!(s.sum_stats(|st| st.bans + st.drops), 0);
}

#[test]
fn a_silent_node_is_taken_over() {
    let (seed, _guard) = seed(3);
    let (mut s, victim) = swarm_at_mid_transfer(seed);
    let lost = lost_chunks(&s, victim);
    let silent_at = s.now;

    s.silence(victim);
    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    assert!(
        s.nodes
            .iter()
            .filter(|n| n.mode == Mode::Honest)
            .all(|n| n.holds.is_full())
    );
    assert_takeover_bounds(&s, victim, &lost, silent_at);
    // The silent node was never told gone; the others found out by themselves: by
    // its silence (takeover_after) or by its requests timing out (dropped, too slow).
    let first_takeover = s
        .wan_log
        .iter()
        .filter(|&&(_, n, c)| n != first_choice(&s)[c])
        .map(|&(t, _, _)| t)
        .min()
        .expect("a takeover");
    assert!(first_takeover > silent_at);
    let mut droppers = 0;
    for i in (0..20).filter(|&i| i != victim) {
        for (peer, reason) in dropped_by(&s, i) {
            assert_eq!((peer, reason), (victim, Fault::TooSlow));
            droppers += 1;
        }
    }
    eprintln!(
        "silent victim {victim}: lost {}, takeovers {}, second copies {}, dropped by {droppers}, done at {:?}",
        lost.len(),
        s.sum_stats(|st| st.takeovers),
        s.total_wan_crossings() - 300,
        s.now
    );
}

#[test]
fn a_peer_serving_bad_chunks_is_banned_by_whoever_got_one() {
    let (seed, _guard) = seed(4);
    let setup = Setup::new(20, 300, seed);
    let mut s = Swarm::new(&setup);
    let bad = 7;
    s.nodes[bad].mode = Mode::Corrupt;
    s.start(&setup.config);

    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    assert!(
        !s.bad_deliveries.is_empty(),
        "the corrupt node served nothing"
    );
    let victims: BTreeSet<usize> = s.bad_deliveries.iter().map(|&(_, to, _, _)| to).collect();
    for i in (0..20).filter(|&i| i != bad) {
        let bans = banned_by(&s, i);
        let got_bad: Vec<usize> = s
            .bad_deliveries
            .iter()
            .filter(|&&(_, to, _, _)| to == i)
            .map(|&(_, _, _, c)| c)
            .collect();
        if victims.contains(&i) {
            assert_eq!(bans.len(), 1, "node {i} bans once: {bans:?}");
            let (peer, reason) = &bans[0];
            assert_eq!(*peer, bad);
            let Fault::BadChunk { index } = reason else {
                panic!("node {i} banned for {reason:?}");
            };
            assert!(got_bad.contains(index));
        } else {
            assert!(bans.is_empty(), "node {i} banned {bans:?} without cause");
        }
        assert!(dropped_by(&s, i).is_empty());
        assert!(s.nodes[i].holds.is_full(), "node {i} incomplete");
        assert_eq!(s.nodes[i].sched.stats().bans, bans.len() as u64);
    }
    // Every request after a ban went elsewhere.
    for &(t, to, from, _) in &s.bad_deliveries {
        let later_asks = s
            .actions
            .iter()
            .filter(|(at, n, a)| {
                *at > t
                    && *n == to
                    && matches!(a, Action::FetchLan { peer, .. } if s.index_of(peer) == Some(from))
            })
            .count();
        assert_eq!(later_asks, 0, "node {to} asked the banned node again");
    }
}

#[test]
fn a_peer_claiming_chunks_it_does_not_serve_is_dropped() {
    let (seed, _guard) = seed(5);
    let setup = Setup::new(20, 300, seed);
    let mut s = Swarm::new(&setup);
    let liar = 4;
    s.claims_all(liar);
    s.nodes[liar].wan = false;
    s.start(&setup.config);

    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    for i in (0..20).filter(|&i| i != liar) {
        let drops = dropped_by(&s, i);
        assert_eq!(drops.len(), 1, "node {i}: {drops:?}");
        assert_eq!(drops[0].0, liar);
        assert!(matches!(drops[0].1, Fault::FalseClaim { .. }));
        assert!(banned_by(&s, i).is_empty());
        assert!(s.nodes[i].holds.is_full());
    }
    // While the liar was believed nobody went to the WAN for its "chunks"; after it
    // was dropped each chunk still crossed once.
    assert!(s.wan_crossings.iter().all(|&n| n == 1));
}

// guards: a liar that is dropped, reconnects (the dialer tries again a second later)
// and lies again, for ever
#[test]
fn a_peer_that_reconnects_and_lies_again_is_banned() {
    let (seed, _guard) = seed(14);
    let mut setup = Setup::new(10, 100, seed);
    // slow enough a WAN that everyone is still fetching when the liar is back
    setup.wan_rate = 500_000;
    let mut s = Swarm::new(&setup);
    s.reconnect_after = Some(std::time::Duration::from_millis(200));
    let liar = 4;
    s.claims_all(liar);
    s.nodes[liar].wan = false;
    s.start(&setup.config);

    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    for i in (0..10).filter(|&i| i != liar) {
        // what node i did about the liar, in order
        let about: Vec<Action> = s.actions_of(i, |a| match a {
            Action::Drop { peer, .. } | Action::Ban { peer, .. } => s.index_of(peer) == Some(liar),
            _ => false,
        });
        assert_eq!(about.len(), 2, "node {i}: {about:?}");
        assert!(
            matches!(
                about[0],
                Action::Drop {
                    reason: Fault::FalseClaim { .. },
                    ..
                }
            ),
            "node {i}: {about:?}"
        );
        assert!(
            matches!(
                about[1],
                Action::Ban {
                    reason: Fault::FalseClaim { .. },
                    ..
                }
            ),
            "node {i}: {about:?}"
        );
        let banned_at = s
            .actions
            .iter()
            .find(|(_, n, a)| *n == i && matches!(a, Action::Ban { .. }))
            .map(|&(t, _, _)| t)
            .expect("a ban");
        let asked_after = s
            .actions
            .iter()
            .filter(|(t, n, a)| {
                *t > banned_at
                    && *n == i
                    && matches!(a, Action::FetchLan { peer, .. } if s.index_of(peer) == Some(liar))
            })
            .count();
        assert_eq!(asked_after, 0, "node {i} asked the banned liar again");
        assert!(s.nodes[i].holds.is_full(), "node {i} incomplete");
    }
    assert!(s.wan_crossings.iter().all(|&n| n == 1));
}

/// Node `i` serves nobody: its peers never see its have-map.
fn fetch_only(s: &mut Swarm, i: usize) {
    s.nodes[i].fetch_only = true;
}

// guards: a fetch-only node counting itself a WAN member: it fetched "its" share from
// the seeder, and the others, who never see its have-map, fetched the same again
#[test]
fn a_fetch_only_node_adds_no_wan_copy() {
    let (seed, _guard) = seed(15);
    let setup = Setup::new(10, 200, seed);
    let mut s = Swarm::new(&setup);
    let quiet = 3;
    fetch_only(&mut s, quiet);
    s.start(&setup.config);

    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    assert!(s.nodes.iter().all(|n| n.holds.is_full()));
    for (c, &n) in s.wan_crossings.iter().enumerate() {
        assert_eq!(n, 1, "chunk {c} crossed the WAN {n} times");
    }
    let st = s.nodes[quiet].sched.stats();
    assert_eq!((st.wan_chunks, st.lan_chunks), (0, 200));
    assert!(s.served.iter().all(|&(_, from, _, _)| from != quiet));
}

// guards: a fetch-only node whose peers serve nobody either waiting for ever
#[test]
fn fetch_only_nodes_among_themselves_each_fetch_everything_from_the_wan() {
    let (seed, _guard) = seed(16);
    let setup = Setup::new(3, 50, seed);
    let mut s = Swarm::new(&setup);
    (0..3).for_each(|i| fetch_only(&mut s, i));
    s.start(&setup.config);

    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    assert!(s.nodes.iter().all(|n| n.holds.is_full()));
    assert!(s.wan_crossings.iter().all(|&n| n == 3));
    assert_eq!(s.sum_stats(|st| st.takeovers), 0);
}

#[test]
fn a_trickling_peer_is_dropped_after_its_strikes() {
    let (seed, _guard) = seed(6);
    let setup = Setup::new(10, 100, seed);
    let mut s = Swarm::new(&setup);
    let slow = 0;
    s.holds_all(slow);
    s.nodes[slow].lan_rate = 1_000; // 64 KiB takes a minute: far below the floor
    s.start(&setup.config);

    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    let strikes = setup.config.max_strikes as usize;
    for i in 1..10 {
        let drops = dropped_by(&s, i);
        assert_eq!(drops, vec![(slow, Fault::TooSlow)], "node {i}");
        // Before the drop, `max_strikes` requests to it timed out (each cancelled).
        let mut cancels = 0;
        for a in s.actions_of(i, |_| true) {
            match a {
                Action::Cancel { peer, .. } if s.index_of(&peer) == Some(slow) => cancels += 1,
                Action::Drop { .. } => break,
                _ => {}
            }
        }
        assert!(
            cancels >= strikes,
            "node {i}: {cancels} timeouts before the drop"
        );
        assert!(s.nodes[i].sched.stats().timeouts >= strikes as u64);
        assert!(s.nodes[i].holds.is_full());
    }
    assert!(s.served.iter().all(|&(_, from, _, _)| from != slow));
}

#[test]
fn rarest_first_spreads_distinct_chunks_early() {
    let (seed, _guard) = seed(7);
    let mut setup = Setup::new(20, 300, seed);
    setup.lan_rate = 10_000_000;
    let mut s = Swarm::new(&setup);
    for n in &mut s.nodes {
        n.wan = false;
    }
    s.holds_all(0);
    s.start(&setup.config);

    assert!(s.drive(STEPS), "stalled at {:?}", s.now);
    assert_eq!(s.total_wan_crossings(), 0);

    // The first request of each of the 19 empty nodes: an in-order pick would send all
    // of them to chunk 0; a per-node tie-break spreads them.
    let firsts: BTreeSet<usize> = (1..20)
        .filter_map(|i| {
            s.actions_of(i, |a| matches!(a, Action::FetchLan { .. }))
                .first()
                .and_then(|a| match *a {
                    Action::FetchLan { index, .. } => Some(index),
                    _ => None,
                })
        })
        .collect();
    assert!(
        firsts.len() >= 15,
        "first requests hit {} chunks",
        firsts.len()
    );

    // The seed's first 300 uploads (one image's worth): with an in-order pick every
    // node walks 0, 1, 2, .. and those 300 uploads cover about 300 / 19 + 8 ≈ 24
    // distinct chunks; rarest-first makes most of them distinct.
    let seed_uploads: Vec<usize> = s
        .served
        .iter()
        .filter(|&&(_, from, _, _)| from == 0)
        .map(|&(_, _, _, c)| c)
        .take(300)
        .collect();
    let distinct: BTreeSet<usize> = seed_uploads.iter().copied().collect();
    eprintln!(
        "seed uploads {} (first 300 cover {} distinct chunks), total LAN deliveries {}",
        s.served.iter().filter(|&&(_, f, _, _)| f == 0).count(),
        distinct.len(),
        s.served.len()
    );
    assert!(
        distinct.len() >= 150,
        "the seed's first 300 uploads covered only {} chunks",
        distinct.len()
    );
    // Peers serve each other: the seed uploads far less than 19 images.
    let from_seed = s.served.iter().filter(|&&(_, f, _, _)| f == 0).count();
    assert!(from_seed < 19 * 300 / 2, "seed served {from_seed}");
}

fn endgame_swarm(duplicates: usize) -> (Swarm, Config) {
    let mut setup = Setup::new(3, 4, 11);
    setup.config.endgame_duplicates = duplicates;
    let mut s = Swarm::new(&setup);
    for n in &mut s.nodes {
        n.wan = false;
    }
    s.holds_all(0);
    s.holds_all(1);
    s.start(&setup.config);
    (s, setup.config)
}

#[test]
fn endgame_sends_duplicates_and_cancels_the_losers() {
    let (mut s, _) = endgame_swarm(1);
    // Whichever of the two holders is slow, its copies lose.
    let slow = 0;
    s.nodes[slow].lan_rate = 100_000;
    assert!(s.drive(STEPS), "stalled at {:?}", s.now);

    let x = 2;
    let st = s.nodes[x].sched.stats().clone();
    assert_eq!(st.duplicates, 4, "one duplicate per chunk: {st:?}");
    assert_eq!(st.lan_chunks, 4);
    let fetches = s.actions_of(x, |a| matches!(a, Action::FetchLan { .. }));
    assert_eq!(fetches.len(), 8);
    // The first four ask for the four chunks; only then (all in flight) duplicates.
    let first4: BTreeSet<usize> = fetches[..4]
        .iter()
        .map(|a| match *a {
            Action::FetchLan { index, .. } => index,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(first4.len(), 4);
    let cancels = s.actions_of(x, |a| matches!(a, Action::Cancel { .. }));
    assert_eq!(cancels.len(), 4);
    assert_eq!((st.cancels, st.lan_requests, st.timeouts), (4, 8, 0));
    for c in &cancels {
        let Action::Cancel { peer, .. } = c else {
            unreachable!()
        };
        assert_eq!(s.index_of(peer), Some(slow), "cancelled the fast copy");
    }
    // Each chunk landed once; nothing from the slow node was delivered.
    assert_eq!(s.landed.iter().filter(|&&(_, n, _)| n == x).count(), 4);
    assert!(s.served.iter().all(|&(_, from, _, _)| from != slow));
}

#[test]
fn without_endgame_duplicates_the_slow_copies_are_waited_for() {
    let (mut s, _) = endgame_swarm(0);
    s.nodes[0].lan_rate = 100_000;
    assert!(s.drive(STEPS));
    let st = s.nodes[2].sched.stats();
    assert_eq!(st.duplicates, 0);
    assert!(
        s.actions_of(2, |a| matches!(a, Action::Cancel { .. }))
            .is_empty()
    );
    assert!(s.served.iter().any(|&(_, from, _, _)| from == 0));
}

/// guards: any input sequence (unknown peers, indices out of range, maps of the wrong
/// length, outcomes for requests never made) without a panic or a broken limit.
#[test]
fn random_inputs_never_panic_and_keep_the_limits() {
    let (seed, _guard) = seed(12);
    let mut rng = harness::Rng::new(seed);
    let n = 40;
    let chunks: Vec<ChunkInfo> = (0..n as u32)
        .map(|i| ChunkInfo {
            hash: Hash::of(&i.to_le_bytes()),
            len: 1 + (i * 997) % 300_000,
        })
        .collect();
    let config = Config {
        lan_per_peer: 3,
        lan_total: 7,
        wan_in_flight: 2,
        max_strikes: 2,
        ..Config::default()
    };
    let peers: Vec<KeyId> = (0..6u8).map(|i| KeyId([i; 32])).collect();
    for round in 0..20 {
        let mut have = Bitset::new(n);
        for i in 0..n {
            if rng.one_in(4) {
                have.set(i);
            }
        }
        let mut s = Scheduler::new(
            config.clone(),
            peers[0],
            chunks.clone(),
            have,
            round % 3 != 0,
        );
        let mut now = Time(0);
        let mut banned = BTreeSet::new();
        for _ in 0..3_000 {
            now = Time(now.0 + rng.range(0, 2_000_000));
            let peer = peers[rng.range(0, 5) as usize];
            let index = rng.range(0, n as u64 + 3) as usize;
            match rng.range(0, 9) {
                0 => {
                    let len = if rng.one_in(5) { n + 1 } else { n };
                    let mut map = Bitset::new(len);
                    for i in 0..len {
                        if rng.one_in(3) {
                            map.set(i);
                        }
                    }
                    s.handle_peer_have(now, peer, map, rng.one_in(2));
                }
                1 | 2 => s.handle_peer_has(now, peer, index),
                3 => s.handle_peer_gone(now, peer),
                4 => {
                    let o = [
                        LanOutcome::Ok,
                        LanOutcome::Bad,
                        LanOutcome::NotServed,
                        LanOutcome::Failed,
                    ][rng.range(0, 3) as usize];
                    s.handle_lan_done(now, peer, index, o);
                }
                5 => s.handle_wan_done(now, index, !rng.one_in(3)),
                6 => s.handle_have(now, index),
                7 => s.handle_wan_reachable(now, !rng.one_in(4)),
                _ => s.handle_timeout(now),
            }
            while let Some(a) = s.poll_action(now) {
                match a {
                    Action::FetchLan { peer, index } => {
                        assert!(!banned.contains(&peer), "asked a banned peer");
                        assert!(index < n && !s.have().get(index));
                    }
                    Action::FetchWan { index } => assert!(index < n && !s.have().get(index)),
                    Action::Ban { peer, .. } => {
                        banned.insert(peer);
                    }
                    _ => {}
                }
                assert!(s.lan_in_flight() <= config.lan_total);
                assert!(s.wan_in_flight() <= config.wan_in_flight);
            }
            if let Some(t) = s.poll_timeout() {
                assert!(t.0 > 0);
            }
        }
        assert_eq!(s.is_complete(), s.have().count() == n);
    }
}

/// A scheduler with one WAN-capable peer that never announces: its chunks are taken
/// over at `takeover_after` after it last spoke, and not before.
#[test]
fn a_member_silent_past_takeover_after_loses_its_chunks() {
    let n = 64;
    let chunks: Vec<ChunkInfo> = (0..n as u32)
        .map(|i| ChunkInfo {
            hash: Hash::of(&i.to_le_bytes()),
            len: 1_000,
        })
        .collect();
    let (me, peer) = (KeyId([1; 32]), KeyId([2; 32]));
    let config = Config {
        wan_in_flight: n,
        ..Config::default()
    };
    let after = config.takeover_after;
    let mut s = Scheduler::new(config, me, chunks.clone(), Bitset::new(n), true);
    s.handle_peer_have(Time(0), peer, Bitset::new(n), true);
    let theirs: BTreeSet<usize> = (0..n)
        .filter(|&c| rendezvous_winner(&[me, peer], &chunks[c].hash) == Some(peer))
        .collect();
    assert!(!theirs.is_empty() && theirs.len() < n);

    let c0_of = |theirs: &BTreeSet<usize>| *theirs.iter().next().expect("non-empty");
    let mut fetched = BTreeSet::new();
    let drain = |s: &mut Scheduler, now, fetched: &mut BTreeSet<usize>| {
        while let Some(a) = s.poll_action(now) {
            match a {
                Action::FetchWan { index } => {
                    assert!(fetched.insert(index), "chunk {index} fetched twice")
                }
                // The announced chunk comes over the LAN.
                Action::FetchLan { peer: p, index } if p == peer && index == c0_of(&theirs) => {}
                a => panic!("unexpected {a:?}"),
            }
        }
    };
    drain(&mut s, Time(0), &mut fetched);
    assert_eq!(
        fetched.len(),
        n - theirs.len(),
        "only my own chunks at first"
    );
    assert!(fetched.is_disjoint(&theirs));
    assert_eq!(s.poll_timeout(), Some(Time(0).plus(after)));

    // Just before the deadline nothing moves.
    let almost = Time(after.as_micros() as u64 - 1);
    s.handle_timeout(almost);
    drain(&mut s, almost, &mut fetched);
    assert_eq!(fetched.len(), n - theirs.len());

    // The peer announces one chunk: its clock restarts, and the one it holds is not
    // needed from the WAN any more.
    let c0 = c0_of(&theirs);
    s.handle_peer_has(almost, peer, c0);
    drain(&mut s, almost, &mut fetched);
    s.handle_lan_done(almost, peer, c0, LanOutcome::Ok);
    let deadline = almost.plus(after);
    // The silence check is kept as a cheap lower bound: it may wake once early, finds
    // nobody silent, and then names the exact instant.
    let early = s.poll_timeout().expect("a silence check");
    assert!(early <= deadline);
    s.handle_timeout(early);
    drain(&mut s, early, &mut fetched);
    assert_eq!(fetched.len(), n - theirs.len());
    assert_eq!(s.poll_timeout(), Some(deadline));
    s.handle_timeout(deadline);
    drain(&mut s, deadline, &mut fetched);
    assert_eq!(fetched.len(), n - 1, "every chunk but the announced one");
    assert!(!fetched.contains(&c0));
    assert_eq!(s.stats().takeovers, theirs.len() as u64 - 1);
}

#[test]
fn chunks_a_peer_holds_never_cross_the_wan() {
    let (seed, _guard) = seed(13);
    let setup = Setup::new(10, 100, seed);
    let mut s = Swarm::new(&setup);
    s.holds_all(3);
    s.start(&setup.config);
    assert!(s.drive(STEPS), "stalled at {:?}", s.now);
    assert_eq!(s.total_wan_crossings(), 0);
    assert!(s.nodes.iter().all(|n| n.holds.is_full()));
}

/// guards: falling back to the WAN because one LAN request failed.
#[test]
fn a_failed_lan_request_goes_back_to_the_pool_not_to_the_wan() {
    let chunks = vec![ChunkInfo {
        hash: Hash::of(b"c"),
        len: 100,
    }];
    let (me, peer) = (KeyId([1; 32]), KeyId([2; 32]));
    // This node is the only WAN member, so it is responsible for the chunk.
    let mut s = Scheduler::new(Config::default(), me, chunks, Bitset::new(1), true);
    let mut map = Bitset::new(1);
    map.set(0);
    s.handle_peer_have(Time(0), peer, map, false);
    for (t, outcome) in [(1, LanOutcome::Failed), (2, LanOutcome::Failed)] {
        assert_eq!(
            s.poll_action(Time(t)),
            Some(Action::FetchLan { peer, index: 0 })
        );
        assert_eq!(s.poll_action(Time(t)), None);
        s.handle_lan_done(Time(t), peer, 0, outcome);
    }
    // The third strike drops the peer; only now does nobody hold the chunk.
    assert_eq!(
        s.poll_action(Time(3)),
        Some(Action::FetchLan { peer, index: 0 })
    );
    s.handle_lan_done(Time(3), peer, 0, LanOutcome::Failed);
    assert_eq!(
        s.poll_action(Time(3)),
        Some(Action::Drop {
            peer,
            reason: Fault::TooSlow
        })
    );
    assert_eq!(s.poll_action(Time(3)), Some(Action::FetchWan { index: 0 }));
    assert_eq!(s.stats().drops, 1);
}
