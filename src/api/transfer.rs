//! Streaming file transfers: upload from a file and download to a file.
//!
//! Owns: streaming bodies (never a whole file in memory), the MD5 computed on
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
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

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
        let len = tokio::fs::metadata(path).await.map_err(io_err(path))?.len();
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
                let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
                // A blocking thread reads and hashes ahead while the
                // connection sends: the MD5 is off the send's path.
                let stream = read_ahead(file, md5).then(move |chunk| {
                    let (bandwidth, progress, sent) =
                        (bandwidth.clone(), progress.clone(), sent.clone());
                    async move {
                        if let Ok(c) = &chunk {
                            // Held back under `bwlimit`, shared with every
                            // other transfer of this client.
                            bandwidth.pace(Direction::Up, c.len()).await;
                            let done =
                                sent.fetch_add(c.len() as u64, Ordering::Relaxed) + c.len() as u64;
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
        let at = dest.to_path_buf();
        let size = expected.size;
        let mut disk = on_disk(dest, move || Disk::open(&at, size)).await?;

        let policy = self.retry_policy().clone();
        let mut link: Option<DownloadLink> = None;
        let mut retry = 0u32;
        loop {
            if Some(disk.have) == expected.size && disk.have > 0 {
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
            let (back, result) = self.fetch_into(&l, disk, expected, &progress, dest).await?;
            disk = back;
            match result {
                Ok(()) => break,
                Err(e) => {
                    let restart = matches!(e, ApiError::Integrity { .. });
                    if !(e.is_retryable() || restart) || retry + 1 >= policy.max_attempts {
                        return Err(e);
                    }
                    retry += 1;
                    if restart {
                        // Wrong bytes (e.g. an HTML page for an expired link):
                        // start over with a fresh link.
                        link = None;
                        disk = on_disk(dest, move || disk.restart().map(|()| disk)).await?;
                    }
                    let delay = policy.delay(retry, None, rand::random::<f64>());
                    tracing::debug!(endpoint = EP, retry, have = disk.have, error = %e, "download interrupted; resuming");
                    tokio::time::sleep(delay).await;
                }
            }
        }
        let disk = on_disk(dest, move || disk.file.sync_all().map(|()| disk)).await?;
        let got = hex::encode(disk.md5.finalize());
        if let Some(want) = &expected.md5
            && !want.eq_ignore_ascii_case(&got)
        {
            return Err(ApiError::Integrity {
                what,
                detail: format!("MD5 is {got}, the host said {want}"),
            });
        }
        Ok(Downloaded {
            size: disk.have,
            md5: got,
        })
    }

    /// One GET of the download URL, appending to the file from `disk.have`.
    /// Gives `disk` back with what reached it, and the GET's outcome; the
    /// outer error is for a disk side that could not be given back.
    async fn fetch_into(
        &self,
        link: &DownloadLink,
        mut disk: Disk,
        expected: &Expected,
        progress: &Option<Progress>,
        dest: &Path,
    ) -> Result<(Disk, Result<(), ApiError>), ApiError> {
        const EP: &str = "download";
        let what = || format!("download of file {} to {}", link.file_id, dest.display());
        let mut rb = self.http_download().get(&link.url);
        if disk.have > 0 {
            rb = rb.header(reqwest::header::RANGE, format!("bytes={}-", disk.have));
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Ok((disk, Err(transport(EP, e)))),
        };
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
                if start != Some(disk.have) {
                    let detail = format!(
                        "asked for bytes from {}, got range start {start:?}",
                        disk.have
                    );
                    return Ok((
                        disk,
                        Err(ApiError::Integrity {
                            what: what(),
                            detail,
                        }),
                    ));
                }
            }
            200 => {
                if disk.have > 0 {
                    // The host ignored the range: take the whole file again.
                    disk = on_disk(dest, move || disk.restart().map(|()| disk)).await?;
                }
            }
            _ => {
                let retry_after = super::client::parse_retry_after(resp.headers());
                let body = resp.bytes().await.unwrap_or_default();
                let e = match decode_response(EP, status, retry_after, &body) {
                    Err(e) => e,
                    Ok(_) => ApiError::Server {
                        endpoint: EP,
                        status,
                        snippet: String::new(),
                    },
                };
                return Ok((disk, Err(e)));
            }
        }
        let announced = resp.content_length().map(|n| n + disk.have);
        if let (Some(a), Some(s)) = (announced, expected.size)
            && a != s
        {
            let detail = format!("the host offers {a} bytes, expected {s}");
            return Ok((
                disk,
                Err(ApiError::Integrity {
                    what: what(),
                    detail,
                }),
            ));
        }
        // A blocking thread writes and hashes while the connection
        // receives: the disk and the MD5 are off the network's path.
        let mut queued = disk.have;
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(WRITE_AHEAD);
        let writer = tokio::task::spawn_blocking(move || disk.write_all_from(rx));
        let mut body = resp.bytes_stream();
        let bandwidth = self.bandwidth();
        let received: Result<(), ApiError> = loop {
            let Some(chunk) = body.next().await else {
                break Ok(());
            };
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => break Err(transport(EP, e)),
            };
            bandwidth.pace(Direction::Down, chunk.len()).await;
            if let Some(s) = expected.size
                && queued + chunk.len() as u64 > s
            {
                break Err(ApiError::Integrity {
                    what: what(),
                    detail: format!("the host sent more than the expected {s} bytes"),
                });
            }
            queued += chunk.len() as u64;
            if tx.send(chunk).await.is_err() {
                break Ok(()); // the writer stopped: its error follows
            }
            if let Some(p) = progress {
                p(queued);
            }
        };
        drop(tx);
        let (disk, written) = writer.await.map_err(|e| ApiError::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::other(format!("the download's writer stopped: {e}")),
        })?;
        if let Err(e) = written {
            return Ok((disk, Err(io_err(dest)(e))));
        }
        if let Err(e) = received {
            return Ok((disk, Err(e)));
        }
        let have = disk.have;
        if let Some(w) = expected.size.or(announced)
            && have < w
        {
            // Connection ended early: a transport failure, resumable.
            let e = ApiError::Transport {
                endpoint: EP,
                detail: format!("answer ended after {have} of {w} bytes"),
                not_sent: false,
            };
            return Ok((disk, Err(e)));
        }
        Ok((disk, Ok(())))
    }
}

