//! Bandwidth limits: rclone's `--bwlimit` syntax (one rate, `UP:DOWN`, or
//! a timetable by time of day and weekday) and the byte pacer that every
//! transfer of one [`Client`](super::Client) shares, so a daemon's pairs and
//! parallel transfers stay under one limit together.
//!
//! Owns: parsing and checking the syntax, which rate applies at a local
//! time (a pure lookup, tested from data), changing the limit at run time
//! (`dcsync bwlimit`, through the control socket), and delaying bytes.
//! Must never: hold or copy a transfer's bytes (it only makes them wait),
//! or read the clock inside the schedule lookup.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// Bytes per second each way; `None`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rate {
    pub up: Option<NonZeroU64>,
    pub down: Option<NonZeroU64>,
}

impl Rate {
    fn get(&self, dir: Direction) -> Option<NonZeroU64> {
        match dir {
            Direction::Up => self.up,
            Direction::Down => self.down,
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one = |r: Option<NonZeroU64>| match r {
            None => "off".to_owned(),
            Some(b) => format!("{}/s", human(b.get())),
        };
        if self.up == self.down {
            write!(f, "{}", one(self.up))
        } else {
            write!(f, "up {}, down {}", one(self.up), one(self.down))
        }
    }
}

fn human(b: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, size) in UNITS {
        if b >= size {
            let v = b as f64 / size as f64;
            return if v.fract() == 0.0 {
                format!("{v:.0} {name}")
            } else {
                format!("{v:.1} {name}")
            };
        }
    }
    format!("{b} B")
}

/// Minutes in a week; a schedule slot starts at a minute of the week
/// (Monday 00:00 is 0).
const WEEK: u32 = 7 * 24 * 60;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A bandwidth limit as configured: one rate, or a weekly timetable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    /// Sorted by start; never empty. A rate holds from its start until the
    /// next one (the last wraps around the week).
    slots: Vec<(u32, Rate)>,
}

impl Schedule {
    /// No limit.
    pub fn off() -> Schedule {
        Schedule {
            text: "off".into(),
            slots: vec![(0, Rate::default())],
        }
    }

    /// Parses rclone's syntax: `"10M"`, `"off"`, `"4M:1M"` (upload:download)
    /// or a timetable of `[Day-]HH:MM,RATE` entries separated by spaces,
    /// e.g. `"08:00,512k 19:00,10M Sat-00:00,off"`. A bare number is KiB/s;
    /// suffixes `B`, `K`, `M`, `G` (powers of 1024). An entry without a day
    /// applies every day. The error says what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let tokens: Vec<&str> = text.split_whitespace().collect();
        if tokens.is_empty() {
            return Err(
                "bwlimit is empty; write e.g. \"10M\", \"off\" or \"08:00,512k 19:00,off\"".into(),
            );
        }
        if tokens.len() == 1 && !tokens[0].contains(',') {
            if parse_time(tokens[0]).is_ok() {
                return Err(format!(
                    "bwlimit {text:?} is a time without a rate; write e.g. \"{text},512k\""
                ));
            }
            return Ok(Schedule {
                text: text.to_owned(),
                slots: vec![(0, parse_rate(tokens[0])?)],
            });
        }
        let mut slots: Vec<(u32, Rate)> = Vec::new();
        for t in tokens {
            let (when, rate) = t.split_once(',').ok_or_else(|| {
                format!("bwlimit entry {t:?} needs a time and a rate, e.g. \"08:00,512k\" or \"Sat-10:00,off\"")
            })?;
            let rate = parse_rate(rate)?;
            let (day, time) = match when.split_once('-') {
                Some((d, time)) => (Some(parse_day(d)?), time),
                None => (None, when),
            };
            let minute = parse_time(time)?;
            let days: Vec<u32> = match day {
                Some(d) => vec![d],
                None => (0..7).collect(),
            };
            for d in days {
                let at = d * 24 * 60 + minute;
                // A weekday entry wins over an every-day one at the same
                // minute; two entries for one moment are a mistake.
                match slots.iter_mut().find(|(s, _)| *s == at) {
                    Some(slot) if day.is_some() => slot.1 = rate,
                    Some(_) => {}
                    None => slots.push((at, rate)),
                }
            }
        }
        slots.sort_by_key(|(at, _)| *at);
        Ok(Schedule {
            text: text.to_owned(),
            slots,
        })
    }

    /// The rate at `minute` of the week (Monday 00:00 is 0, local time).
    pub fn rate_at(&self, minute: u32) -> Rate {
        let minute = minute % WEEK;
        let idx = self.slots.partition_point(|(at, _)| *at <= minute);
        // Before the week's first entry: the last one still holds.
        let (_, rate) = if idx == 0 {
            self.slots.last()
        } else {
            self.slots.get(idx - 1)
        }
        .copied()
        .unwrap_or_default();
        rate
    }

    /// As written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether some rate of it is a limit (not all "off").
    pub fn limits(&self) -> bool {
        self.slots
            .iter()
            .any(|(_, r)| r.up.is_some() || r.down.is_some())
    }

    /// Whether the rate changes with time.
    pub fn is_timetable(&self) -> bool {
        self.slots.windows(2).any(|w| w[0].1 != w[1].1)
    }
}

