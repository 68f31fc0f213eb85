//! `dcsync-emulator`: a local stand-in for a File Upload API v2 host.
//!
//! Owns: the public in-process API (`Config`, `serve`, `RunningEmulator`), the
//! shared application state and the crate's error type. Must never contain
//! endpoint logic (that is `api`), naming rules or SQL (`store`), or fault
//! decisions (`faults`); and must never bind anything but the listener it is given.

pub mod api;
pub mod clock;
pub mod download;
pub mod faults;
mod inproc;
mod rules;
pub mod store;
pub mod url_upload;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use faults::FaultKind;
pub use inproc::InProcess;

/// Everything that can go wrong inside the emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// How `/authorize` authenticates (one or the other for the whole server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// `key1` + `key2` (64 characters each).
    Keys,
    /// `username` + `password`.
    Password,
}

/// Emulator settings. Build with [`Config::new`] and adjust the public fields.
#[derive(Clone)]
pub struct Config {
    /// State directory (SQLite database and blobs); survives restarts.
    pub data_dir: PathBuf,
    pub key1: String,
    pub key2: String,
    pub auth: AuthMode,
    pub username: String,
    pub password: String,
    /// A token expires after this many seconds without use.
    pub token_idle_secs: u64,
    /// Token-bucket limit over all API requests (None = unlimited).
    pub rate_limit_rps: Option<u32>,
    /// Delay added to every request.
    pub latency_ms: u64,
    /// Probability that a request gets a fault.
    pub fault_rate: f64,
    /// Seed of the fault and rate-limit decisions.
    pub seed: u64,
    /// Fault kinds that may be drawn (empty = all).
    pub fault_kinds: Vec<FaultKind>,
    pub max_upload_size: u64,
    /// 0 = unlimited.
    pub max_storage_bytes: u64,
    pub can_upload: bool,
    pub concurrent_uploads: u32,
    /// Base of file and download URLs (default `http://HOST:PORT` of the listener).
    pub public_url: Option<String>,
    /// Source of "now" for tokens, download tokens and dates.
    pub clock: SharedClock,
}

impl Config {
    /// Defaults: key auth, user `admin`, 1 h token idle time, no limits or faults,
    /// 10 GiB max upload, unlimited storage.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        key1: impl Into<String>,
        key2: impl Into<String>,
    ) -> Self {
        Self {
            data_dir: data_dir.into(),
            key1: key1.into(),
            key2: key2.into(),
            auth: AuthMode::Keys,
            username: "admin".into(),
            password: String::new(),
            token_idle_secs: 3600,
            rate_limit_rps: None,
            latency_ms: 0,
            fault_rate: 0.0,
            seed: 0,
            fault_kinds: Vec::new(),
            max_upload_size: 10 * 1024 * 1024 * 1024,
            max_storage_bytes: 0,
            can_upload: true,
            concurrent_uploads: 100,
            public_url: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and password are deliberately left out.
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("auth", &self.auth)
            .field("username", &self.username)
            .field("token_idle_secs", &self.token_idle_secs)
            .field("rate_limit_rps", &self.rate_limit_rps)
            .field("latency_ms", &self.latency_ms)
            .field("fault_rate", &self.fault_rate)
            .field("seed", &self.seed)
            .field("fault_kinds", &self.fault_kinds)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Shared state of a running emulator.
#[derive(Debug)]
pub(crate) struct AppState {
    pub config: Config,
    pub store: store::Store,
    /// `http://HOST:PORT` (no trailing slash).
    pub public_base: String,
    pub faults: faults::Faults,
    pub http: reqwest::Client,
    pub background: Mutex<Vec<AbortHandle>>,
}

impl AppState {
    /// The state of a host over `store` (for the HTTP server and `InProcess`).
    pub(crate) fn new(
        config: Config,
        store: store::Store,
        public_base: String,
    ) -> Result<AppState, Error> {
        let faults = faults::Faults::new(&config);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .build()?;
        Ok(AppState {
            config,
            store,
            public_base,
            faults,
            http,
            background: Mutex::new(Vec::new()),
        })
    }

    pub fn now_secs(&self) -> i64 {
        clock::unix_secs(self.config.clock.now())
    }

    pub fn now_str(&self) -> String {
        clock::format_datetime(self.config.clock.now())
    }
}

/// Serve the API on `listener` until `shutdown` completes.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener.local_addr()?;
    let public_base = match &config.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{addr}"),
    };
    let store = store::Store::open(&config.data_dir)?;
    let state = Arc::new(AppState::new(config, store, public_base)?);
    url_upload::resume_unfinished(&state)?;
    let app = api::router(state.clone());
    // Headers and body go out in separate writes: without TCP_NODELAY the
    // second waits for the client's delayed ACK (40 ms on Linux loopback).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    for h in state
        .background
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        h.abort();
    }
    result.map_err(Error::Io)
}

/// An emulator serving in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl RunningEmulator {
    /// Bind `127.0.0.1:0` and start serving.
    pub async fn start(config: Config) -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::start_on(config, listener).await
    }

    /// Start serving on an already bound listener.
    pub async fn start_on(config: Config, listener: TcpListener) -> Result<Self, Error> {
        let addr = listener.local_addr()?;
        // Open the store here first so a bad data dir fails the start, not later.
        drop(store::Store::open(&config.data_dir)?);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(config, listener, async move {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/api/v2/`
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v2/", self.addr)
    }

    /// Stop serving (graceful, at most 5 s, then aborted) and wait for the end.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(Duration::from_secs(5), &mut self.task).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(Error::Config(format!("server task failed: {join}"))),
            Err(_) => {
                self.task.abort();
                Ok(())
            }
        }
    }
}