/// Chunks read ahead of the connection when uploading (of [`CHUNK`] bytes).
const READ_AHEAD: usize = 8;
/// Chunks received ahead of the disk when downloading.
const WRITE_AHEAD: usize = 64;
/// Bytes per read of a file being uploaded.
const CHUNK: usize = 256 * 1024;

/// Reads `file` to its end on a blocking thread, feeding `md5`, a few
/// chunks ahead of whoever takes them.
fn read_ahead(
    mut file: std::fs::File,
    md5: SharedMd5,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    use std::io::Read;
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    md5.update(&buf);
                    if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                        break; // the request was dropped
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

/// The local side of a download: the partial file, the MD5 of what it
/// holds, and its length. Used on blocking threads only.
struct Disk {
    file: std::fs::File,
    md5: Md5,
    have: u64,
}

impl Disk {
    /// Opens `dest` for a download of `size` bytes (if known), keeping a
    /// prefix of it that can be resumed. A partial file is private (0600)
    /// until its owner places it, and a symlink planted where it goes is
    /// never followed.
    fn open(dest: &Path, size: Option<u64>) -> std::io::Result<Disk> {
        use std::io::{Read, Seek};
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(dest)?;
        let mut have = file.metadata()?.len();
        if size.is_none_or(|s| have > s) {
            have = 0;
        }
        // The MD5 of the bytes already on disk.
        let mut md5 = Md5::new();
        if have > 0 {
            let mut buf = vec![0u8; CHUNK];
            let mut left = have;
            file.seek(std::io::SeekFrom::Start(0))?;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = file.read(&mut buf[..want])?;
                if n == 0 {
                    break;
                }
                md5.update(&buf[..n]);
                left -= n as u64;
            }
            have -= left;
        }
        file.set_len(have)?;
        file.seek(std::io::SeekFrom::Start(have))?;
        Ok(Disk { file, md5, have })
    }

    /// Empties the file to take it whole again.
    fn restart(&mut self) -> std::io::Result<()> {
        use std::io::Seek;
        self.file.set_len(0)?;
        self.file.seek(std::io::SeekFrom::Start(0))?;
        self.md5 = Md5::new();
        self.have = 0;
        Ok(())
    }

    /// Appends every chunk from `rx` until it closes or a write fails.
    fn write_all_from(
        mut self,
        mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    ) -> (Disk, std::io::Result<()>) {
        use std::io::Write;
        while let Some(c) = rx.blocking_recv() {
            if let Err(e) = self.file.write_all(&c) {
                return (self, Err(e));
            }
            self.md5.update(&c);
            self.have += c.len() as u64;
        }
        (self, Ok(()))
    }
}

/// Runs disk work for a download of `dest` on a blocking thread.
async fn on_disk<T: Send + 'static>(
    dest: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(io_err(dest)),
        Err(e) => Err(ApiError::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::other(format!("disk work stopped: {e}")),
        }),
    }
}
