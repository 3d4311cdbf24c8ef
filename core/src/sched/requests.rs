//! LAN requests in flight and their deadlines.
//!
//! There are at most `lan_total` of them (64 by default), so a flat list scanned
//! linearly beats any index; the earliest deadline is cached for `poll_timeout`.

use super::Time;
use std::time::Duration;

/// When a LAN request for `len` bytes issued at `issued` fails: it may run at
/// `floor_bytes_per_s`, plus `grace` for round trips and queueing. A floor of zero means
/// "never too slow": no deadline.
pub(crate) fn deadline(issued: Time, len: u32, floor_bytes_per_s: u64, grace: Duration) -> Time {
    if floor_bytes_per_s == 0 {
        return Time::NEVER;
    }
    let transfer_us = u128::from(len) * 1_000_000 / u128::from(floor_bytes_per_s);
    let transfer = Duration::from_micros(transfer_us.min(u128::from(u64::MAX)) as u64);
    issued.plus(transfer).plus(grace)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub peer: u32,
    pub index: usize,
    pub issued: Time,
    pub deadline: Time,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Requests {
    list: Vec<Request>,
    earliest: Option<Time>,
}

impl Requests {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Request> {
        self.list.iter()
    }

    pub fn earliest(&self) -> Option<Time> {
        self.earliest
    }

    pub fn asked(&self, peer: u32, index: usize) -> bool {
        self.list.iter().any(|r| r.peer == peer && r.index == index)
    }

    pub fn insert(&mut self, r: Request) {
        self.list.push(r);
        if r.deadline != Time::NEVER {
            self.earliest = Some(self.earliest.map_or(r.deadline, |e| e.min(r.deadline)));
        }
    }

    /// Removes the request `(peer, index)`, if it is in flight.
    pub fn take(&mut self, peer: u32, index: usize) -> Option<Request> {
        let at = self
            .list
            .iter()
            .position(|r| r.peer == peer && r.index == index)?;
        // `remove`, not `swap_remove`: the list order is the issue order, which keeps
        // timeouts firing in a deterministic, intuitive order.
        let r = self.list.remove(at);
        self.refresh();
        Some(r)
    }

    /// Removes and returns every request matching `pred`, in issue order.
    pub fn take_where(&mut self, mut pred: impl FnMut(&Request) -> bool) -> Vec<Request> {
        let mut out = Vec::new();
        self.list.retain(|r| {
            if pred(r) {
                out.push(*r);
                false
            } else {
                true
            }
        });
        if !out.is_empty() {
            self.refresh();
        }
        out
    }

    fn refresh(&mut self) {
        self.earliest = self
            .list
            .iter()
            .map(|r| r.deadline)
            .filter(|&d| d != Time::NEVER)
            .min();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_issue_time_plus_len_at_the_floor_plus_grace() {
        let t = deadline(
            Time::from_micros(1_000),
            64 * 1024,
            64 * 1024,
            Duration::from_secs(2),
        );
        assert_eq!(t, Time::from_micros(1_000 + 1_000_000 + 2_000_000));
        // 1 byte at 3 B/s is 333,333 µs (rounded down).
        let t = deadline(Time(0), 1, 3, Duration::ZERO);
        assert_eq!(t, Time(333_333));
    }

    #[test]
    fn a_zero_floor_never_expires_and_huge_values_saturate() {
        assert_eq!(
            deadline(Time(5), 10, 0, Duration::from_secs(1)),
            Time::NEVER
        );
        assert_eq!(
            deadline(Time(u64::MAX - 1), u32::MAX, 1, Duration::MAX),
            Time(u64::MAX)
        );
    }

    #[test]
    fn the_earliest_deadline_follows_inserts_and_removals() {
        let mut q = Requests::default();
        assert_eq!(q.earliest(), None);
        let r = |peer, index, d| Request {
            peer,
            index,
            issued: Time(0),
            deadline: Time(d),
        };
        q.insert(r(0, 1, 30));
        q.insert(r(1, 2, 10));
        q.insert(r(2, 3, 20));
        assert_eq!(q.earliest(), Some(Time(10)));
        assert!(q.take(1, 2).is_some());
        assert_eq!(q.earliest(), Some(Time(20)));
        assert!(q.take(1, 2).is_none());
        let gone = q.take_where(|r| r.deadline <= Time(25));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].index, 3);
        assert_eq!(q.earliest(), Some(Time(30)));
        assert!(q.asked(0, 1) && !q.asked(0, 2));
    }
}
