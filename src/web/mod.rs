//! The web console and `/metrics`, served by the daemon when `web_listen`
//! is set.
//!
//! Owns the HTTP side only: routes, the login token (kept owner-only in the
//! state dir; `dcsync web` prints the URL that logs a browser in), the CSRF
//! check on every state-changing POST, the security headers, the page
//! assets (embedded in the binary: nothing is loaded from the internet) and
//! the Prometheus text (`metrics`). It reads the daemon's shared state and
//! sends pairs the same commands as the control socket; it never runs a
//! pass or talks to the host itself, and settling a conflict goes through
//! the same code as `dcsync resolve`. It never shows the token, the API
//! credentials or anything outside the pairs' status.

mod metrics;

use crate::daemon::{Command, PairStatus, Shared, stats::Activity};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The cookie that carries the login token.
const COOKIE: &str = "dcsync_console";

/// The Content-Security-Policy of every answer: only this origin's own
/// script and style, no framing, no form posts elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(
        "web_listen {addr} is not a loopback address: the console would be reachable from \
         the network. Use 127.0.0.1, or set web_allow_remote = true (and reach it with the \
         token, ideally through an SSH tunnel or a VPN)"
    )]
    NotLoopback { addr: SocketAddr },
    #[error(
        "metrics_without_token needs a loopback web_listen (it would show the metrics to the \
         network)"
    )]
    OpenMetricsRemote,
    #[error("web console: cannot listen on {addr}: {source}; is another program using the port?")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("web console token {}: {source}", .path.display())]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the console needs from the config.
#[derive(Debug, Clone)]
pub struct WebSettings {
    pub listen: SocketAddr,
    /// A non-loopback `listen` was explicitly allowed.
    pub allow_remote: bool,
    /// `/metrics` without the token (loopback only).
    pub metrics_without_token: bool,
    /// The login token's file (created owner-only when missing).
    pub token_file: PathBuf,
}

impl WebSettings {
    /// Refuses what would expose the console by mistake.
    pub fn check(&self) -> Result<(), WebError> {
        let loopback = self.listen.ip().is_loopback();
        if !loopback && !self.allow_remote {
            return Err(WebError::NotLoopback { addr: self.listen });
        }
        if !loopback && self.metrics_without_token {
            return Err(WebError::OpenMetricsRemote);
        }
        Ok(())
    }
}

/// The login token in `path`: read, or made (32 random bytes, hex) and
/// written owner-only when there is none. Made without replacing: when the
/// daemon and `dcsync web` make one at the same moment, both end up with
/// the one that landed first.
pub fn token(path: &Path) -> Result<String, WebError> {
    let err = |source| WebError::Token {
        path: path.to_path_buf(),
        source,
    };
    let read = || match std::fs::read_to_string(path) {
        Ok(t) if t.trim().len() >= 32 => Ok(Some(t.trim().to_owned())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(e)),
    };
    if let Some(t) = read()? {
        return Ok(t);
    }
    if let Some(dir) = path.parent() {
        crate::api::auth::create_private_dir(dir).map_err(err)?;
    }
    let t = hex::encode(rand::random::<[u8; 32]>());
    let mut tmp =
        tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new("."))).map_err(err)?;
    {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
        tmp.write_all(t.as_bytes()).map_err(err)?;
    }
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(t),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process made it first: theirs is the token.
            read()?.ok_or_else(|| err(std::io::Error::other("the token file is too short")))
        }
        Err(e) => Err(err(e.error)),
    }
}

/// The file beside the control socket that holds the console's token.
pub fn token_path(socket: &Path) -> PathBuf {
    socket.with_extension("web-token")
}

/// The file where a running daemon says where its console listens.
pub fn address_path(socket: &Path) -> PathBuf {
    socket.with_extension("web-addr")
}

/// The URL that logs a browser in.
pub fn login_url(addr: SocketAddr, token: &str) -> String {
    format!("http://{addr}/login?token={token}")
}

struct App {
    shared: Arc<Shared>,
    token: String,
    csrf: String,
    metrics_without_token: bool,
    /// The `Host` values a loopback console answers (a page of another
    /// site that re-points its name at 127.0.0.1 cannot use it).
    hosts: Option<Vec<String>>,
}

/// Binds the console's listener (checked first).
pub async fn bind(settings: &WebSettings) -> Result<TcpListener, WebError> {
    settings.check()?;
    TcpListener::bind(settings.listen)
        .await
        .map_err(|source| WebError::Bind {
            addr: settings.listen,
            source,
        })
}

/// Serves the console on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    token: String,
    metrics_without_token: bool,
    mut stop: watch::Receiver<bool>,
) {
    let addr = listener.local_addr().ok();
    let hosts = addr.filter(|a| a.ip().is_loopback()).map(|a| {
        let port = a.port();
        vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]
    });
    let app = Arc::new(App {
        csrf: csrf_of(&token),
        shared,
        token,
        metrics_without_token,
        hosts,
    });
    let router = router(app);
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(error = %e, "the web console stopped");
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/login", get(login))
        .route("/api/state", get(state))
        .route("/api/pairs/{name}/{action}", post(pair_action))
        .route("/api/bwlimit", post(bwlimit))
        .route("/metrics", get(metrics_page))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Every request: the `Host` check, the CSRF check of POSTs, and the