fn parse_day(d: &str) -> Result<u32, String> {
    let l = d.to_ascii_lowercase();
    DAYS.iter()
        .position(|p| l.len() >= 3 && (l == *p || (l.starts_with(p) && is_full_day(&l))))
        .map(|i| i as u32)
        .ok_or_else(|| {
            format!("bwlimit: {d:?} is not a weekday; write Mon, Tue, Wed, Thu, Fri, Sat or Sun")
        })
}

fn is_full_day(l: &str) -> bool {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .contains(&l)
}

fn parse_time(t: &str) -> Result<u32, String> {
    let bad = || format!("bwlimit: {t:?} is not a time of day; write HH:MM, e.g. 08:00 or 23:30");
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 || t.len() != 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// `"512k"`, `"10M"`, `"off"`, `"4M:1M"` (upload:download).
fn parse_rate(r: &str) -> Result<Rate, String> {
    match r.split_once(':') {
        Some((up, down)) => Ok(Rate {
            up: parse_one(up)?,
            down: parse_one(down)?,
        }),
        None => {
            let both = parse_one(r)?;
            Ok(Rate {
                up: both,
                down: both,
            })
        }
    }
}

fn parse_one(r: &str) -> Result<Option<NonZeroU64>, String> {
    let v = r.trim();
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "bwlimit: {r:?} is not a rate; write e.g. \"512k\", \"10M\", \"1.5M\" or \"off\" (a bare number is KiB/s)"
        )
    };
    let (num, mult) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: f64 = match c.to_ascii_uppercase() {
                'B' => 1.0,
                'K' => 1024.0,
                'M' => 1024.0 * 1024.0,
                'G' => 1024.0 * 1024.0 * 1024.0,
                _ => return Err(bad()),
            };
            (&v[..i], mult)
        }
        _ => (v, 1024.0),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(n.is_finite() && n >= 0.0) {
        return Err(bad());
    }
    let bytes = (n * mult).round();
    if bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    // 0 is "off", as in rclone.
    Ok(NonZeroU64::new(bytes as u64))
}

/// The minute of the week of `t` in the system's time zone (Monday 00:00
/// is 0); UTC when the zone cannot be read.
pub fn minute_of_week(t: SystemTime) -> u32 {
    let Ok(ts) = jiff::Timestamp::try_from(t) else {
        return 0;
    };
    let z = ts.to_zoned(jiff::tz::TimeZone::system());
    let day = u32::from(z.weekday().to_monday_zero_offset().unsigned_abs());
    let hour = u32::from(z.hour().unsigned_abs());
    let minute = u32::from(z.minute().unsigned_abs());
    day * 24 * 60 + hour * 60 + minute
}

/// How often the timetable is looked at again during transfers.
const RECHECK: Duration = Duration::from_secs(1);

/// The pacer all transfers of one client share. See the module docs.
pub struct Bandwidth {
    configured: Schedule,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Set at run time (`dcsync bwlimit`), until reset.
    overridden: Option<Schedule>,
    rate: Rate,
    up: Option<Pacer>,
    down: Option<Pacer>,
    checked: Option<Instant>,
}

#[derive(Clone)]
struct Pacer {
    limiter: Arc<DefaultDirectRateLimiter>,
    /// The most bytes one wait may ask for (the bucket's size).
    burst: u32,
}

impl Pacer {
    fn new(rate: NonZeroU64) -> Pacer {
        let per_sec = u32::try_from(rate.get()).unwrap_or(u32::MAX);
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        // An eighth of a second's worth, at least 1 KiB and at most 1 MiB:
        // small enough that a limit holds over a few seconds, big enough
        // that a fast limit does not wake the task for every chunk.
        let burst = (per_sec.get() / 8).clamp(1024, 1 << 20);
        let burst_nz = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Pacer {
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_second(per_sec).allow_burst(burst_nz),
            )),
            burst,
        }
    }
}

