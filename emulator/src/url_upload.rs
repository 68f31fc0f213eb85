//! Background imports for `/file/url_upload_add`.
//!
//! Owns: fetching a scheduled URL with reqwest (streamed to a temp file with MD5),
//! moving the item through `pending` → `downloading` → `complete` / `failed`, and
//! resuming unfinished items after a restart. Must never hold a whole download in
//! memory and never bypass the upload naming rules (`store::clean_upload_name`
//! and the collision renaming in `store::file_insert_uploaded`).

use std::sync::Arc;

use futures_util::StreamExt;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use crate::store::{self, NewFile};
use crate::{AppState, Error};

/// Start the background fetch of scheduled item `id`.
pub(crate) fn spawn(st: &Arc<AppState>, id: i64) {
    let task = tokio::spawn(run(st.clone(), id));
    let mut bg = st.background.lock().unwrap_or_else(|e| e.into_inner());
    bg.retain(|h| !h.is_finished());
    bg.push(task.abort_handle());
}

/// Re-queue items a previous run left pending or downloading.
pub(crate) fn resume_unfinished(st: &Arc<AppState>) -> Result<(), Error> {
    for id in st.store.url_upload_unfinished()? {
        spawn(st, id);
    }
    Ok(())
}

async fn run(st: Arc<AppState>, id: i64) {
    if let Err(e) = run_inner(&st, id).await {
        tracing::error!(id, error = %e, "url upload bookkeeping failed");
    }
}

async fn run_inner(st: &AppState, id: i64) -> Result<(), Error> {
    let Some(row) = st.store.url_upload_get(id)? else {
        return Ok(());
    };
    st.store.url_upload_started(id, &st.now_str())?;
    let result = fetch(st, id, &row.url, row.folder_id).await;
    if let Err(msg) = &result {
        tracing::info!(id, url = %row.url, error = %msg, "url upload failed");
    }
    st.store.url_upload_finished(id, result, &st.now_str())
}

/// Last path segment of the URL, percent-decoded.
fn name_from_url(url: &reqwest::Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_string))
        .unwrap_or_default();
    percent_decode(&last)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Download into the store; `Ok((file_id, size))` or a failure message.
async fn fetch(
    st: &AppState,
    id: i64,
    url: &str,
    folder: Option<i64>,
) -> Result<(i64, i64), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("Invalid URL: {e}"))?;
    let resp = st
        .http
        .get(parsed.clone())
        .send()
        .await
        .map_err(|e| format!("Could not download file: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "Could not download file: remote server answered HTTP {}",
            resp.status().as_u16()
        ));
    }
    let temp = st.store.temp_path();
    let outcome = async {
        let file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| format!("Could not store file: {e}"))?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Md5::new();
        let mut size: u64 = 0;
        let mut reported: u64 = 0;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("Could not download file: {e}"))?;
            size += chunk.len() as u64;
            if size > st.config.max_upload_size {
                return Err(format!(
                    "The file is too large. Max size is {} bytes.",
                    st.config.max_upload_size
                ));
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| format!("Could not store file: {e}"))?;
            if size - reported >= 1 << 20 {
                reported = size;
                let _ = st
                    .store
                    .url_upload_progress(id, i64::try_from(size).unwrap_or(i64::MAX));
            }
        }
        out.flush()
            .await
            .map_err(|e| format!("Could not store file: {e}"))?;
        if size == 0 {
            return Err("Filesize received was zero.".to_string());
        }
        crate::rules::check_storage(st, size).map_err(|e| match e {
            crate::api::ApiError::Msg(m) => m,
            crate::api::ApiError::Internal(e) => e.to_string(),
        })?;
        let folder = match folder {
            Some(f) if st.store.folder_exists(f).unwrap_or(false) => Some(f),
            _ => None,
        };
        let name = store::clean_upload_name(&name_from_url(&parsed));
        let new = NewFile {
            folder_id: folder,
            file_type: store::mime_of(&name).to_string(),
            name,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            md5: hex::encode(hasher.finalize()),
            uploaded_ip: "127.0.0.1".to_string(),
            now: st.now_str(),
        };
        let row = st
            .store
            .file_insert_uploaded(&new, &temp)
            .map_err(|e| format!("Could not store file: {e}"))?;
        Ok((row.id, row.size))
    }
    .await;
    let _ = std::fs::remove_file(&temp);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        let u = reqwest::Url::parse("http://h/a/b%20c.png?x=1").unwrap();
        assert_eq!(name_from_url(&u), "b c.png");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
