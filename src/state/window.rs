//! Counter windows: calendar-aligned UTC windows and rolling windows.

use std::fmt;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalendarUnit {
    Minute,
    Hour,
    Day,
}

impl CalendarUnit {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "minute" => Some(CalendarUnit::Minute),
            "hour" => Some(CalendarUnit::Hour),
            "day" => Some(CalendarUnit::Day),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CalendarUnit::Minute => "minute",
            CalendarUnit::Hour => "hour",
            CalendarUnit::Day => "day",
        }
    }

    pub fn millis(self) -> Millis {
        match self {
            CalendarUnit::Minute => 60_000,
            CalendarUnit::Hour => 3_600_000,
            CalendarUnit::Day => 86_400_000,
        }
    }
}

/// How a counter forgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// Resets at each UTC minute, hour or day boundary (`5/hour`, `window: hour`).
    Calendar(CalendarUnit),
    /// Counts what happened in the last N seconds (`{max: 30, window: 60}`): never more
    /// than the limit in any span of that length.
    Rolling { seconds: u64 },
}

impl Window {
    pub fn millis(self) -> Millis {
        match self {
            Window::Calendar(unit) => unit.millis(),
            Window::Rolling { seconds } => (seconds as Millis).saturating_mul(1000),
        }
    }

    /// Start of the calendar window holding `now` (UTC; Unix time has no leap seconds).
    pub fn calendar_start(unit: CalendarUnit, now: Millis) -> Millis {
        now.div_euclid(unit.millis()) * unit.millis()
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Calendar(unit) => f.write_str(unit.as_str()),
            Window::Rolling { seconds } => write!(f, "{seconds}s rolling"),
        }
    }
}

/// Whole seconds, rounded up, from `now` until `at` (at least 1 when `at` is in the future).
pub fn seconds_until(now: Millis, at: Millis) -> u64 {
    if at <= now {
        0
    } else {
        ((at - now) as u64).div_ceil(1000)
    }
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_windows_align_to_utc_boundaries() {
        // 2026-11-24T19:41:37.250Z
        let t = 1_795_635_697_250;
        assert_eq!(Window::calendar_start(CalendarUnit::Minute, t) % 60_000, 0);
        assert_eq!(t - Window::calendar_start(CalendarUnit::Minute, t), 37_250);
        assert_eq!(Window::calendar_start(CalendarUnit::Hour, t) % 3_600_000, 0);
        assert_eq!(Window::calendar_start(CalendarUnit::Day, t) % 86_400_000, 0);
        assert!(t - Window::calendar_start(CalendarUnit::Day, t) < 86_400_000);
    }

    #[test]
    fn seconds_until_rounds_up() {
        assert_eq!(seconds_until(0, 1), 1);
        assert_eq!(seconds_until(0, 1000), 1);
        assert_eq!(seconds_until(0, 1001), 2);
        assert_eq!(seconds_until(5, 5), 0);
    }
}
