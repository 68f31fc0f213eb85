//! The control socket: a Unix socket, owner-only, in the state directory.
//! One JSON request line in, one JSON answer line out.
//!
//! Owns the protocol (`Request`, `Response`), binding (refusing a second
//! daemon, removing a stale socket) and the client side used by
//! `dcsync status/pause/resume/sync-now`. It never exposes credentials:
//! only pair names, paths and states travel over it.

use super::{Command, DaemonError, PairStatus, Shared};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// A request to the daemon.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Status,
    Pause {
        pair: Option<String>,
    },
    Resume {
        pair: Option<String>,
    },
    SyncNow {
        pair: Option<String>,
    },
    /// Sets the daemon's bandwidth limit (`bwlimit` syntax; `"reset"`: back
    /// to the config's), or with `None` only reports it.
    Bwlimit {
        limit: Option<String>,
    },
}

/// The daemon's answer: the state of every pair, or an error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub pairs: Vec<PairStatus>,
    /// The bandwidth limit in force, when there is one (or was asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bwlimit: Option<String>,
}

pub(crate) async fn bind(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::Socket {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::api::auth::create_private_dir(dir).map_err(err)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(DaemonError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(err)?; // left by a crash
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(listener)
}

pub(crate) async fn serve(
    listener: UnixListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = conn else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &shared).await {
                tracing::debug!(error = %e, "control connection ended");
            }
        });
    }
}

/// The longest request line the socket reads (a request is a few dozen
/// bytes); a longer one is answered as a bad request.
const MAX_REQUEST: u64 = 4096;
/// How long a connection may take to send its request line.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn handle(stream: UnixStream, shared: &Shared) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut limited = BufReader::new(read.take(MAX_REQUEST));
    match tokio::time::timeout(REQUEST_TIMEOUT, limited.read_line(&mut line)).await {
        Ok(r) => {
            r?;
        }
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no request line in time",
            ));
        }
    }
    if !line.ends_with('\n') && line.len() as u64 >= MAX_REQUEST {
        line.clear(); // too long: answered as a bad request below
    }
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(req) => answer(req, shared),
        Err(e) => Response {
            ok: false,
            error: Some(format!("bad request: {e}")),
            pairs: vec![],
            bwlimit: None,
        },
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await
}

fn answer(req: Request, shared: &Shared) -> Response {
    let mut response = command(req, shared);
    response.bwlimit = shared.bandwidth.as_ref().and_then(|b| {
        let (s, overridden) = b.schedule();
        (s.limits() || overridden).then(|| b.describe_now())
    });
    response
}

/// `dcsync bwlimit [LIMIT|reset]`: the new limit applies to the transfers
/// running now, from their next chunk.
pub(crate) fn set_bwlimit(limit: Option<String>, shared: &Shared) -> Response {
    let statuses = shared.status.lock().map(|s| s.clone()).unwrap_or_default();
    let fail = |error: String, pairs| Response {
        ok: false,
        error: Some(error),
        pairs,
        bwlimit: None,
    };
    let Some(bw) = &shared.bandwidth else {
        return fail("this daemon has no bandwidth control".into(), statuses);
    };
    match limit.as_deref().map(str::trim) {
        None => {}
        Some("reset") => bw.set_override(None),
        Some(text) => match crate::api::bwlimit::Schedule::parse(text) {
            Ok(s) => bw.set_override(Some(s)),
            Err(e) => return fail(e, statuses),
        },
    }
    Response {
        ok: true,
        error: None,
        pairs: statuses,
        bwlimit: None,
    }
}

fn command(req: Request, shared: &Shared) -> Response {
    let (cmd, pair) = match req {
        Request::Status => (None, None),
        Request::Bwlimit { limit } => return set_bwlimit(limit, shared),
        Request::Pause { pair } => (Some(Command::Pause), pair),
        Request::Resume { pair } => (Some(Command::Resume), pair),
        Request::SyncNow { pair } => (Some(Command::SyncNow), pair),
    };
    let statuses = shared.status.lock().map(|s| s.clone()).unwrap_or_default();
    if let Some(cmd) = cmd {
        let targets: Vec<usize> = statuses
            .iter()
            .enumerate()
            .filter(|(_, s)| pair.as_ref().is_none_or(|p| *p == s.name))
            .map(|(i, _)| i)
            .collect();
        if targets.is_empty() {
            return Response {
                ok: false,
                error: Some(format!(
                    "no sync pair named {:?}; pairs: {}",
                    pair.unwrap_or_default(),
                    statuses
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                pairs: statuses,
                bwlimit: None,
            };
        }
        // Syncing a paused pair does nothing: say so instead of "sent".
        if cmd == Command::SyncNow {
            let paused: Vec<&str> = targets
                .iter()
                .filter_map(|i| statuses.get(*i))
                .filter(|s| s.state == "paused")
                .map(|s| s.name.as_str())
                .collect();
            if !paused.is_empty() {
                return Response {
                    ok: false,
                    error: Some(format!(
                        "{} paused; run `dcsync resume` first (it syncs at once)",
                        if paused.len() == 1 {
                            format!("pair {:?} is", paused[0])
                        } else {
                            format!("pairs {} are", paused.join(", "))
                        }
                    )),
                    pairs: statuses,
                    bwlimit: None,
                };
            }
        }
        for i in targets {
            if let Some(tx) = shared.commands.get(i) {
                // A closed channel means the pair loop has ended (shutdown).
                if tx.send(cmd).is_err() {
                    tracing::debug!(pair = i, "the pair loop is gone; command dropped");
                }
            }
        }
    }
    Response {
        ok: true,
        error: None,
        pairs: statuses,
        bwlimit: None,
    }
}

/// Sends one request to a running daemon. `Err` with `NotFound` or
/// `ConnectionRefused` means no daemon is running.
pub async fn request(socket: &Path, req: &Request) -> std::io::Result<Response> {
    let stream = UnixStream::connect(socket).await?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await?;
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}
