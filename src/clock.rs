//! Time, injectable: the engine asks a [`Clock`] instead of the system so
//! tests can fix it. Also the UTC formatting dcsync uses in names and logs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of "now".
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stays where it is set (tests).
#[derive(Debug)]
pub struct FixedClock(pub std::sync::Mutex<SystemTime>);

impl FixedClock {
    pub fn at_unix(secs: u64) -> FixedClock {
        FixedClock::at(UNIX_EPOCH + Duration::from_secs(secs))
    }

    pub fn at(t: SystemTime) -> FixedClock {
        FixedClock(std::sync::Mutex::new(t))
    }

    /// Moves the clock on by `d` (a simulation's time passing).
    pub fn advance(&self, d: Duration) {
        if let Ok(mut g) = self.0.lock() {
            *g += d;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0.lock().map(|g| *g).unwrap_or(UNIX_EPOCH)
    }
}

/// Splits a time into UTC (year, month, day, hour, minute, second).
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// Whole seconds since the Unix epoch (0 before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Nanoseconds since the Unix epoch (0 before it), as file mtimes count.
pub fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// `2024-09-19 04:48:19` (UTC), for the state database and status output.
pub fn datetime(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `2024-09-19 044819` (UTC), for conflicted-copy names.
pub fn conflict_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}{mi:02}{s:02}")
}

/// `20240919-044819` (UTC), for trash folder names.
pub fn compact_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_726_721_299);
        assert_eq!(datetime(t), "2024-09-19 04:48:19");
        assert_eq!(conflict_stamp(t), "2024-09-19 044819");
        assert_eq!(compact_stamp(t), "20240919-044819");
        assert_eq!(datetime(UNIX_EPOCH), "1970-01-01 00:00:00");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(datetime(leap), "2000-02-29 00:00:00");
    }
}
