//! Streaming file transfers: upload from a file and download to a file.
//!
//! Owns: streaming bodies (never a whole file in memory; a file of at most
//! [`SMALL_UPLOAD`] bytes is read whole and sent as one chunk), the MD5 computed on
//! the bytes as they pass, checking it against the host's answer or the
//! expected value, and resuming interrupted downloads with `Range: bytes=N-`.
//! It never decides where a file belongs in a sync: callers choose the local
//! path (a temp file for sync) and what to do on an integrity failure.

use super::bwlimit::Direction;
use super::client::{Client, Idempotency, decode_response, transport};
use super::error::ApiError;
use super::types::*;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Called with the number of bytes transferred so far (including bytes
/// already present when a download resumes).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// What a finished download delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub size: u64,
    /// MD5 of the whole file as written (lower-case hex).
    pub md5: String,
}

/// What a download is checked against. Unknown values are not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub size: Option<u64>,
    pub md5: Option<String>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ApiError + '_ {
    move |source| ApiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Files up to this size are read in one call and sent as one chunk: an
/// initial upload is mostly small files, and streaming each through a
/// 256 KiB reader cost a buffer and two trips to the blocking pool per file.
const SMALL_UPLOAD: u64 = 64 * 1024;

/// Shared MD5 state fed by the upload body stream.
#[derive(Clone, Default)]
struct SharedMd5(Arc<Mutex<(Md5, u64)>>);

impl SharedMd5 {
    fn update(&self, chunk: &[u8]) -> u64 {
        match self.0.lock() {
            Ok(mut g) => {
                g.0.update(chunk);
                g.1 += chunk.len() as u64;
                g.1
            }
            Err(_) => 0,
        }
    }
    fn finish(&self) -> Option<(String, u64)> {
        let g = self.0.lock().ok()?;
        Some((hex::encode(g.0.clone().finalize()), g.1))
    }
}

