//! The configuration file (TOML) and credentials from the environment.
//!
//! Owns: where the config lives by default, parsing and validating it,
//! `DCSYNC_KEY1`/`DCSYNC_KEY2`/`DCSYNC_PASSWORD` overrides, and writing a new
//! config with owner-only permissions. It never logs a secret and never
//! touches the network or the sync folders.

use crate::api::{Credentials, Secret};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Problems with the configuration; all are the user's to fix (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config file at {}; create one with `dcsync init` or pass --config FILE",
        .0.display()
    )]
    Missing(PathBuf),
    #[error("cannot read config {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {} is not valid: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("config {}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write config {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("no config directory is known on this platform; pass --config FILE")]
    NoDefaultLocation,
}

/// The file as written by the user. Unknown keys are refused (typos).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the host's API, e.g. `https://disccloud.com/api/v2/`.
    pub api_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The local folder to keep in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_path: Option<PathBuf>,
    /// The remote folder (a `/`-separated path from the account root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_path: Option<String>,
    /// Where the state database and shared token live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// Concurrent transfers (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfers: Option<usize>,
    /// API request-rate bound (default 25 per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_second: Option<f64>,
    /// `two-way` (default), `upload-only` or `download-only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::plan::Mode>,
    /// In one-way modes, carry deletions over (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_deletes: Option<bool>,
    /// A pass deleting more than this share of tracked files stops (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delete_percent: Option<u32>,
    /// A pass deleting more than this many tracked files stops (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delete_count: Option<u64>,
    /// How often the daemon looks for remote changes (`"60s"`, `"5m"`; default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<String>,
    /// Listings per minute the daemon spends on looking for remote changes
    /// (default 120); see `daemon::sweep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_budget: Option<u32>,
    /// How often the daemon runs a full pass even without any event (default `"1h"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_rescan_interval: Option<String>,
    /// The daemon runs this (through `sh -c`, a short JSON on stdin) when
    /// a pair enters an error or paused state, stops for a mass delete, or
    /// keeps a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_command: Option<String>,
    /// How long the local trash (`.dcsync/trash/`) keeps what was deleted
    /// (`"30d"`, `"12h"`; default 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trash_retention: Option<String>,
    /// Largest total size of the local trash per pair (`"5G"`, `"500M"`,
    /// bytes); the oldest deletions go first. Default: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trash_max_size: Option<String>,
    /// Bandwidth limit for file transfers, shared by all of them, in
    /// rclone's syntax: `"10M"`, `"4M:1M"` (upload:download), `"off"`, or a
    /// timetable in local time, `"08:00,512k 19:00,10M Sat-00:00,off"`.
    /// Default: no limit. Changed at run time with `dcsync bwlimit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bwlimit: Option<String>,
    /// Where the daemon serves its web console and `/metrics`
    /// (`"127.0.0.1:8385"`). Default: no console. A non-loopback address
    /// needs `web_allow_remote = true`; `dcsync web` prints the login URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_listen: Option<String>,
    /// Allow a `web_listen` address other machines can reach (the token is
    /// still needed). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub web_allow_remote: bool,
    /// Serve `/metrics` without the token (loopback `web_listen` only), for
    /// a local Prometheus. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metrics_without_token: bool,
    /// How long one API answer may take before it counts as lost
    /// (`"60s"`, `"5m"`; default 60 s). Raise it for a slow host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<String>,
    /// Allow `http://` (no TLS) for a host that is not on this machine
    /// (default false: keys would travel in clear text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
    /// More sync pairs (`[[pair]]` tables). The top-level `local_path` /
    /// `remote_path` form one pair too.
    #[serde(default, rename = "pair", skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<PairConfig>,
    /// Which secrets came from the environment (for messages that name
    /// what to fix), and the file this was read from.
    #[serde(skip)]
    pub origin: Origin,
}

/// Where a loaded config's secrets came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub file: Option<PathBuf>,
    pub key1_from_env: bool,
    pub key2_from_env: bool,
    pub password_from_env: bool,
}