/// security headers of every answer.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut resp = if app.hosts.as_ref().is_some_and(|ok| !ok.contains(&host)) {
        refuse(StatusCode::MISDIRECTED_REQUEST, "unknown host name")
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        match same_origin_post(&app, req.headers(), &host) {
            Ok(()) => next.run(req).await,
            Err(why) => refuse(StatusCode::FORBIDDEN, why),
        }
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    resp
}

/// A POST must come from the console's own page: it carries the CSRF token
/// (a page of another site cannot read it), and its `Origin`, when the
/// browser sends one, is this console.
fn same_origin_post(app: &App, headers: &HeaderMap, host: &str) -> Result<(), &'static str> {
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.to_str().ok() != Some(&format!("http://{host}"))
    {
        return Err("cross-site request refused");
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.to_str(), Ok("same-origin" | "none"))
    {
        return Err("cross-site request refused");
    }
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !same(sent, &app.csrf) {
        return Err("missing or wrong CSRF token: reload the page");
    }
    Ok(())
}

/// The CSRF token of a login token (the page gets it from `/api/state`).
fn csrf_of(token: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(format!("dcsync-console-csrf:{token}")))
}

/// Compares secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether the request carries the token (cookie, or `Authorization:
/// Bearer` for scrapers and scripts).
fn logged_in(app: &App, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|t| same(t.trim(), &app.token)) {
        return true;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .any(|(k, v)| k == COOKIE && same(v, &app.token))
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(Answer::error(why))).into_response()
}

async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

const LOGIN_NEEDED: &str = "<!doctype html><meta charset=utf-8><title>dcsync</title>\
    <p>Not logged in. Run <code>dcsync web</code> on the machine of the daemon and open the URL it prints.";

async fn index(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !logged_in(&app, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            LOGIN_NEEDED,
        )
            .into_response();
    }
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

/// `/login?token=…`: sets the cookie and goes to the console (so the token
/// leaves the address bar and the history at once).
async fn login(State(app): State<Arc<App>>, Query(q): Query<Login>) -> Response {
    if !same(q.token.trim(), &app.token) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "wrong token: run `dcsync web` again",
        );
    }
    let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", app.token);
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    resp
}

