//! File downloads: `GET /<shortUrl>?download_token=T`.
//!
//! Owns: download-token checking, the HTML page for bad tokens, the one Range
//! form the real server honours (`bytes=N-` with N > 0 → 206) and streaming the
//! blob from disk. Must never read a whole blob into memory and never answer a
//! bad token with JSON.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::AppState;

const BAD_TOKEN_HTML: &str = "<!DOCTYPE html>\n<html><head><title>File Not Found</title></head>\n<body><h1>File Not Found</h1><p>The download link is invalid or has expired. Please request a new download link.</p></body></html>\n";

fn bad_token_page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        BAD_TOKEN_HTML,
    )
        .into_response()
}

/// The start offset of an open-ended `bytes=N-` range with N > 0; any other
/// Range header is ignored.
pub fn open_range_start(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let rest = v.strip_prefix("bytes=")?;
    let n = rest.strip_suffix('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse::<u64>().ok().filter(|n| *n > 0)
}

pub(crate) async fn serve_download(
    State(st): State<Arc<AppState>>,
    Path(short): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match try_serve(&st, &short, &q, &headers).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "download failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

async fn try_serve(
    st: &AppState,
    short: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, crate::Error> {
    let Some(token) = q.get("download_token") else {
        return Ok(bad_token_page());
    };
    let Some(file) = st.store.file_by_short_url(short)? else {
        return Ok(bad_token_page());
    };
    if file.status != "active"
        || !st
            .store
            .download_token_valid(token, file.id, st.now_secs())?
    {
        return Ok(bad_token_page());
    }
    let mut blob = tokio::fs::File::open(st.store.blob_path(file.id)).await?;
    let size = blob.metadata().await?.len();
    let start = open_range_start(headers);
    let (status, offset) = match start {
        Some(n) if n >= size => {
            // Guess: a start beyond the end is refused like a standard server.
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
        Some(n) => (StatusCode::PARTIAL_CONTENT, n),
        None => (StatusCode::OK, 0),
    };
    if offset > 0 {
        blob.seek(std::io::SeekFrom::Start(offset)).await?;
    }
    let len = size - offset;
    st.store.file_touch_download(file.id, &st.now_str())?;
    let body = Body::from_stream(ReaderStream::with_capacity(blob.take(len), 256 * 1024));
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    let ct = HeaderValue::from_str(&file.file_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.filename.replace('\\', "\\\\").replace('"', "\\\"")
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {offset}-{}/{size}", size - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str) -> Option<u64> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        open_range_start(&h)
    }

    #[test]
    fn only_open_ended_ranges_count() {
        assert_eq!(range("bytes=10-"), Some(10));
        assert_eq!(range("bytes=0-"), None);
        assert_eq!(range("bytes=0-10"), None);
        assert_eq!(range("bytes=5-10"), None);
        assert_eq!(range("bytes=-10"), None);
        assert_eq!(range("bytes=1-,5-"), None);
        assert_eq!(open_range_start(&HeaderMap::new()), None);
    }
}