/// One sync pair in a `[[pair]]` table. Unset values come from the top level.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConfig {
    /// A short name for logs and `dcsync pause NAME` (default: the local folder name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub local_path: PathBuf,
    pub remote_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::plan::Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_deletes: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfers: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delete_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delete_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_budget: Option<u32>,
}

/// Parses a config duration such as `"60s"`, `"5m"`, `"1h30m"`, `"500ms"`.
pub fn parse_duration(key: &str, value: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        format!("{key} = {value:?} is not a duration ({e}); write e.g. \"60s\", \"5m\" or \"1h\"")
    })
}

/// A size like `"5G"`, `"500M"`, `"64K"` or plain bytes (powers of 1024).
pub fn parse_size(key: &str, value: &str) -> Result<u64, String> {
    let v = value.trim();
    let (num, mult) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => 0,
            };
            (&v[..i], mult)
        }
        _ => (v, 1),
    };
    match (num.trim().parse::<u64>(), mult) {
        (Ok(n), m) if m > 0 => n
            .checked_mul(m)
            .ok_or_else(|| format!("{key} = {value:?} is too large")),
        _ => Err(format!(
            "{key} = {value:?} is not a size; write e.g. \"5G\", \"500M\" or a number of bytes"
        )),
    }
}

/// Defaults of the daemon settings.
pub const DEFAULT_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
pub const DEFAULT_FULL_RESCAN: std::time::Duration = std::time::Duration::from_secs(3600);

/// Defaults of the engine settings.
pub const DEFAULT_TRANSFERS: usize = 4;
pub const DEFAULT_MAX_RPS: f64 = 25.0;
pub const DEFAULT_MAX_DELETE_PERCENT: u32 = 50;
pub const DEFAULT_MAX_DELETE_COUNT: u64 = 1000;

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |o: &Option<String>| o.as_ref().map(|_| "***");
        f.debug_struct("Config")
            .field("api_url", &self.api_url)
            .field("key1", &hide(&self.key1))
            .field("key2", &hide(&self.key2))
            .field("username", &self.username)
            .field("password", &hide(&self.password))
            .field("local_path", &self.local_path)
            .field("remote_path", &self.remote_path)
            .field("state_dir", &self.state_dir)
            .field("transfers", &self.transfers)
            .field("max_requests_per_second", &self.max_requests_per_second)
            .field("mode", &self.mode)
            .field("propagate_deletes", &self.propagate_deletes)
            .field("max_delete_percent", &self.max_delete_percent)
            .field("max_delete_count", &self.max_delete_count)
            .field("poll_interval", &self.poll_interval)
            .field("poll_budget", &self.poll_budget)
            .field("full_rescan_interval", &self.full_rescan_interval)
            .field("pairs", &self.pairs)
            .finish()
    }
}

/// Values taken from the environment instead of the file.
#[derive(Debug, Default, Clone)]
pub struct EnvOverrides {
    pub key1: Option<String>,
    pub key2: Option<String>,
    pub password: Option<String>,
}

impl EnvOverrides {
    /// Reads `DCSYNC_KEY1`, `DCSYNC_KEY2` and `DCSYNC_PASSWORD`.
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        EnvOverrides {
            key1: get("DCSYNC_KEY1"),
            key2: get("DCSYNC_KEY2"),
            password: get("DCSYNC_PASSWORD"),
        }
    }
}

/// The default config path: `<platform config dir>/dcsync/config.toml`.
pub fn default_path() -> Result<PathBuf, ConfigError> {
    directories::ProjectDirs::from("", "", "dcsync")
        .map(|d| d.config_dir().join("config.toml"))
        .ok_or(ConfigError::NoDefaultLocation)
}

/// The default directory for state (database, shared token).
pub fn default_state_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "dcsync").map(|d| d.data_dir().to_path_buf())
}