/// A POST's answer.
#[derive(Serialize)]
struct Answer {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Answer {
    fn error(why: &str) -> Answer {
        Answer {
            ok: false,
            error: Some(why.to_owned()),
        }
    }
}

/// What the page shows.
#[derive(Serialize)]
struct ConsoleState {
    version: &'static str,
    csrf: String,
    bwlimit: Option<String>,
    pairs: Vec<PairView>,
    activity: Vec<Activity>,
}

#[derive(Serialize)]
struct PairView {
    #[serde(flatten)]
    status: PairStatus,
    conflicts: Vec<ConflictView>,
}

/// A kept conflict: the contested path and the copy beside it.
#[derive(Serialize)]
struct ConflictView {
    path: String,
    copy_path: String,
    copy_from: &'static str,
    at: String,
    path_size: Option<u64>,
    copy_size: Option<u64>,
}

async fn state(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !logged_in(&app, &headers) {
        return refuse(StatusCode::UNAUTHORIZED, "not logged in: run `dcsync web`");
    }
    let shared = app.shared.clone();
    let conflicts = tokio::task::spawn_blocking(move || {
        shared
            .specs
            .iter()
            .map(|p| conflicts_of(&p.engine.local_root, &p.engine.db_path))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut conflicts = conflicts.into_iter();
    let pairs = app
        .shared
        .statuses()
        .into_iter()
        .map(|status| PairView {
            status,
            conflicts: conflicts.next().unwrap_or_default(),
        })
        .collect();
    axum::Json(ConsoleState {
        version: env!("CARGO_PKG_VERSION"),
        csrf: app.csrf.clone(),
        bwlimit: app.shared.bandwidth.as_ref().map(|b| b.describe_now()),
        pairs,
        activity: app.shared.stats.activity(),
    })
    .into_response()
}

/// The kept conflicts of one pair (none when its state DB cannot be read).
fn conflicts_of(root: &Path, db: &Path) -> Vec<ConflictView> {
    let Ok(list) = crate::state::StateDb::open(db).and_then(|db| db.conflicts()) else {
        return Vec::new();
    };
    let size = |p: &crate::model::RelPath| {
        std::fs::symlink_metadata(root.join(p.as_str()))
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
    };
    list.into_iter()
        .rev()
        .map(|c| ConflictView {
            path_size: size(&c.path),
            copy_size: size(&c.copy_path),
            path: c.path.as_str().to_owned(),
            copy_path: c.copy_path.as_str().to_owned(),
            copy_from: match c.copy_from {
                crate::state::Side::Local => "local",
                crate::state::Side::Remote => "remote",
            },
            at: c.created_at,
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct ResolveBody {
    path: String,
    keep: String,
}

async fn pair_action(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath((name, action)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if !logged_in(&app, &headers) {
        return refuse(StatusCode::UNAUTHORIZED, "not logged in: run `dcsync web`");
    }
    let Some(idx) = app.shared.specs.iter().position(|p| p.name == name) else {
        return refuse(StatusCode::NOT_FOUND, "no sync pair of that name");
    };
    let cmd = match action.as_str() {
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "sync-now" => Command::SyncNow,
        "confirm-delete" => Command::ConfirmDelete,
        "resolve" => return resolve(&app, idx, &body).await,
        _ => return refuse(StatusCode::NOT_FOUND, "no such action"),
    };
    match app.shared.commands.get(idx).map(|tx| tx.send(cmd)) {
        Some(Ok(())) => {
            tracing::info!(pair = %name, action = %action, "console command");
            axum::Json(Answer {
                ok: true,
                error: None,
            })
            .into_response()
        }
        _ => refuse(StatusCode::SERVICE_UNAVAILABLE, "the pair has stopped"),
    }
}

/// Settles a kept conflict as `dcsync resolve` does, then syncs the pair.
async fn resolve(app: &App, idx: usize, body: &[u8]) -> Response {
    let Ok(b) = serde_json::from_slice::<ResolveBody>(body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected {\"path\": …, \"keep\": …}",
        );
    };
    let keep = match b.keep.as_str() {
        "local" => crate::cli::Keep::Local,
        "remote" => crate::cli::Keep::Remote,
        "both" => crate::cli::Keep::Both,
        _ => return refuse(StatusCode::BAD_REQUEST, "keep is local, remote or both"),
    };
    let Some(spec) = app.shared.specs.get(idx).cloned() else {
        return refuse(StatusCode::NOT_FOUND, "no sync pair of that name");
    };
    let path = b.path.clone();
    let done =
        tokio::task::spawn_blocking(move || crate::cli::resolve_pair(&spec, &path, keep)).await;
    match done {
        Ok(Ok(())) => {
            tracing::info!(path = %b.path, keep = %b.keep, "conflict settled from the console");
            if let Some(tx) = app.shared.commands.get(idx) {
                let _ = tx.send(Command::SyncNow);
            }
            axum::Json(Answer {
                ok: true,
                error: None,
            })
            .into_response()
        }
        Ok(Err(e)) => refuse(StatusCode::CONFLICT, &e.to_string()),
        Err(_) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "settling the conflict failed",
        ),
    }
}

#[derive(Deserialize)]
struct BwlimitBody {
    limit: String,
}

async fn bwlimit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !logged_in(&app, &headers) {
        return refuse(StatusCode::UNAUTHORIZED, "not logged in: run `dcsync web`");
    }
    let Ok(b) = serde_json::from_slice::<BwlimitBody>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "expected {\"limit\": …}");
    };
    let r = crate::daemon::control::set_bwlimit(Some(b.limit), &app.shared);
    if r.ok {
        axum::Json(Answer {
            ok: true,
            error: None,
        })
        .into_response()
    } else {
        refuse(
            StatusCode::BAD_REQUEST,
            r.error.as_deref().unwrap_or("refused"),
        )
    }
}

async fn metrics_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !app.metrics_without_token && !logged_in(&app, &headers) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "send the console token (Authorization: Bearer …), or set metrics_without_token",
        );
    }
    let shared = app.shared.clone();
    let text = tokio::task::spawn_blocking(move || metrics::render(&shared))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert_ne!(csrf_of("a"), csrf_of("b"));
    }

    #[test]
    fn a_non_loopback_address_needs_an_explicit_yes() {
        let s = |listen: &str, allow_remote, open| WebSettings {
            listen: listen.parse().unwrap(),
            allow_remote,
            metrics_without_token: open,
            token_file: PathBuf::new(),
        };
        assert!(s("127.0.0.1:8385", false, true).check().is_ok());
        assert!(matches!(
            s("0.0.0.0:8385", false, false).check(),
            Err(WebError::NotLoopback { .. })
        ));
        assert!(s("192.168.1.5:8385", true, false).check().is_ok());
        assert!(matches!(
            s("192.168.1.5:8385", true, true).check(),
            Err(WebError::OpenMetricsRemote)
        ));
    }

    #[test]
    fn the_token_is_made_once_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state/d.web-token");
        let t = token(&p).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(token(&p).unwrap(), t, "read back, not made again");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn makers_at_the_same_moment_all_get_the_token_on_disk() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("d.web-token");
            let go = std::sync::Arc::new(std::sync::Barrier::new(8));
            let got: Vec<String> = (0..8)
                .map(|_| {
                    let (p, go) = (p.clone(), go.clone());
                    std::thread::spawn(move || {
                        go.wait();
                        token(&p).unwrap()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect();
            let on_disk = std::fs::read_to_string(&p).unwrap();
            assert!(got.iter().all(|t| *t == on_disk), "{got:?} vs {on_disk}");
        }
    }
}
