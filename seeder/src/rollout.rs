//! Phased rollouts, the arithmetic only (no store, no clock): how many devices each
//! phase releases, and what a deployment does next given what its devices reported.
//!
//! A deployment's members are the group's accepted devices when it was created, in a
//! fixed pseudo-random order (BLAKE3 of the deployment id and the device id). Phase `i`
//! releases the first `cumulative[i]` of them. Devices that join the group later are
//! released with the last phase.
//!
//! The decision, made each time a member reports:
//! - failures beyond those the operator acknowledged (by resuming) reach the failure
//!   threshold: pause;
//! - otherwise, successes reach the success threshold of the devices released so far
//!   (less the acknowledged failures): release the next phase, or complete after the
//!   last one.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A number of devices, or a percentage of some total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Amount {
    Percent(u8),
    Count(u64),
}

/// Why a phase or threshold text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RolloutError {
    #[error("'{0}': expected a count (5) or a percentage from 1% to 100% (20%)")]
    BadAmount(String),
    #[error("phases '{0}': expected a comma-separated list such as 20%,100% or 2,10")]
    NoPhases(String),
    #[error(
        "phases '{text}': expected each phase to release more devices than the one before (phase {phase} does not)"
    )]
    NotIncreasing { text: String, phase: usize },
    #[error("phases '{0}': expected the last phase to be 100% so that every device is covered")]
    LastNotAll(String),
}

impl Amount {
    /// `20%` or `5`.
    pub fn parse(text: &str) -> Result<Amount, RolloutError> {
        let t = text.trim();
        let bad = || RolloutError::BadAmount(text.to_string());
        if let Some(p) = t.strip_suffix('%') {
            let p: u8 = p.trim().parse().map_err(|_| bad())?;
            if p == 0 || p > 100 {
                return Err(bad());
            }
            Ok(Amount::Percent(p))
        } else {
            let n: u64 = t.parse().map_err(|_| bad())?;
            if n == 0 {
                return Err(bad());
            }
            Ok(Amount::Count(n))
        }
    }

    /// The amount of `total`: a percentage rounds up (20% of 3 is 1), a count is capped
    /// at `total`.
    pub fn of(self, total: u64) -> u64 {
        match self {
            Amount::Percent(p) => (total * u64::from(p)).div_ceil(100),
            Amount::Count(n) => n.min(total),
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Percent(p) => write!(f, "{p}%"),
            Amount::Count(n) => write!(f, "{n}"),
        }
    }
}

/// `20%,100%` or `2,5,100%`. A list of counts need not end in 100%: devices past the
/// last count are released with the last phase anyway.
pub fn parse_phases(text: &str) -> Result<Vec<Amount>, RolloutError> {
    let phases: Vec<Amount> = text
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(Amount::parse)
        .collect::<Result<_, _>>()?;
    if phases.is_empty() {
        return Err(RolloutError::NoPhases(text.to_string()));
    }
    if let Some(Amount::Percent(p)) = phases.last()
        && *p != 100
    {
        return Err(RolloutError::LastNotAll(text.to_string()));
    }
    for (i, pair) in phases.windows(2).enumerate() {
        let rises = match (pair[0], pair[1]) {
            (Amount::Percent(a), Amount::Percent(b)) => b > a,
            (Amount::Count(a), Amount::Count(b)) => b > a,
            // a count then a percentage (or back) depends on the group's size; the
            // cumulative sizes are made non-decreasing in `cumulative`
            _ => true,
        };
        if !rises {
            return Err(RolloutError::NotIncreasing {
                text: text.to_string(),
                phase: i + 2,
            });
        }
    }
    Ok(phases)
}

/// How many of `members` devices are released once phase `i` is, for each phase: non
/// decreasing, and the last is every member.
pub fn cumulative(phases: &[Amount], members: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(phases.len().max(1));
    let mut at_least = 0;
    for p in phases {
        let n = p.of(members).max(at_least);
        out.push(n);
        at_least = n;
    }
    match out.last_mut() {
        Some(last) => *last = members,
        None => out.push(members),
    }
    out
}

