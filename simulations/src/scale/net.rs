//! The flow-level network of one site.
//!
//! Links: the site's WAN link (rate `wan`), and per node a LAN uplink and downlink
//! (rate `lan` each). A transfer is a flow; it starts one latency after its request
//! (LAN: `lan_latency`, WAN: `wan_rtt`) and then runs at
//!
//! ```text
//! LAN flow s→r:  min(lan / flows on s's uplink, lan / flows on r's downlink)
//! WAN flow →r:   min(wan / WAN flows of the site, lan / flows on r's downlink)
//! ```
//!
//! — an **equal share per link**, not max-min fairness: capacity a flow cannot use
//! because another link limits it is not handed to the others, so the model is a
//! little pessimistic, and cheap: shares are per link, a flow's rate is three lookups.
//! Time advances in fixed ticks; a flow that finishes inside a tick is delivered at
//! the tick's end.

use shoal_core::sched::Time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Wan,
    Lan(u32),
}

#[derive(Debug, Clone)]
pub struct Flow {
    pub source: Source,
    pub to: u32,
    pub index: u32,
    pub len: u32,
    pub remaining: f64,
    pub start_at: Time,
    pub active: bool,
}

impl Flow {
    pub fn transferred(&self) -> u64 {
        (f64::from(self.len) - self.remaining.max(0.0)).round() as u64
    }
}

/// Every flow of a site and the per-link flow counts.
#[derive(Debug, Clone)]
pub struct Net {
    /// Bytes per second.
    pub wan_rate: f64,
    pub lan_rate: f64,
    pub flows: Vec<Flow>,
    wan_flows: u32,
    up: Vec<u32>,
    down: Vec<u32>,
    up_share: Vec<f64>,
    down_share: Vec<f64>,
}

impl Net {
    pub fn new(nodes: usize, wan_rate: f64, lan_rate: f64) -> Net {
        Net {
            wan_rate,
            lan_rate,
            flows: Vec::new(),
            wan_flows: 0,
            up: vec![0; nodes],
            down: vec![0; nodes],
            up_share: vec![0.0; nodes],
            down_share: vec![0.0; nodes],
        }
    }

    pub fn start(&mut self, source: Source, to: u32, index: u32, len: u32, start_at: Time) {
        self.flows.push(Flow {
            source,
            to,
            index,
            len,
            remaining: f64::from(len),
            start_at,
            active: false,
        });
    }

    /// The earliest start of a flow not yet running.
    pub fn next_start(&self) -> Option<Time> {
        self.flows
            .iter()
            .filter(|f| !f.active)
            .map(|f| f.start_at)
            .min()
    }

    pub fn any_active(&self) -> bool {
        self.wan_flows > 0 || self.down.iter().any(|&d| d > 0)
    }

    /// Flows whose start time came become active.
    pub fn activate(&mut self, now: Time) {
        for f in self
            .flows
            .iter_mut()
            .filter(|f| !f.active && f.start_at <= now)
        {
            f.active = true;
            self.down[f.to as usize] += 1;
            match f.source {
                Source::Wan => self.wan_flows += 1,
                Source::Lan(s) => self.up[s as usize] += 1,
            }
        }
    }

    /// Runs every active flow for `dt_s` seconds at its current share; returns the
    /// flows that finished, in flow order.
    pub fn advance(&mut self, dt_s: f64) -> Vec<Flow> {
        for i in 0..self.up.len() {
            self.up_share[i] = self.lan_rate / f64::from(self.up[i].max(1));
            self.down_share[i] = self.lan_rate / f64::from(self.down[i].max(1));
        }
        let wan_share = self.wan_rate / f64::from(self.wan_flows.max(1));
        let mut any_done = false;
        for f in self.flows.iter_mut().filter(|f| f.active) {
            let first = match f.source {
                Source::Wan => wan_share,
                Source::Lan(s) => self.up_share[s as usize],
            };
            let rate = first.min(self.down_share[f.to as usize]);
            f.remaining -= rate * dt_s;
            any_done |= f.remaining <= 1e-6;
        }
        if !any_done {
            return Vec::new();
        }
        self.take_where(|f| f.active && f.remaining <= 1e-6)
    }

    /// Removes (and returns, in flow order) every flow matching `pred`.
    pub fn take_where(&mut self, mut pred: impl FnMut(&Flow) -> bool) -> Vec<Flow> {
        let mut out = Vec::new();
        let mut keep = Vec::with_capacity(self.flows.len());
        for f in self.flows.drain(..) {
            if pred(&f) {
                out.push(f);
            } else {
                keep.push(f);
            }
        }
        self.flows = keep;
        for f in out.iter().filter(|f| f.active) {
            self.down[f.to as usize] -= 1;
            match f.source {
                Source::Wan => self.wan_flows -= 1,
                Source::Lan(s) => self.up[s as usize] -= 1,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_share_each_link_equally() {
        // Two WAN flows on a 1,000 B/s link, LAN fast: each runs at 500 B/s.
        let mut net = Net::new(3, 1_000.0, 1e9);
        net.start(Source::Wan, 0, 0, 1_000, Time(0));
        net.start(Source::Wan, 1, 1, 500, Time(0));
        net.activate(Time(0));
        assert!(net.advance(0.5).is_empty());
        let done = net.advance(0.5);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].index, 1);
        // Alone now, the first flow gets the whole link: 500 bytes left at 1,000 B/s.
        assert_eq!(net.advance(0.5).len(), 1);
        assert!(!net.any_active());
    }

    #[test]
    fn a_lan_flow_is_held_to_the_busier_end() {
        // Node 0 uploads to 1 and 2; node 2 also downloads from node 1.
        let mut net = Net::new(3, 1.0, 1_000.0);
        net.start(Source::Lan(0), 1, 0, 1_000, Time(0));
        net.start(Source::Lan(0), 2, 1, 1_000, Time(0));
        net.start(Source::Lan(1), 2, 2, 1_000, Time(5));
        net.activate(Time(0));
        assert_eq!(net.next_start(), Some(Time(5)));
        net.activate(Time(5));
        net.advance(1.0);
        // 0→1: min(500, 1000) = 500; 0→2: min(500, 500); 1→2: min(1000, 500) = 500.
        assert!(net.flows.iter().all(|f| (f.remaining - 500.0).abs() < 1e-9));
    }
}