impl Client {
    /// `/file/upload`: streams `path` as `name` into `folder` (`None` = root)
    /// and checks the host's MD5 against the bytes sent. The stored name may
    /// differ from `name` (see [`UploadedFile::name`]).
    ///
    /// A failure after the bytes may have reached the host is returned as
    /// [`ApiError::OutcomeUnknown`]: look in the folder before uploading again.
    pub async fn upload_file(
        &self,
        path: &Path,
        name: &str,
        folder: Option<FolderId>,
        progress: Option<Progress>,
    ) -> Result<UploadedFile, ApiError> {
        const EP: &str = "file/upload";
        // A `stat` (the engine stats inline too): not worth a trip to the
        // blocking pool per file.
        let len = std::fs::metadata(path).map_err(io_err(path))?.len();
        if len == 0 {
            return Err(ApiError::Api {
                endpoint: EP,
                message: "the host cannot store empty files (Filesize received was zero.)".into(),
            });
        }
        // Each attempt reopens the file and restarts the hash.
        let hashes: Arc<Mutex<Vec<SharedMd5>>> = Arc::default();
        let path_buf: PathBuf = path.to_path_buf();
        let env = {
            let hashes = hashes.clone();
            let (open_path, name, progress) = (path_buf.clone(), name.to_owned(), progress);
            self.call_with(EP, Idempotency::Unsafe, move |token| {
                let file = std::fs::File::open(&open_path).map_err(io_err(&open_path))?;
                let md5 = SharedMd5::default();
                if let Ok(mut h) = hashes.lock() {
                    h.push(md5.clone());
                }
                let progress = progress.clone();
                let bandwidth = self.bandwidth();
                let source: futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> =
                    if len <= SMALL_UPLOAD {
                        // Read whole (up to one byte more than `len`, to
                        // see a file that grew): one whose size changed
                        // since the `stat` is refused before anything is
                        // sent.
                        let mut whole = Vec::with_capacity(len as usize + 1);
                        std::io::Read::read_to_end(
                            &mut std::io::Read::take(file, len + 1),
                            &mut whole,
                        )
                        .map_err(io_err(&open_path))?;
                        if whole.len() as u64 != len {
                            return Err(ApiError::Integrity {
                                what: format!("upload of {}", open_path.display()),
                                detail: format!(
                                    "the file changed while it was read ({len} bytes expected, {} read)",
                                    whole.len()
                                ),
                            });
                        }
                        futures_util::stream::once(std::future::ready(Ok(bytes::Bytes::from(
                            whole,
                        ))))
                        .boxed()
                    } else {
                        tokio_util::io::ReaderStream::with_capacity(
                            tokio::fs::File::from_std(file),
                            256 * 1024,
                        )
                        .boxed()
                    };
                let stream = source.then(move |chunk| {
                    let (bandwidth, md5, progress) =
                        (bandwidth.clone(), md5.clone(), progress.clone());
                    async move {
                        if let Ok(c) = &chunk {
                            // Held back under `bwlimit`, shared with every
                            // other transfer of this client.
                            bandwidth.pace(Direction::Up, c.len()).await;
                            let done = md5.update(c);
                            if let Some(p) = &progress {
                                p(done);
                            }
                        }
                        chunk
                    }
                });
                let part = reqwest::multipart::Part::stream_with_length(
                    reqwest::Body::wrap_stream(stream),
                    len,
                )
                .file_name(name.clone())
                .mime_str("application/octet-stream")
                .map_err(|e| ApiError::Config(format!("bad MIME type: {e}")))?;
                let form = reqwest::multipart::Form::new()
                    .text("access_token", token.access_token.clone())
                    .text("account_id", token.account_id.clone())
                    .text(
                        "folder_id",
                        folder.map(|f| f.to_string()).unwrap_or_default(),
                    )
                    .part("upload_file", part);
                Ok(self
                    .http()
                    .post(format!("{}{}", self.api_url(), EP))
                    .multipart(form))
            })
            .await?
        };
        let (sent_md5, sent_len) = hashes
            .lock()
            .ok()
            .and_then(|h| h.last().and_then(SharedMd5::finish))
            .ok_or_else(|| ApiError::Config("upload hash state lost".into()))?;

        let first = match env.get("data") {
            Some(serde_json::Value::Array(a)) => a.first().cloned(),
            Some(v @ serde_json::Value::Object(_)) => Some(v.clone()),
            _ => None,
        }
        .ok_or_else(|| ApiError::Protocol {
            endpoint: EP,
            detail: "no uploaded file in the answer".into(),
        })?;
        let raw: RawUploaded = serde_json::from_value(first).map_err(|e| ApiError::Protocol {
            endpoint: EP,
            detail: format!("upload answer not understood: {e}"),
        })?;
        if let Some(err) = raw.error.as_ref().filter(|e| !e.is_null()) {
            let message = match err {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            return Err(ApiError::Api {
                endpoint: EP,
                message,
            });
        }
        let id = raw.file_id.map(FileId).ok_or_else(|| ApiError::Protocol {
            endpoint: EP,
            detail: "no file_id in the upload answer".into(),
        })?;
        let uploaded = UploadedFile {
            id,
            name: raw.name.unwrap_or_else(|| name.to_owned()),
            size: raw.size.unwrap_or(sent_len),
            md5: raw.hash.unwrap_or_default().to_ascii_lowercase(),
            short_url: raw.short_url,
            url: raw.url,
        };
        let what = format!("upload of {}", path.display());
        let detail = if sent_len != len {
            Some(format!(
                "the file changed while it was read ({len} bytes expected, {sent_len} sent)"
            ))
        } else if uploaded.size != len || (!uploaded.md5.is_empty() && uploaded.md5 != sent_md5) {
            Some(format!(
                "host stored {} bytes with MD5 {}, sent {len} bytes with MD5 {sent_md5}",
                uploaded.size, uploaded.md5
            ))
        } else {
            None
        };
        if let Some(detail) = detail {
            // What the host stored is not what the caller meant to send:
            // it must not stay there.
            return Err(match self.file_delete(uploaded.id).await {
                Ok(()) => ApiError::Integrity { what, detail },
                Err(e) if e.is_not_found() => ApiError::Integrity { what, detail },
                Err(e) => ApiError::LeftOnHost {
                    what,
                    detail,
                    id: uploaded.id,
                    cause: e.to_string(),
                },
            });
        }
        Ok(uploaded)
    }

    /// Downloads file `id` into `dest`, resuming from `dest`'s current length
    /// when it is a strict prefix of a file of known size. Checks size and
    /// MD5 when `expected` knows them; fsyncs before returning.
    ///
    /// On failure `dest` may hold a partial file that a later call can resume.
    pub async fn download_file(
        &self,
        id: FileId,
        dest: &Path,
        expected: &Expected,
        progress: Option<Progress>,
    ) -> Result<Downloaded, ApiError> {
        const EP: &str = "download";
        let what = format!("download of file {id} to {}", dest.display());
        // A partial file is private (0600) until its owner places it, and a
        // symlink planted where it goes is never followed.
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(dest)
            .await
            .map_err(io_err(dest))?;
        let mut have = file.metadata().await.map_err(io_err(dest))?.len();
        if expected.size.is_none_or(|s| have > s) {
            have = 0;
        }
        // The MD5 of the bytes already on disk.
        let mut md5 = Md5::new();
        if have > 0 {
            let mut buf = vec![0u8; 256 * 1024];
            let mut left = have;
            file.seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(io_err(dest))?;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = file.read(&mut buf[..want]).await.map_err(io_err(dest))?;
                if n == 0 {
                    break;
                }
                md5.update(&buf[..n]);
                left -= n as u64;
            }
            have -= left;
        }
        file.set_len(have).await.map_err(io_err(dest))?;
        file.seek(std::io::SeekFrom::Start(have))
            .await
            .map_err(io_err(dest))?;

        let policy = self.retry_policy().clone();
        let mut link: Option<DownloadLink> = None;
        let mut retry = 0u32;
        loop {
            if Some(have) == expected.size && have > 0 {
                break; // everything is already here
            }
            let l = match &link {
                Some(l) => l.clone(),
                None => {
                    let l = self.download_link(id).await?;
                    link = Some(l.clone());
                    l
                }
            };
            match self
                .fetch_into(
                    &l, &mut file, &mut md5, &mut have, expected, &progress, dest,
                )
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    let restart = matches!(e, ApiError::Integrity { .. });
                    if !(e.is_retryable() || restart) || retry + 1 >= policy.max_attempts {
                        file.flush().await.map_err(io_err(dest))?;
                        return Err(e);
                    }
                    retry += 1;
                    if restart {
                        // Wrong bytes (e.g. an HTML page for an expired link):
                        // start over with a fresh link.
                        link = None;
                        have = 0;
                        md5 = Md5::new();
                        file.set_len(0).await.map_err(io_err(dest))?;
                        file.seek(std::io::SeekFrom::Start(0))
                            .await
                            .map_err(io_err(dest))?;
                    }
                    let delay = policy.delay(retry, None, rand::random::<f64>());
                    tracing::debug!(endpoint = EP, retry, have, error = %e, "download interrupted; resuming");
                    tokio::time::sleep(delay).await;
                }
            }
        }
        file.flush().await.map_err(io_err(dest))?;
        file.sync_all().await.map_err(io_err(dest))?;
        let got = hex::encode(md5.finalize());
        if let Some(want) = &expected.md5
            && !want.eq_ignore_ascii_case(&got)
        {
            return Err(ApiError::Integrity {
                what,
                detail: format!("MD5 is {got}, the host said {want}"),
            });
        }
        Ok(Downloaded {
            size: have,
            md5: got,
        })
    }

    /// One GET of the download URL, appending to `file` from offset `*have`.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_into(
        &self,
        link: &DownloadLink,
        file: &mut tokio::fs::File,
        md5: &mut Md5,
        have: &mut u64,
        expected: &Expected,
        progress: &Option<Progress>,
        dest: &Path,
    ) -> Result<(), ApiError> {
        const EP: &str = "download";
        let what = || format!("download of file {} to {}", link.file_id, dest.display());
        let mut rb = self.http_download().get(&link.url);
        if *have > 0 {
            rb = rb.header(reqwest::header::RANGE, format!("bytes={}-", *have));
        }
        let resp = rb.send().await.map_err(|e| transport(EP, e))?;
        let status = resp.status().as_u16();
        match status {
            206 => {
                let start = resp
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if start != Some(*have) {
                    return Err(ApiError::Integrity {
                        what: what(),
                        detail: format!("asked for bytes from {have}, got range start {start:?}"),
                    });
                }
            }
            200 => {
                if *have > 0 {
                    // The host ignored the range: take the whole file again.
                    *have = 0;
                    *md5 = Md5::new();
                    file.set_len(0).await.map_err(io_err(dest))?;
                    file.seek(std::io::SeekFrom::Start(0))
                        .await
                        .map_err(io_err(dest))?;
                }
            }
            _ => {
                let retry_after = super::client::parse_retry_after(resp.headers());
                let body = resp.bytes().await.unwrap_or_default();
                return Err(match decode_response(EP, status, retry_after, &body) {
                    Err(e) => e,
                    Ok(_) => ApiError::Server {
                        endpoint: EP,
                        status,
                        snippet: String::new(),
                    },
                });
            }
        }
        let announced = resp.content_length().map(|n| n + *have);
        if let (Some(a), Some(s)) = (announced, expected.size)
            && a != s
        {
            return Err(ApiError::Integrity {
                what: what(),
                detail: format!("the host offers {a} bytes, expected {s}"),
            });
        }
        let mut body = resp.bytes_stream();
        let bandwidth = self.bandwidth();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| transport(EP, e))?;
            bandwidth.pace(Direction::Down, chunk.len()).await;
            if let Some(s) = expected.size
                && *have + chunk.len() as u64 > s
            {
                return Err(ApiError::Integrity {
                    what: what(),
                    detail: format!("the host sent more than the expected {s} bytes"),
                });
            }
            file.write_all(&chunk).await.map_err(io_err(dest))?;
            md5.update(&chunk);
            *have += chunk.len() as u64;
            if let Some(p) = progress {
                p(*have);
            }
        }
        let want = expected.size.or(announced);
        if let Some(w) = want
            && *have < w
        {
            // Connection ended early: a transport failure, resumable.
            return Err(ApiError::Transport {
                endpoint: EP,
                detail: format!("answer ended after {have} of {w} bytes"),
                not_sent: false,
            });
        }
        Ok(())
    }
}