impl std::fmt::Debug for Bandwidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bandwidth")
            .field("configured", &self.configured.text)
            .finish()
    }
}

impl Default for Bandwidth {
    fn default() -> Self {
        Bandwidth::new(Schedule::off())
    }
}

impl Bandwidth {
    pub fn new(configured: Schedule) -> Bandwidth {
        Bandwidth {
            configured,
            state: Mutex::new(State::default()),
        }
    }

    /// Replaces the configured limit until `None` restores it.
    pub fn set_override(&self, schedule: Option<Schedule>) {
        if let Ok(mut s) = self.state.lock() {
            s.overridden = schedule;
            s.checked = None; // looked at again by the next transfer
        }
        tracing::info!(limit = %self.describe_now(), "bandwidth limit changed");
    }

    /// The schedule in force (the override, else the configured one) and
    /// whether it was set at run time.
    pub fn schedule(&self) -> (Schedule, bool) {
        match self.state.lock().ok().and_then(|s| s.overridden.clone()) {
            Some(o) => (o, true),
            None => (self.configured.clone(), false),
        }
    }

    /// "10 MiB/s", "up 512 KiB/s, down off (timetable ...)", for status.
    pub fn describe_now(&self) -> String {
        let (s, overridden) = self.schedule();
        let rate = s.rate_at(minute_of_week(SystemTime::now()));
        let mut out = rate.to_string();
        if s.is_timetable() {
            out.push_str(&format!(" now (timetable \"{}\")", s.text()));
        }
        if overridden {
            out.push_str(", set by `dcsync bwlimit`");
        }
        out
    }

    fn pacer(&self, dir: Direction) -> Option<Pacer> {
        let mut s = self.state.lock().ok()?;
        let now = Instant::now();
        if s.checked.is_none_or(|t| now.duration_since(t) >= RECHECK) {
            s.checked = Some(now);
            let schedule = s.overridden.as_ref().unwrap_or(&self.configured);
            let rate = if schedule.limits() {
                schedule.rate_at(minute_of_week(SystemTime::now()))
            } else {
                Rate::default()
            };
            if rate != s.rate {
                s.rate = rate;
                s.up = rate.up.map(Pacer::new);
                s.down = rate.down.map(Pacer::new);
            }
        }
        match dir {
            Direction::Up => s.up.clone(),
            Direction::Down => s.down.clone(),
        }
    }

    /// Waits until `bytes` more may go `dir` under the limit in force (at
    /// once when there is none).
    pub async fn pace(&self, dir: Direction, bytes: usize) {
        let Some(p) = self.pacer(dir) else { return };
        let mut left = bytes as u64;
        while left > 0 {
            let piece = left.min(u64::from(p.burst)) as u32;
            left -= u64::from(piece);
            if let Some(n) = NonZeroU32::new(piece) {
                // A piece never exceeds the bucket, so this cannot refuse;
                // were it to, the bytes go unpaced rather than stuck.
                let _ = p.limiter.until_n_ready(n).await;
            }
        }
    }