/// How long one API answer may take unless `request_timeout` says.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `p` with a leading `~` (alone or followed by `/`) replaced by `home`,
/// and made absolute against `base` when relative.
pub fn resolve_path(p: &Path, base: &Path, home: Option<&Path>) -> PathBuf {
    let mut comps = p.components();
    let expanded = match (comps.next(), home) {
        (Some(std::path::Component::Normal(first)), Some(home)) if first == "~" => {
            home.join(comps.as_path())
        }
        _ => p.to_path_buf(),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    }
}

impl Config {
    /// The web console's settings (`None`: no `web_listen`). `socket`: the
    /// daemon's control socket, beside which the console's token lives.
    pub fn web_settings(&self, socket: &Path) -> Result<Option<crate::web::WebSettings>, String> {
        let Some(listen) = &self.web_listen else {
            return Ok(None);
        };
        let listen = listen.trim().parse().map_err(|_| {
            format!(
                "web_listen must be an address and port like \"127.0.0.1:8385\", not {listen:?}"
            )
        })?;
        Ok(Some(crate::web::WebSettings {
            listen,
            allow_remote: self.web_allow_remote,
            metrics_without_token: self.metrics_without_token,
            token_file: crate::web::token_path(socket),
        }))
    }
    /// Reads and validates a config file, applying environment overrides.
    pub fn load(path: &Path, env: &EnvOverrides) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing(path.to_path_buf()));
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if env.key1.is_some() {
            cfg.key1 = env.key1.clone();
        }
        if env.key2.is_some() {
            cfg.key2 = env.key2.clone();
        }
        if env.password.is_some() {
            cfg.password = env.password.clone();
        }
        cfg.origin = Origin {
            file: Some(path.to_path_buf()),
            key1_from_env: env.key1.is_some(),
            key2_from_env: env.key2.is_some(),
            password_from_env: env.password.is_some(),
        };
        cfg.validate(path)?;
        cfg.resolve_paths(path);
        warn_if_readable_by_others(path, &cfg);
        Ok(cfg)
    }

    /// Local paths as the user means them: `~` and `~/...` are the home
    /// folder, a relative path is relative to the config file's folder
    /// (not to wherever a command happens to run).
    fn resolve_paths(&mut self, config_path: &Path) {
        let base = match config_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) if d.is_absolute() => d.to_path_buf(),
            Some(d) => std::env::current_dir()
                .map(|c| c.join(d))
                .unwrap_or_default(),
            None => std::env::current_dir().unwrap_or_default(),
        };
        let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
        let fix = |p: &mut PathBuf| *p = resolve_path(p, &base, home.as_deref());
        if let Some(p) = &mut self.local_path {
            fix(p);
        }
        if let Some(p) = &mut self.state_dir {
            fix(p);
        }
        for pair in &mut self.pairs {
            fix(&mut pair.local_path);
        }
    }

    /// Checks the settings as [`Config::load`] does (for a config about to
    /// be written).
    pub fn check(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate(path)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let url = self.api_url.trim();
        if url.is_empty() {
            return Err(invalid("api_url is empty; set it to the host's API base, e.g. \"https://disccloud.com/api/v2/\"".into()));
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid(format!(
                "api_url {url:?} must start with https:// (or http:// for a local emulator)"
            )));
        }
        if self.insecure_http() && self.allow_insecure_http != Some(true) {
            return Err(invalid(format!(
                "api_url {url:?} uses http:// for a host that is not on this machine: keys and files \
                 would travel unencrypted. Use https://, or set allow_insecure_http = true if you \
                 really mean it"
            )));
        }
        if let Some(t) = &self.request_timeout {
            parse_duration("request_timeout", t).map_err(invalid)?;
        }
        if let Some(t) = &self.trash_retention {
            parse_duration("trash_retention", t).map_err(invalid)?;
        }
        if let Some(t) = &self.trash_max_size {
            parse_size("trash_max_size", t).map_err(invalid)?;
        }
        if let Some(b) = &self.bwlimit {
            crate::api::bwlimit::Schedule::parse(b).map_err(invalid)?;
        }
        if let Some(w) = self.web_settings(Path::new("")).map_err(invalid)? {
            w.check().map_err(|e| invalid(e.to_string()))?;
        }
        if self.transfers == Some(0) {
            return Err(invalid("transfers must be at least 1".into()));
        }
        if let Some(r) = self.max_requests_per_second
            && !(r.is_finite() && r > 0.0)
        {
            return Err(invalid(format!(
                "max_requests_per_second must be a positive number, not {r}"
            )));
        }
        for (key, v) in [
            ("poll_interval", &self.poll_interval),
            ("full_rescan_interval", &self.full_rescan_interval),
        ] {
            if let Some(v) = v {
                parse_duration(key, v).map_err(invalid)?;
            }
        }
        for (i, p) in self.pairs.iter().enumerate() {
            if let Some(v) = &p.poll_interval {
                parse_duration(&format!("pair {} poll_interval", i + 1), v).map_err(invalid)?;
            }
        }
        if self
            .pairs
            .iter()
            .map(|p| p.poll_budget)
            .chain([self.poll_budget])
            .any(|b| b == Some(0))
        {
            return Err(invalid(
                "poll_budget must be at least 1 (listings per minute spent on looking for remote changes)".into(),
            ));
        }
        if self.max_delete_percent.is_some_and(|p| p > 100) {
            return Err(invalid(
                "max_delete_percent is a percentage (0 to 100)".into(),
            ));
        }
        self.credentials_at(path).map(|_| ())
    }

    /// The credentials: keys if given, else username and password.
    /// Whether `api_url` is plain `http://` to a host other than this
    /// machine (loopback: `127.0.0.0/8`, `localhost`, `[::1]`).
    pub fn insecure_http(&self) -> bool {
        let Some(rest) = self.api_url.trim().strip_prefix("http://") else {
            return false;
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        !loopback
    }

    pub fn credentials(&self) -> Result<Credentials, ConfigError> {
        let file = self
            .origin
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from("the config"));
        self.credentials_at(&file)
    }

    fn credentials_at(&self, path: &Path) -> Result<Credentials, ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: message.to_owned(),
        };
        match (&self.key1, &self.key2, &self.username, &self.password) {
            (Some(k1), Some(k2), _, _) => {
                let name1 = if self.origin.key1_from_env {
                    "DCSYNC_KEY1 (from the environment, used instead of key1)"
                } else {
                    "key1"
                };
                let name2 = if self.origin.key2_from_env {
                    "DCSYNC_KEY2 (from the environment, used instead of key2)"
                } else {
                    "key2"
                };
                for (name, k) in [(name1, k1), (name2, k2)] {
                    if k.trim().len() != 64 {
                        return Err(ConfigError::Invalid {
                            path: path.to_path_buf(),
                            message: format!(
                                "{name} must be 64 characters long (it is {}); copy it again from the host's account settings",
                                k.trim().len()
                            ),
                        });
                    }
                }
                Ok(Credentials::Keys {
                    key1: Secret::new(k1.trim()),
                    key2: Secret::new(k2.trim()),
                })
            }
            (Some(_), None, _, _) | (None, Some(_), _, _) => Err(invalid(
                "only one of key1/key2 is set; set both (or DCSYNC_KEY1 and DCSYNC_KEY2)",
            )),
            (None, None, Some(u), Some(p)) => Ok(Credentials::Password {
                username: u.clone(),
                password: Secret::new(p.clone()),
            }),
            (None, None, Some(_), None) => Err(invalid(
                "username is set but password is not (set password or DCSYNC_PASSWORD)",
            )),
            _ => Err(invalid(
                "no credentials: set key1 and key2 (or DCSYNC_KEY1/DCSYNC_KEY2), or username and password",
            )),
        }
    }

    /// Writes the config with owner-only permissions; refuses to replace an
    /// existing file unless `force`.
    pub fn write_new(&self, path: &Path, force: bool) -> Result<(), ConfigError> {
        if path.exists() && !force {
            return Err(ConfigError::Exists(path.to_path_buf()));
        }
        let werr = |source| ConfigError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::api::auth::create_private_dir(dir).map_err(werr)?;
        }
        let text =
            toml::to_string_pretty(self).map_err(|e| werr(std::io::Error::other(e.to_string())))?;
        let body = format!(
            "# dcsync configuration. Keep this file private: it holds credentials.\n{text}"
        );
        let tmp = path.with_extension("toml.tmp");
        {
            use std::io::Write;
            let mut f = crate::api::auth::open_private(&tmp).map_err(werr)?;
            f.write_all(body.as_bytes()).map_err(werr)?;
            f.sync_all().map_err(werr)?;
        }
        std::fs::rename(&tmp, path).map_err(werr)
    }
}