/// What the members released so far have reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Devices released so far (phases up to the current one).
    pub released: u64,
    pub succeeded: u64,
    /// Failed or rolled back.
    pub failed: u64,
}

/// What a deployment should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Stay,
    Pause {
        reason: String,
    },
    /// Release the next phase.
    Advance,
    /// The last phase reached its success threshold.
    Complete,
}

/// The decision for an active deployment in phase `phase` (0-based) of `phases`.
pub fn decide(
    tally: Tally,
    acknowledged_failures: u64,
    success: Amount,
    failure: Option<Amount>,
    phase: usize,
    phases: usize,
) -> Step {
    let new_failures = tally.failed.saturating_sub(acknowledged_failures);
    if let Some(f) = failure {
        let limit = f.of(tally.released).max(1);
        if new_failures >= limit {
            return Step::Pause {
                reason: format!(
                    "failure threshold {f} reached: {new_failures} of {} released devices failed",
                    tally.released
                ),
            };
        }
    }
    let counted = tally.released.saturating_sub(acknowledged_failures);
    // every released device failed and the operator resumed anyway: go on
    let met = if counted == 0 {
        tally.released > 0
    } else {
        tally.succeeded >= success.of(counted)
    };
    if met {
        if phase + 1 >= phases {
            Step::Complete
        } else {
            Step::Advance
        }
    } else {
        Step::Stay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_and_apply() {
        assert_eq!(Amount::parse("20%"), Ok(Amount::Percent(20)));
        assert_eq!(Amount::parse(" 3 "), Ok(Amount::Count(3)));
        for bad in ["0", "0%", "101%", "x", "-1", "", "5%%"] {
            assert!(Amount::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Amount::Percent(20).of(10), 2);
        assert_eq!(Amount::Percent(20).of(3), 1, "rounds up");
        assert_eq!(Amount::Count(5).of(3), 3, "capped");
    }

    #[test]
    fn phases_parse() {
        assert_eq!(
            parse_phases("20%,100%"),
            Ok(vec![Amount::Percent(20), Amount::Percent(100)])
        );
        assert_eq!(
            parse_phases("2,5"),
            Ok(vec![Amount::Count(2), Amount::Count(5)])
        );
        assert!(matches!(
            parse_phases("50%,20%,100%"),
            Err(RolloutError::NotIncreasing { phase: 2, .. })
        ));
        assert!(matches!(
            parse_phases("20%,50%"),
            Err(RolloutError::LastNotAll(_))
        ));
        assert!(matches!(parse_phases(""), Err(RolloutError::NoPhases(_))));
    }

    #[test]
    fn cumulative_sizes_cover_every_member() {
        let p = parse_phases("20%,100%").unwrap();
        assert_eq!(cumulative(&p, 10), vec![2, 10]);
        let p = parse_phases("2,5").unwrap();
        assert_eq!(cumulative(&p, 10), vec![2, 10], "the last takes the rest");
        let p = parse_phases("5,10%,100%").unwrap();
        assert_eq!(cumulative(&p, 20), vec![5, 5, 20], "never shrinks");
        assert_eq!(cumulative(&[], 4), vec![4]);
    }

    #[test]
    fn a_failure_pauses_before_success_advances() {
        let t = Tally {
            released: 2,
            succeeded: 1,
            failed: 1,
        };
        let one = Some(Amount::Count(1));
        assert!(matches!(
            decide(t, 0, Amount::Percent(100), one, 0, 2),
            Step::Pause { .. }
        ));
        // resumed: the failure is acknowledged and no longer counted against the phase
        assert_eq!(decide(t, 1, Amount::Percent(100), one, 0, 2), Step::Advance);
        assert_eq!(
            decide(t, 1, Amount::Percent(100), one, 1, 2),
            Step::Complete
        );
        // no failure threshold: the phase waits for its successes
        assert_eq!(decide(t, 0, Amount::Percent(100), None, 0, 2), Step::Stay);
        assert_eq!(decide(t, 0, Amount::Percent(50), None, 0, 2), Step::Advance);
        // nothing reported yet
        assert_eq!(
            decide(Tally::default(), 0, Amount::Percent(100), one, 0, 2),
            Step::Stay
        );
    }
}