    /// The rate now, one way (for tests and status).
    pub fn rate_now(&self, dir: Direction) -> Option<NonZeroU64> {
        let (s, _) = self.schedule();
        s.rate_at(minute_of_week(SystemTime::now())).get(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u64) -> Option<NonZeroU64> {
        NonZeroU64::new(n)
    }

    fn at(day: u32, h: u32, m: u32) -> u32 {
        day * 24 * 60 + h * 60 + m
    }

    #[test]
    fn single_rates_in_rclone_units() {
        let r = |s: &str| Schedule::parse(s).unwrap().rate_at(0);
        assert_eq!(r("10M").up, nz(10 << 20));
        assert_eq!(r("512k").down, nz(512 << 10));
        assert_eq!(r("512").up, nz(512 << 10), "a bare number is KiB/s");
        assert_eq!(r("100B").up, nz(100));
        assert_eq!(r("1.5M").up, nz(3 << 19));
        assert_eq!(r("off"), Rate::default());
        assert_eq!(r("0"), Rate::default(), "0 is off");
        let split = r("4M:off");
        assert_eq!((split.up, split.down), (nz(4 << 20), None));
        assert!(!Schedule::parse("off").unwrap().limits());
        assert!(Schedule::parse("1M").unwrap().limits());
    }

    #[test]
    fn a_daily_timetable_holds_each_rate_until_the_next_and_wraps_around() {
        let s = Schedule::parse("08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off").unwrap();
        assert!(s.is_timetable());
        for day in 0..7 {
            assert_eq!(
                s.rate_at(at(day, 7, 59)).up,
                None,
                "23:00 off holds overnight"
            );
            assert_eq!(s.rate_at(at(day, 8, 0)).up, nz(512 << 10));
            assert_eq!(s.rate_at(at(day, 12, 30)).up, nz(10 << 20));
            assert_eq!(s.rate_at(at(day, 22, 59)).up, nz(30 << 20));
            assert_eq!(s.rate_at(at(day, 23, 0)).up, None);
        }
        // Monday 00:00 comes after Sunday 23:00.
        assert_eq!(s.rate_at(0).up, None);
    }

    #[test]
    fn a_weekly_timetable_and_weekday_entries_over_daily_ones() {
        let s = Schedule::parse("Mon-00:00,512 Fri-23:59,10M Sat-10:00,1M Sun-20:00,off").unwrap();
        assert_eq!(s.rate_at(at(0, 0, 0)).up, nz(512 << 10));
        assert_eq!(s.rate_at(at(3, 12, 0)).up, nz(512 << 10), "Thursday");
        assert_eq!(s.rate_at(at(4, 23, 59)).up, nz(10 << 20));
        assert_eq!(s.rate_at(at(5, 9, 59)).up, nz(10 << 20));
        assert_eq!(s.rate_at(at(5, 10, 0)).up, nz(1 << 20));
        assert_eq!(s.rate_at(at(6, 20, 0)).up, None);
        let mixed = Schedule::parse("08:00,1M Sat-08:00,off 18:00,off").unwrap();
        assert_eq!(mixed.rate_at(at(2, 9, 0)).up, nz(1 << 20), "Wednesday");
        assert_eq!(
            mixed.rate_at(at(5, 9, 0)).up,
            None,
            "Saturday's own entry wins"
        );
        let full = Schedule::parse("saturday-10:00,1M sunday-10:00,off").unwrap();
        assert_eq!(full.rate_at(at(5, 11, 0)).up, nz(1 << 20));
    }

    #[test]
    fn mistakes_are_refused_with_how_to_write_it() {
        for bad in [
            "",
            "fast",
            "10X",
            "-1M",
            "25:00,1M",
            "8:00,1M",
            "08:00",
            "Moo-08:00,1M",
            "08:00,1M 09:00,slow",
        ] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.contains("write"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn rates_read_as_people_write_them() {
        let r = |s: &str| Schedule::parse(s).unwrap().rate_at(0).to_string();
        assert_eq!(r("2M"), "2 MiB/s");
        assert_eq!(r("1.5M"), "1.5 MiB/s");
        assert_eq!(r("512k:off"), "up 512 KiB/s, down off");
        assert_eq!(r("off"), "off");
    }

    #[tokio::test]
    async fn the_pacer_holds_bytes_to_the_rate_and_lets_everything_through_when_off() {
        let bw = Bandwidth::new(Schedule::parse("256k:off").unwrap());
        // Unlimited downloads: no wait at all.
        let t = Instant::now();
        bw.pace(Direction::Down, 64 << 20).await;
        assert!(t.elapsed() < Duration::from_millis(200));
        // 768 KiB up at 256 KiB/s: the first 32 KiB burst goes at once,
        // the rest takes about 2.9 s, never less.
        let t = Instant::now();
        for _ in 0..12 {
            bw.pace(Direction::Up, 64 << 10).await;
        }
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(2800), "{took:?}");
        assert!(took < Duration::from_secs(6), "{took:?}");
    }

    #[tokio::test]
    async fn a_limit_set_at_run_time_applies_and_resets() {
        let bw = Bandwidth::new(Schedule::off());
        assert_eq!(bw.rate_now(Direction::Up), None);
        bw.set_override(Some(Schedule::parse("128k").unwrap()));
        assert_eq!(bw.rate_now(Direction::Up), nz(128 << 10));
        let t = Instant::now();
        bw.pace(Direction::Up, 16 << 10).await; // the burst
        bw.pace(Direction::Up, 64 << 10).await;
        assert!(
            t.elapsed() >= Duration::from_millis(450),
            "{:?}",
            t.elapsed()
        );
        assert!(bw.describe_now().contains("dcsync bwlimit"));
        bw.set_override(None);
        assert_eq!(bw.rate_now(Direction::Up), None);
        let t = Instant::now();
        bw.pace(Direction::Up, 64 << 20).await;
        assert!(t.elapsed() < Duration::from_millis(200));
    }
}
