//! The unreliable-network switches: added latency, the request-rate limit (429)
//! and injected faults (5xx with HTML bodies, dropped connections, truncated
//! downloads, work done but answer lost).
//!
//! Owns: the seeded decision of which request gets which fault, and the axum
//! middleware that applies it. Must never touch stored state itself: a "work done,
//! answer lost" fault lets the handler finish completely and only then throws the
//! answer away, so faults can never corrupt what is stored.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{AppState, Config};

/// A kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 502 with an nginx-style HTML page.
    BadGateway,
    /// 500, HTML or empty body.
    ServerError,
    /// The connection drops before the answer is complete.
    Drop,
    /// Download GET: full Content-Length announced, body stops early.
    Truncate,
    /// Mutating call: the work is done, then 502 or a dropped connection.
    LostAnswer,
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "502" | "bad-gateway" => Ok(Self::BadGateway),
            "500" | "server-error" => Ok(Self::ServerError),
            "drop" => Ok(Self::Drop),
            "truncate" => Ok(Self::Truncate),
            "lost" | "lost-answer" => Ok(Self::LostAnswer),
            other => Err(format!(
                "unknown fault kind {other:?} (use 502, 500, drop, truncate, lost)"
            )),
        }
    }
}

/// What kind of request this is, for the fault choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Api { mutating: bool },
    Download,
    Other,
}

const MUTATING: &[&str] = &[
    "authorize",
    "file/upload",
    "file/edit",
    "file/move",
    "file/copy",
    "file/delete",
    "file/url_upload_add",
    "folder/create",
    "folder/edit",
    "folder/delete",
    "folder/move",
];

fn classify(method: &Method, path: &str) -> Class {
    if let Some(ep) = path.strip_prefix("/api/v2/") {
        Class::Api {
            mutating: MUTATING.contains(&ep.trim_end_matches('/')),
        }
    } else if method == Method::GET && path.len() > 1 && !path[1..].contains('/') {
        Class::Download
    } else {
        Class::Other
    }
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    tokens: f64,
    last: Instant,
}

/// Fault and rate-limit decisions; deterministic given the seed and the order
/// in which requests arrive.
#[derive(Debug)]
pub struct Faults {
    rate: f64,
    kinds: Vec<FaultKind>,
    latency: Duration,
    rng: Mutex<StdRng>,
    retry_rng: Mutex<StdRng>,
    bucket: Option<Mutex<Bucket>>,
}

impl Faults {
    pub fn new(config: &Config) -> Self {
        let kinds = if config.fault_kinds.is_empty() {
            vec![
                FaultKind::BadGateway,
                FaultKind::ServerError,
                FaultKind::Drop,
                FaultKind::Truncate,
                FaultKind::LostAnswer,
            ]
        } else {
            config.fault_kinds.clone()
        };
        Self {
            rate: config.fault_rate.clamp(0.0, 1.0),
            kinds,
            latency: Duration::from_millis(config.latency_ms),
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            retry_rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x9E37_79B9_7F4A_7C15)),
            bucket: config.rate_limit_rps.filter(|n| *n > 0).map(|n| {
                Mutex::new(Bucket {
                    capacity: f64::from(n),
                    tokens: f64::from(n),
                    last: Instant::now(),
                })
            }),
        }
    }

    /// Take one token from the bucket; false when empty.
    fn admit(&self) -> bool {
        let Some(bucket) = &self.bucket else {
            return true;
        };
        let mut b = bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.last = now;
        b.tokens = (b.tokens + elapsed * b.capacity).min(b.capacity);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Draw the fault (if any) for one request, plus a coin for sub-variants.
    fn draw(&self, class: Class) -> Option<(FaultKind, bool)> {
        if self.rate <= 0.0 || class == Class::Other {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if !rng.random_bool(self.rate) {
            return None;
        }
        let applicable: Vec<FaultKind> = self
            .kinds
            .iter()
            .copied()
            .filter(|k| match k {
                FaultKind::Truncate => class == Class::Download,
                FaultKind::LostAnswer => class == Class::Api { mutating: true },
                _ => true,
            })
            .collect();
        let pick = rng.random_range(0..applicable.len().max(1));
        let coin = rng.random_bool(0.5);
        applicable.get(pick).map(|k| (*k, coin))
    }

    fn retry_after_coin(&self) -> bool {
        self.retry_rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_bool(0.5)
    }
}

fn html(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html")],
        Body::from(body),
    )
        .into_response()
}

