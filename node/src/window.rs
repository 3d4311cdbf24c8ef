//! The maintenance window: a device downloads and verifies at any time, but installs
//! only inside its window, a daily span of UTC time (`02:00-04:30`; a span that ends
//! before it starts runs over midnight, `22:00-02:00`). Set with `shoal-node init
//! --install-window`, kept in `node.json` as `install_window`.

use std::fmt;
use std::time::Duration;

const DAY: u64 = 86_400;

/// A daily window, in seconds after UTC midnight; `start != end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: u64,
    end: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "install window '{0}': expected HH:MM-HH:MM in UTC with different start and end, e.g. 02:00-04:30"
)]
pub struct WindowError(String);

fn minutes(text: &str) -> Option<u64> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && text.trim().len() == 5).then_some(h * 60 + m)
}

impl Window {
    pub fn parse(text: &str) -> Result<Window, WindowError> {
        let bad = || WindowError(text.to_string());
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
        if start == end {
            return Err(bad());
        }
        Ok(Window {
            start: start * 60,
            end: end * 60,
        })
    }

    /// How long until the window opens, at unix time `now`; `None` inside it.
    pub fn wait(&self, now: u64) -> Option<Duration> {
        let t = now % DAY;
        let inside = if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        };
        if inside {
            None
        } else {
            Some(Duration::from_secs((self.start + DAY - t) % DAY))
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |s: u64| format!("{:02}:{:02}", s / 3600, s % 3600 / 60);
        write!(f, "{}-{} UTC", hm(self.start), hm(self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            Window::parse("02:00-04:30").unwrap().to_string(),
            "02:00-04:30 UTC"
        );
        for bad in [
            "",
            "2-4",
            "02:00",
            "25:00-01:00",
            "02:00-02:00",
            "02:60-03:00",
            "2:00-04:00",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn waits_until_the_window_opens() {
        let w = Window::parse("02:00-04:00").unwrap();
        let day = 20_000 * DAY;
        assert_eq!(w.wait(day + 3 * H), None);
        assert_eq!(w.wait(day + 2 * H), None, "the start is inside");
        assert_eq!(
            w.wait(day + 4 * H),
            Some(Duration::from_secs(22 * H)),
            "the end is not"
        );
        assert_eq!(w.wait(day + H), Some(Duration::from_secs(H)));
    }

    #[test]
    fn a_window_over_midnight() {
        let w = Window::parse("22:00-02:00").unwrap();
        let day = 20_000 * DAY;
        assert_eq!(w.wait(day + 23 * H), None);
        assert_eq!(w.wait(day + H), None);
        assert_eq!(w.wait(day + 12 * H), Some(Duration::from_secs(10 * H)));
    }
}