fn warn_if_readable_by_others(path: &Path, cfg: &Config) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let has_secret = cfg.key1.is_some() || cfg.password.is_some();
        if let Ok(m) = std::fs::metadata(path)
            && has_secret
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "config holds credentials but is readable by other users; run: chmod 600 {}",
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, cfg);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("c.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn keys_from_file_or_env() {
        let d = tempfile::tempdir().unwrap();
        let k = "a".repeat(64);
        let p = write(
            d.path(),
            &format!("api_url = \"http://127.0.0.1:1/api/v2/\"\nkey1 = \"{k}\"\nkey2 = \"{k}\"\n"),
        );
        let c = Config::load(&p, &EnvOverrides::default()).unwrap();
        assert!(matches!(c.credentials().unwrap(), Credentials::Keys { .. }));

        let p = write(d.path(), "api_url = \"http://127.0.0.1:1/api/v2/\"\n");
        let err = Config::load(&p, &EnvOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("no credentials"), "{err}");
        let env = EnvOverrides {
            key1: Some(k.clone()),
            key2: Some(k),
            password: None,
        };
        assert!(Config::load(&p, &env).is_ok());
    }

    #[test]
    fn a_bad_key_from_the_environment_is_named_as_such() {
        let d = tempfile::tempdir().unwrap();
        let k = "a".repeat(64);
        let p = write(
            d.path(),
            &format!("api_url = \"http://127.0.0.1:1/api/v2/\"\nkey1 = \"{k}\"\nkey2 = \"{k}\"\n"),
        );
        let env = EnvOverrides {
            key1: Some("short".into()),
            key2: None,
            password: None,
        };
        let err = Config::load(&p, &env).unwrap_err().to_string();
        assert!(
            err.contains("DCSYNC_KEY1") && err.contains("c.toml"),
            "{err}"
        );
        assert!(!err.contains("(config)"), "{err}");
    }

    #[test]
    fn clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let err = Config::load(&d.path().join("nope.toml"), &EnvOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("dcsync init"), "{err}");
        let p = write(
            d.path(),
            "api_url = \"x\"\nkey1 = \"short\"\nkey2 = \"short\"\n",
        );
        let err = Config::load(&p, &EnvOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("https://"), "{err}");
        let p = write(
            d.path(),
            "api_url = \"https://h/api/v2/\"\nkey1 = \"short\"\nkey2 = \"short\"\n",
        );
        let err = Config::load(&p, &EnvOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("64 characters"), "{err}");
        let p = write(d.path(), "api_url = \"https://h/\"\nkey_1 = \"x\"\n");
        let err = Config::load(&p, &EnvOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("key_1"), "{err}");
    }

    #[test]
    fn a_zero_poll_budget_is_refused_top_level_or_per_pair() {
        let d = tempfile::tempdir().unwrap();
        let k = "a".repeat(64);
        let head =
            format!("api_url = \"http://127.0.0.1:1/api/v2/\"\nkey1 = \"{k}\"\nkey2 = \"{k}\"\n");
        let ok = write(d.path(), &format!("{head}poll_budget = 30\n"));
        assert_eq!(
            Config::load(&ok, &EnvOverrides::default())
                .unwrap()
                .poll_budget,
            Some(30)
        );
        for bad in [
            format!("{head}poll_budget = 0\n"),
            format!("{head}[[pair]]\nlocal_path = \"/a\"\nremote_path = \"/a\"\npoll_budget = 0\n"),
        ] {
            let p = write(d.path(), &bad);
            let err = Config::load(&p, &EnvOverrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("poll_budget must be at least 1"), "{err}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("k", "5G"), Ok(5 << 30));
        assert_eq!(parse_size("k", "500m"), Ok(500 << 20));
        assert_eq!(parse_size("k", " 1024 "), Ok(1024));
        assert!(parse_size("k", "5X").is_err());
        assert!(parse_size("k", "G").is_err());
        assert!(parse_size("k", "99999999999T").is_err());
    }

    #[test]
    fn local_paths_mean_what_the_user_means() {
        let base = Path::new("/etc/dcsync");
        let home = Some(Path::new("/home/me"));
        let r = |p: &str| resolve_path(Path::new(p), base, home);
        assert_eq!(r("~/Docs"), Path::new("/home/me/Docs"));
        assert_eq!(r("~"), Path::new("/home/me"));
        assert_eq!(r("Docs"), Path::new("/etc/dcsync/Docs"));
        assert_eq!(r("./a/../b"), Path::new("/etc/dcsync/./a/../b"));
        assert_eq!(r("/srv/x"), Path::new("/srv/x"));
        assert_eq!(
            r("~user/x"),
            Path::new("/etc/dcsync/~user/x"),
            "only ~ and ~/"
        );
        // Through the loader: relative to the config file, not the cwd.
        let d = tempfile::tempdir().unwrap();
        let k = "a".repeat(64);
        let p = write(
            d.path(),
            &format!(
                "api_url = \"http://127.0.0.1:1/api/v2/\"\nkey1 = \"{k}\"\nkey2 = \"{k}\"\n\
                 local_path = \"Cloud\"\nremote_path = \"/\"\nstate_dir = \"st\"\n"
            ),
        );
        let c = Config::load(&p, &EnvOverrides::default()).unwrap();
        assert_eq!(c.local_path.unwrap(), d.path().join("Cloud"));
        assert_eq!(c.state_dir.unwrap(), d.path().join("st"));
    }

    #[test]
    fn plain_http_only_to_this_machine_unless_allowed() {
        let d = tempfile::tempdir().unwrap();
        let k = "a".repeat(64);
        let cfg = |url: &str, extra: &str| {
            write(
                d.path(),
                &format!("api_url = \"{url}\"\nkey1 = \"{k}\"\nkey2 = \"{k}\"\n{extra}"),
            )
        };
        for ok in [
            "http://127.0.0.1:8080/api/v2/",
            "http://127.8.9.1/api/v2/",
            "http://localhost:1/api/v2/",
            "http://[::1]:8080/api/v2/",
            "https://files.example.com/api/v2/",
        ] {
            assert!(
                Config::load(&cfg(ok, ""), &EnvOverrides::default()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://files.example.com/api/v2/",
            "http://192.0.2.1:8080/api/v2/",
            "http://[2001:db8::1]/api/v2/",
            "http://localhost.example.com/",
        ] {
            let err = Config::load(&cfg(bad, ""), &EnvOverrides::default()).unwrap_err();
            assert!(
                err.to_string().contains("allow_insecure_http"),
                "{bad}: {err}"
            );
            let c = Config::load(
                &cfg(bad, "allow_insecure_http = true\n"),
                &EnvOverrides::default(),
            )
            .unwrap();
            assert!(c.insecure_http(), "{bad}");
        }
    }

    #[test]
    fn written_config_is_private_and_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub").join("config.toml");
        let c = Config {
            api_url: "https://h/api/v2/".into(),
            username: Some("u".into()),
            password: Some("secret-pw".into()),
            ..Default::default()
        };
        c.write_new(&p, false).unwrap();
        assert!(matches!(
            c.write_new(&p, false),
            Err(ConfigError::Exists(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
        let back = Config::load(&p, &EnvOverrides::default()).unwrap();
        assert_eq!(back.username.as_deref(), Some("u"));
        assert!(!format!("{back:?}").contains("secret-pw"));
    }
}