const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
const SERVER_ERROR_HTML: &str = "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
const TOO_MANY_HTML: &str = "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

fn bad_gateway() -> Response {
    html(StatusCode::BAD_GATEWAY, BAD_GATEWAY_HTML)
}

/// An answer whose connection breaks: it announces a JSON body of 200 bytes and
/// sends part of it (`mid_way`) or nothing before failing.
fn dropped(mid_way: bool) -> Response {
    let first: &'static [u8] = if mid_way { b"{\"data\":{\"id\":" } else { b"" };
    let stream = futures_util::stream::iter([Ok(Bytes::from_static(first))]).chain(
        futures_util::stream::once(async move {
            if mid_way {
                // Let the partial body reach the wire before the connection breaks.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected fault: connection dropped",
            ))
        }),
    );
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("200"));
    resp
}

/// Keep the headers (including the full Content-Length) but stop the body after
/// half of it and then break the connection.
fn truncated(resp: Response) -> Response {
    let len: u64 = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit = len / 2;
    let (parts, body) = resp.into_parts();
    let mut sent = 0u64;
    let stream = body
        .into_data_stream()
        .map(move |chunk| -> Result<Option<Bytes>, std::io::Error> {
            let chunk = chunk.map_err(std::io::Error::other)?;
            if sent >= limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected fault: truncated download",
                ));
            }
            let room = usize::try_from(limit - sent).unwrap_or(usize::MAX);
            let part = if chunk.len() > room {
                chunk.slice(..room)
            } else {
                chunk
            };
            sent += part.len() as u64;
            Ok(Some(part))
        })
        .chain(futures_util::stream::once(async {
            // Let the partial body reach the wire before the connection breaks.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected fault: truncated download",
            ))
        }))
        .filter_map(|r| async move { r.transpose() });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The middleware: latency, then the rate limit, then the fault (if any).
pub(crate) async fn middleware(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let faults = &st.faults;
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let class = classify(req.method(), req.uri().path());
    if matches!(class, Class::Api { .. }) && !faults.admit() {
        let mut resp = html(StatusCode::TOO_MANY_REQUESTS, TOO_MANY_HTML);
        if faults.retry_after_coin() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        return resp;
    }
    let Some((kind, coin)) = faults.draw(class) else {
        return next.run(req).await;
    };
    tracing::info!(path = %req.uri().path(), ?kind, "injecting fault");
    match kind {
        FaultKind::BadGateway => bad_gateway(),
        FaultKind::ServerError => {
            if coin {
                html(StatusCode::INTERNAL_SERVER_ERROR, SERVER_ERROR_HTML)
            } else {
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
        FaultKind::Drop => dropped(coin),
        FaultKind::Truncate => truncated(next.run(req).await),
        FaultKind::LostAnswer => {
            // The handler runs to completion (the work is stored), then the
            // answer is thrown away.
            let done = next.run(req).await;
            drop(done);
            if coin { bad_gateway() } else { dropped(false) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests() {
        assert_eq!(
            classify(&Method::POST, "/api/v2/file/edit"),
            Class::Api { mutating: true }
        );
        assert_eq!(
            classify(&Method::POST, "/api/v2/folder/listing"),
            Class::Api { mutating: false }
        );
        assert_eq!(classify(&Method::GET, "/2Vv"), Class::Download);
        assert_eq!(classify(&Method::GET, "/"), Class::Other);
    }

    #[test]
    fn draws_are_deterministic() {
        let dir = std::path::PathBuf::from("/nonexistent");
        let mut c = Config::new(dir, "k", "k");
        c.fault_rate = 0.5;
        c.seed = 7;
        let a = Faults::new(&c);
        let b = Faults::new(&c);
        for _ in 0..100 {
            let class = Class::Api { mutating: true };
            assert_eq!(a.draw(class), b.draw(class));
        }
    }

    #[test]
    fn bucket_limits_burst() {
        let mut c = Config::new("/nonexistent", "k", "k");
        c.rate_limit_rps = Some(5);
        let f = Faults::new(&c);
        let admitted = (0..20).filter(|_| f.admit()).count();
        assert!((5..=6).contains(&admitted), "{admitted}");
    }
}
