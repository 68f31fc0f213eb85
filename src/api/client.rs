//! The HTTP client for the File Upload API v2: one method per endpoint.
//!
//! Owns: request encoding (form fields), envelope decoding (`_status` or
//! `status`), error classification, transparent re-authorization when a token
//! is rejected, and bounded retries with backoff for transient failures.
//! Non-idempotent calls (upload, copy, folder create, URL import) are never
//! repeated when the host may already have carried them out; they fail with
//! [`ApiError::OutcomeUnknown`] so the caller can look before trying again.
//! Never logs or returns a token, a key or a download URL.

use super::auth::{Credentials, Token, TokenStore};
use super::error::{ApiError, classify_message};
use super::retry::RetryPolicy;
use super::types::*;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Everything needed to build a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Base URL of the API, e.g. `https://disccloud.com/api/v2/`.
    pub api_url: String,
    pub credentials: Credentials,
    /// Where the access token is shared with other processes.
    pub token_store: TokenStore,
    pub retry: RetryPolicy,
    /// Connect timeout; transfers themselves have no overall timeout.
    pub connect_timeout: Duration,
    /// Longest silence allowed while waiting for bytes of an answer.
    pub read_timeout: Duration,
    /// Upper bound on API requests per second from this client (all
    /// endpoints; file content transfers are not counted). `None`: no bound.
    pub max_requests_per_second: Option<f64>,
    /// The bandwidth limit file transfers share (`bwlimit`); `None`: none.
    pub bandwidth: Option<Arc<super::bwlimit::Bandwidth>>,
}

impl ClientOptions {
    /// Options with defaults for everything but the host and credentials.
    pub fn new(api_url: impl Into<String>, credentials: Credentials) -> Self {
        let api_url = api_url.into();
        let token_store = TokenStore::default_for(&credentials.account_key(&api_url));
        ClientOptions {
            api_url,
            credentials,
            token_store,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(120),
            max_requests_per_second: None,
            bandwidth: None,
        }
    }
}

/// Whether a request may be repeated when its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Reads, and writes whose repetition changes nothing (edit, move).
    Safe,
    /// Writes that would be done twice (upload, copy, create).
    Unsafe,
}

/// A cheap-to-clone handle on one account of one host.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// Shared connection pool for API calls (never follows redirects).
    http: reqwest::Client,
    /// For file downloads (follows up to 5 redirects).
    http_download: reqwest::Client,
    /// How long an answer may take (for messages).
    read_timeout: Duration,
    /// API base, always ending with `/`.
    base: String,
    credentials: Credentials,
    store: TokenStore,
    retry: RetryPolicy,
    /// The token this process uses; `None` until first needed.
    token: Mutex<Option<Token>>,
    /// The request-rate bound shared by every task using this client.
    limiter: Option<Limiter>,
    /// API requests sent so far (for reports and benchmarks).
    requests: std::sync::atomic::AtomicU64,
    /// Answers that said to slow down (HTTP 429), for `/metrics`.
    throttled: std::sync::atomic::AtomicU64,
    /// Paces the bytes of every transfer of this client and its clones.
    bandwidth: Arc<super::bwlimit::Bandwidth>,
}

type Limiter = governor::DefaultDirectRateLimiter;

fn limiter(rps: Option<f64>) -> Result<Option<Limiter>, ApiError> {
    let Some(rps) = rps else { return Ok(None) };
    if !(rps.is_finite() && rps > 0.0) {
        return Err(ApiError::Config(format!(
            "max_requests_per_second must be a positive number, not {rps}"
        )));
    }
    let period = Duration::from_secs_f64(1.0 / rps);
    // Allow a burst of about one second's worth of requests.
    let burst = std::num::NonZeroU32::new(rps.ceil().clamp(1.0, 1000.0) as u32)
        .unwrap_or(std::num::NonZeroU32::MIN);
    let quota = governor::Quota::with_period(period)
        .ok_or_else(|| ApiError::Config("max_requests_per_second is too large".into()))?
        .allow_burst(burst);
    Ok(Some(governor::RateLimiter::direct(quota)))
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .field("credentials", &self.inner.credentials)
            .finish()
    }
}

/// Parsed success envelope.
pub(crate) type Envelope = Map<String, Value>;

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client, ApiError> {
        let mut base = opts.api_url.trim().to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ApiError::Config(format!(
                "api_url {base:?} must start with https:// (or http:// for a local emulator)"
            )));
        }
        if !base.ends_with('/') {
            base.push('/');
        }
        // API calls carry the keys (or the token): a redirect is never
        // followed, so they can never be re-sent to another origin. Only
        // downloads (a GET of a tokenised file URL) follow redirects.
        let build = |redirect: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .connect_timeout(opts.connect_timeout)
                .read_timeout(opts.read_timeout)
                .user_agent(concat!("dcsync/", env!("CARGO_PKG_VERSION")))
                .redirect(redirect)
                .build()
                .map_err(|e| ApiError::Config(format!("cannot build the HTTP client: {e}")))
        };
        let http = build(reqwest::redirect::Policy::none())?;
        let http_download = build(reqwest::redirect::Policy::limited(5))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                http_download,
                read_timeout: opts.read_timeout,
                base,
                credentials: opts.credentials,
                store: opts.token_store,
                retry: opts.retry,
                token: Mutex::new(None),
                limiter: limiter(opts.max_requests_per_second)?,
                requests: std::sync::atomic::AtomicU64::new(0),
                throttled: std::sync::atomic::AtomicU64::new(0),
                bandwidth: opts.bandwidth.unwrap_or_default(),
            }),
        })
    }

    /// How many API requests this client (and its clones) has sent.
    pub fn requests_sent(&self) -> u64 {
        self.inner
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many answers said to slow down (HTTP 429).
    pub fn throttled(&self) -> u64 {
        self.inner
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The bandwidth limit this client's transfers share (changed at run
    /// time through it).
    pub fn bandwidth(&self) -> Arc<super::bwlimit::Bandwidth> {
        self.inner.bandwidth.clone()
    }

    /// The API base URL (no secrets in it).
    pub fn api_url(&self) -> &str {
        &self.inner.base
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The HTTP client for file downloads (follows redirects; the request
    /// carries no account credential, only the file's download token).
    pub(crate) fn http_download(&self) -> &reqwest::Client {
        &self.inner.http_download
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    // ---------------------------------------------------------------- tokens

    /// The token to use: this process's, else the shared one, else a new one.
    pub(crate) async fn token(&self) -> Result<Token, ApiError> {
        let mut guard = self.inner.token.lock().await;
        if let Some(t) = guard.as_ref() {
            return Ok(t.clone());
        }
        if let Some(t) = self.inner.store.load() {
            *guard = Some(t.clone());
            return Ok(t);
        }
        let t = self.authorize_shared(None).await?;
        *guard = Some(t.clone());
        Ok(t)
    }

    /// Called when `rejected` was refused: gets a token that is not `rejected`,
    /// reusing one another process stored meanwhile, else authorizing.
    async fn replace_token(&self, rejected: &Token) -> Result<Token, ApiError> {
        let mut guard = self.inner.token.lock().await;
        if let Some(t) = guard.as_ref()
            && t != rejected
        {
            return Ok(t.clone()); // another task of this process already replaced it
        }
        let t = self.authorize_shared(Some(rejected)).await?;
        *guard = Some(t.clone());
        Ok(t)
    }

    /// Authorizes under the cross-process lock, unless the shared file already
    /// holds a token other than `rejected`.
    async fn authorize_shared(&self, rejected: Option<&Token>) -> Result<Token, ApiError> {
        let store = self.inner.store.clone();
        let lock_path = match &store {
            TokenStore::File { path } => path.clone(),
            TokenStore::Memory => Default::default(),
        };
        let lock = tokio::task::spawn_blocking(move || store.lock())
            .await
            .map_err(|e| ApiError::Config(format!("token lock task failed: {e}")))?
            .map_err(|source| ApiError::Io {
                path: lock_path,
                source,
            })?;
        if let Some(shared) = self.inner.store.load()
            && Some(&shared) != rejected
        {
            return Ok(shared);
        }
        let token = self.authorize().await?;
        if let Err(e) = self.inner.store.save(&token) {
            tracing::warn!(error = %e, "could not store the access token for other dcsync processes; they will have to authorize again");
        }
        drop(lock);
        Ok(token)
    }

    /// `/authorize`: a fresh token. Logs out every other token of the account,
    /// so it is only called through [`Client::token`] and re-authorization.
    async fn authorize(&self) -> Result<Token, ApiError> {
        const EP: &str = "authorize";
        let fields = self.inner.credentials.form();
        let mut retry = 0;
        loop {
            let rb = self.post(EP).form(&fields);
            match self.send_once(EP, rb).await {
                Ok(env) => {
                    let data = data_object(EP, &env)?;
                    let access_token =
                        string_field(data, "access_token").ok_or_else(|| ApiError::Protocol {
                            endpoint: EP,
                            detail: "no access_token in the answer".into(),
                        })?;
                    let account_id =
                        string_field(data, "account_id").ok_or_else(|| ApiError::Protocol {
                            endpoint: EP,
                            detail: "no account_id in the answer".into(),
                        })?;
                    tracing::debug!("authorized a new access token");
                    return Ok(Token {
                        access_token,
                        account_id,
                    });
                }
                Err(ApiError::TokenRejected { message, .. }) => {
                    return Err(ApiError::BadCredentials { message });
                }
                Err(e) if is_transient(&e) && !self.give_up(retry + 1, &e) => {
                    retry += 1;
                    self.backoff(EP, retry, &e).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether a request that failed with `e` after `attempts` attempts is
    /// not tried again: out of attempts, or of patience with a host that
    /// does not answer at all.
    fn give_up(&self, attempts: u32, e: &ApiError) -> bool {
        let policy = &self.inner.retry;
        attempts >= policy.max_attempts || (is_timeout(e) && attempts >= policy.max_timeouts)
    }

    // ------------------------------------------------------------- requests

    fn post(&self, endpoint: &str) -> reqwest::RequestBuilder {
        self.inner
            .http
            .post(format!("{}{}", self.inner.base, endpoint))
    }

    async fn backoff(&self, endpoint: &'static str, retry: u32, err: &ApiError) {
        let retry_after = match err {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        };
        let delay = self
            .inner
            .retry
            .delay(retry, retry_after, rand::random::<f64>());
        if is_timeout(err) {
            // Say it at once: a silent wait of minutes looks like a hang.
            tracing::warn!(
                endpoint,
                "the host at {} is not answering (no answer within {} s); trying again \
                 (attempt {} of {})",
                self.inner.base,
                self.inner.read_timeout.as_secs(),
                retry + 1,
                self.inner
                    .retry
                    .max_timeouts
                    .min(self.inner.retry.max_attempts)
            );
        } else {
            tracing::debug!(endpoint, retry, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
        }
        tokio::time::sleep(delay).await;
    }

    /// Calls an endpoint with form fields (token fields added here).
    pub(crate) async fn call(
        &self,
        endpoint: &'static str,
        idem: Idempotency,
        fields: &[(&'static str, String)],
    ) -> Result<Envelope, ApiError> {
        self.call_as(endpoint, idem, fields, decode_response).await
    }

    /// [`Client::call`], with the answer decoded by `decode` (which also
    /// classifies errors, as [`decode_response`] does).
    async fn call_as<T>(
        &self,
        endpoint: &'static str,
        idem: Idempotency,
        fields: &[(&'static str, String)],
        decode: Decode<T>,
    ) -> Result<T, ApiError> {
        self.call_with_as(
            endpoint,
            idem,
            |token| {
                let mut form: Vec<(&str, &str)> = vec![
                    ("access_token", token.access_token.as_str()),
                    ("account_id", token.account_id.as_str()),
                ];
                form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
                Ok(self.post(endpoint).form(&form))
            },
            decode,
        )
        .await
    }

    /// The request loop: token, send, re-authorize once, retry transient
    /// failures with backoff. `build` makes a fresh request for each attempt.
    pub(crate) async fn call_with<F>(
        &self,
        endpoint: &'static str,
        idem: Idempotency,
        build: F,
    ) -> Result<Envelope, ApiError>
    where
        F: Fn(&Token) -> Result<reqwest::RequestBuilder, ApiError>,
    {
        self.call_with_as(endpoint, idem, build, decode_response)
            .await
    }

    /// [`Client::call_with`], with the answer decoded by `decode`.
    async fn call_with_as<T, F>(
        &self,
        endpoint: &'static str,
        idem: Idempotency,
        build: F,
        decode: Decode<T>,
    ) -> Result<T, ApiError>
    where
        F: Fn(&Token) -> Result<reqwest::RequestBuilder, ApiError>,
    {
        let mut retry = 0u32;
        let mut reauthorized = false;
        loop {
            let token = self.token().await?;
            let rb = build(&token)?;
            let err = match self.send_once_as(endpoint, rb, decode).await {
                Ok(env) => return Ok(env),
                Err(e) => e,
            };
            match err {
                ApiError::TokenRejected { .. } if !reauthorized => {
                    // The host validates the token before doing anything, so
                    // even a non-idempotent call can be sent again.
                    tracing::debug!(endpoint, "access token rejected; authorizing again");
                    reauthorized = true;
                    self.replace_token(&token).await?;
                }
                e if is_transient(&e) => {
                    if idem == Idempotency::Unsafe && e.may_have_been_applied() {
                        return Err(ApiError::OutcomeUnknown {
                            endpoint,
                            source: Box::new(e),
                        });
                    }
                    retry += 1;
                    if self.give_up(retry, &e) {
                        return Err(e);
                    }
                    self.backoff(endpoint, retry, &e).await;
                }
                e => return Err(e),
            }
        }
    }

    /// One HTTP exchange, decoded into a success envelope or a classified error.
    async fn send_once(
        &self,
        endpoint: &'static str,
        rb: reqwest::RequestBuilder,
    ) -> Result<Envelope, ApiError> {
        self.send_once_as(endpoint, rb, decode_response).await
    }

    /// [`Client::send_once`], with the answer decoded by `decode`.
    async fn send_once_as<T>(
        &self,
        endpoint: &'static str,
        rb: reqwest::RequestBuilder,
        decode: Decode<T>,
    ) -> Result<T, ApiError> {
        if let Some(l) = &self.inner.limiter {
            l.until_ready().await;
        }
        self.inner
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resp = rb.send().await.map_err(|e| transport(endpoint, e))?;
        let status = resp.status().as_u16();
        if status == 429 {
            self.inner
                .throttled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if resp.status().is_redirection() {
            // Never followed (the request carries credentials): say where
            // it pointed, without the query (it could hold a token).
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split('?').next().unwrap_or_default().to_owned())
                .unwrap_or_default();
            return Err(ApiError::Config(format!(
                "{endpoint}: the host answered {status}, a redirect to {to:?}; dcsync does not follow \
                 redirects of API calls (they carry your keys). Check api_url (https://? the right host?)"
            )));
        }
        let retry_after = parse_retry_after(resp.headers());
        let body = resp.bytes().await.map_err(|e| transport(endpoint, e))?;
        let hint = |detail: &str| {
            format!(
                "{detail} from {}{endpoint}; check api_url in the config (the API's base usually \
                 ends in /api/v2/)",
                self.inner.base
            )
        };
        decode(endpoint, status, retry_after, &body).map_err(|e| match e {
            // Not the API at all: say which URL was called and what to check.
            ApiError::Protocol { endpoint, detail } if detail.contains("JSON") => {
                ApiError::Protocol {
                    endpoint,
                    detail: hint(&detail),
                }
            }
            ApiError::Config(detail) if detail.contains("JSON") => ApiError::Config(hint(&detail)),
            other => other,
        })
    }

    // ------------------------------------------------------------ endpoints

    /// `/disable_access_token`: ends this account's shared token for every
    /// dcsync process on this machine.
    pub async fn disable_access_token(&self) -> Result<(), ApiError> {
        const EP: &str = "disable_access_token";
        let token = {
            let guard = self.inner.token.lock().await;
            guard.clone().or_else(|| self.inner.store.load())
        };
        let Some(token) = token else {
            return Ok(()); // nothing to disable
        };
        let form = [
            ("access_token", token.access_token.as_str()),
            ("account_id", token.account_id.as_str()),
        ];
        let mut retry = 0;
        let result = loop {
            match self.send_once(EP, self.post(EP).form(&form)).await {
                Err(e) if is_transient(&e) && retry + 1 < self.inner.retry.max_attempts => {
                    retry += 1;
                    self.backoff(EP, retry, &e).await;
                }
                other => break other,
            }
        };
        match result {
            // An already expired token is as good as disabled.
            Ok(_) | Err(ApiError::TokenRejected { .. }) => {
                *self.inner.token.lock().await = None;
                if let Err(e) = self.inner.store.clear() {
                    tracing::warn!(error = %e, "could not remove the stored access token");
                }
                Ok(())
            }
            // Still valid on the host: keep it known here too.
            Err(e) => Err(e),
        }
    }

    /// `/account/info`.
    pub async fn account_info(&self) -> Result<AccountInfo, ApiError> {
        const EP: &str = "account/info";
        let env = self.call(EP, Idempotency::Safe, &[]).await?;
        decode_data(EP, &env)
    }

    /// `/account/package`.
    pub async fn account_package(&self) -> Result<Package, ApiError> {
        const EP: &str = "account/package";
        let env = self.call(EP, Idempotency::Safe, &[]).await?;
        decode_data(EP, &env)
    }

    /// `/file/info`. Succeeds for trashed files too (see `status`).
    pub async fn file_info(&self, id: FileId) -> Result<RemoteFile, ApiError> {
        const EP: &str = "file/info";
        let env = self
            .call(EP, Idempotency::Safe, &[("file_id", id.to_string())])
            .await?;
        decode_file(EP, data_value(EP, &env)?)
    }

    /// `/file/edit`: rename and/or change the MIME type. The host does not
    /// check for another file of the same name in the folder.
    pub async fn file_edit(
        &self,
        id: FileId,
        new_name: Option<&str>,
        file_type: Option<&str>,
    ) -> Result<RemoteFile, ApiError> {
        const EP: &str = "file/edit";
        let mut fields = vec![("file_id", id.to_string())];
        if let Some(n) = new_name {
            fields.push(("filename", n.to_owned()));
        }
        if let Some(t) = file_type {
            fields.push(("fileType", t.to_owned()));
        }
        let env = self.call(EP, Idempotency::Safe, &fields).await?;
        decode_file(EP, data_value(EP, &env)?)
    }

    /// Renames a file (`/file/edit` with a filename).
    pub async fn file_rename(&self, id: FileId, new_name: &str) -> Result<RemoteFile, ApiError> {
        self.file_edit(id, Some(new_name), None).await
    }

    /// `/file/delete`: moves the file to the host's trash.
    pub async fn file_delete(&self, id: FileId) -> Result<(), ApiError> {
        const EP: &str = "file/delete";
        let fields = [("file_id", id.to_string())];
        match self.call(EP, Idempotency::Unsafe, &fields).await {
            Ok(_) => Ok(()),
            Err(ApiError::OutcomeUnknown { source, .. }) => {
                // Repeating a delete that went through answers "not found";
                // look instead.
                match self.file_info(id).await {
                    Ok(f) if f.status != FileStatus::Active => Ok(()),
                    Ok(_) => self.call(EP, Idempotency::Safe, &fields).await.map(|_| ()),
                    Err(_) => Err(*source),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `/file/move`: `None` moves to the account root.
    pub async fn file_move(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> Result<RemoteFile, ApiError> {
        const EP: &str = "file/move";
        let fields = [
            ("file_id", id.to_string()),
            ("new_parent_folder_id", folder_param(to)),
        ];
        let env = self.call(EP, Idempotency::Safe, &fields).await?;
        decode_file(EP, data_value(EP, &env)?)
    }

    /// `/file/copy`: a server-side copy into `to` (`None` = root), same name.
    pub async fn file_copy(
        &self,
        id: FileId,
        to: Option<FolderId>,
    ) -> Result<CopyResult, ApiError> {
        const EP: &str = "file/copy";
        let fields = [
            ("file_id", id.to_string()),
            ("copy_to_folder_id", folder_param(to)),
        ];
        let env = self.call(EP, Idempotency::Unsafe, &fields).await?;
        let part = |key: &str| -> Result<RemoteFile, ApiError> {
            let v = env
                .get(key)
                .and_then(|o| o.get("data"))
                .ok_or_else(|| ApiError::Protocol {
                    endpoint: EP,
                    detail: format!("no {key}.data in the answer"),
                })?;
            decode_file(EP, v)
        };
        Ok(CopyResult {
            original: part("original_file")?,
            copy: part("new_file")?,
        })
    }

    /// `/file/download`: a download URL (valid about a day, reusable).
    pub async fn download_link(&self, id: FileId) -> Result<DownloadLink, ApiError> {
        const EP: &str = "file/download";
        let env = self
            .call(EP, Idempotency::Safe, &[("file_id", id.to_string())])
            .await?;
        let raw: RawDownload = decode_data(EP, &env)?;
        let url = raw.download_url.ok_or_else(|| ApiError::Protocol {
            endpoint: EP,
            detail: "no download_url in the answer".into(),
        })?;
        Ok(DownloadLink {
            file_id: raw.file_id.map(FileId).unwrap_or(id),
            filename: raw.filename.unwrap_or_default(),
            url,
        })
    }

    /// `/file/url_upload_add`: asks the host to fetch `url` into `folder`.
    pub async fn url_upload_add(
        &self,
        url: &str,
        folder: Option<FolderId>,
    ) -> Result<UrlUploadScheduled, ApiError> {
        use base64::Engine;
        const EP: &str = "file/url_upload_add";
        let mut fields = vec![(
            "file_url_base64",
            base64::engine::general_purpose::STANDARD.encode(url.as_bytes()),
        )];
        if let Some(f) = folder {
            fields.push(("folder_id", f.to_string()));
        }
        let env = self.call(EP, Idempotency::Unsafe, &fields).await?;
        let s: UrlUploadScheduled = decode_data(EP, &env)?;
        if s.scheduled_item_id.is_none() {
            return Err(ApiError::Protocol {
                endpoint: EP,
                detail: "no scheduled_item_id in the answer".into(),
            });
        }
        Ok(s)
    }

    /// `/file/url_upload_status`.
    pub async fn url_upload_status(&self, id: u64) -> Result<UrlUploadStatus, ApiError> {
        const EP: &str = "file/url_upload_status";
        let env = self
            .call(
                EP,
                Idempotency::Safe,
                &[("scheduled_item_id", id.to_string())],
            )
            .await?;
        decode_data(EP, &env)
    }

    /// `/folder/create`. The host allows several folders of one name.
    pub async fn folder_create(
        &self,
        name: &str,
        parent: Option<FolderId>,
        opts: &FolderOptions,
    ) -> Result<RemoteFolder, ApiError> {
        const EP: &str = "folder/create";
        let mut fields = vec![("folder_name", name.to_owned())];
        if let Some(p) = parent {
            fields.push(("parent_id", p.to_string()));
        }
        push_folder_opts(&mut fields, opts);
        let env = self.call(EP, Idempotency::Unsafe, &fields).await?;
        decode_folder(EP, data_value(EP, &env)?)
    }

    /// `/folder/listing`: all folders and active files in `parent` (`None` = root).
    pub async fn folder_listing(&self, parent: Option<FolderId>) -> Result<Listing, ApiError> {
        const EP: &str = "folder/listing";
        let mut fields = vec![];
        if let Some(p) = parent {
            fields.push(("parent_folder_id", p.to_string()));
        }
        // Decoded from the answer's bytes straight into the listing: a big
        // folder's answer never becomes a `Value` tree as well.
        let raw: RawListing = self
            .call_as(EP, Idempotency::Safe, &fields, decode_listing)
            .await?;
        let folders = raw
            .folders
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.into_folder())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|detail| ApiError::Protocol {
                endpoint: EP,
                detail,
            })?;
        let files = raw
            .files
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.into_file())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|detail| ApiError::Protocol {
                endpoint: EP,
                detail,
            })?
            .into_iter()
            .filter(|f| f.status == FileStatus::Active)
            .collect();
        Ok(Listing { folders, files })
    }

    /// `/folder/info`. Sends the id as `folder_id` (what servers read) and as
    /// `parent_folder_id` (what the published text names).
    pub async fn folder_info(&self, id: FolderId) -> Result<RemoteFolder, ApiError> {
        const EP: &str = "folder/info";
        let fields = [
            ("folder_id", id.to_string()),
            ("parent_folder_id", id.to_string()),
        ];
        let env = self.call(EP, Idempotency::Safe, &fields).await?;
        decode_folder(EP, data_value(EP, &env)?)
    }

    /// `/folder/edit`: rename and/or change visibility. Moving is [`Client::folder_move`].
    pub async fn folder_edit(
        &self,
        id: FolderId,
        new_name: Option<&str>,
        opts: &FolderOptions,
    ) -> Result<RemoteFolder, ApiError> {
        const EP: &str = "folder/edit";
        let mut fields = vec![("folder_id", id.to_string())];
        if let Some(n) = new_name {
            fields.push(("folder_name", n.to_owned()));
        }
        push_folder_opts(&mut fields, opts);
        let env = self.call(EP, Idempotency::Safe, &fields).await?;
        decode_folder(EP, data_value(EP, &env)?)
    }

    /// Renames a folder.
    pub async fn folder_rename(
        &self,
        id: FolderId,
        new_name: &str,
    ) -> Result<RemoteFolder, ApiError> {
        self.folder_edit(id, Some(new_name), &FolderOptions::default())
            .await
    }

    /// `/folder/delete`: trashes the folder and everything below it.
    pub async fn folder_delete(&self, id: FolderId) -> Result<(), ApiError> {
        const EP: &str = "folder/delete";
        self.call(EP, Idempotency::Safe, &[("folder_id", id.to_string())])
            .await
            .map(|_| ())
    }

    /// `/folder/move`: `None` moves to the account root.
    pub async fn folder_move(
        &self,
        id: FolderId,
        to: Option<FolderId>,
    ) -> Result<RemoteFolder, ApiError> {
        const EP: &str = "folder/move";
        let fields = [
            ("folder_id", id.to_string()),
            ("new_parent_folder_id", folder_param(to)),
        ];
        let env = self.call(EP, Idempotency::Safe, &fields).await?;
        match env.get("data") {
            Some(v) if v.is_object() => decode_folder(EP, v),
            // Some servers answer a move with only a message.
            _ => self.folder_info(id).await,
        }
    }
}

/// Root is the literal `null` for move targets (an empty value is refused).
fn folder_param(f: Option<FolderId>) -> String {
    f.map_or_else(|| "null".to_owned(), |f| f.to_string())
}

fn push_folder_opts(fields: &mut Vec<(&'static str, String)>, opts: &FolderOptions) {
    if let Some(p) = opts.is_public {
        fields.push(("is_public", p.to_string()));
    }
    if let Some(pw) = &opts.access_password_md5 {
        fields.push(("access_password", pw.clone()));
    }
}

fn is_transient(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::RateLimited { .. }
            | ApiError::Server { .. }
            | ApiError::Transport { .. }
            | ApiError::Protocol { .. }
    )
}

/// A request that got no answer in time (the host accepts but is silent).
fn is_timeout(e: &ApiError) -> bool {
    matches!(e, ApiError::Transport { detail, .. } if detail.contains("timed out"))
}

pub(crate) fn transport(endpoint: &'static str, e: reqwest::Error) -> ApiError {
    let not_sent = e.is_connect();
    let e = e.without_url(); // a download URL carries a token
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    ApiError::Transport {
        endpoint,
        detail,
        not_sent,
    }
}

pub(crate) fn parse_retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// A short, single-line, tag-free excerpt of a body for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if in_tag => {}
            c if c.is_whitespace() => out.push(' '),
            c => out.push(c),
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let mut s = words.join(" ");
    if s.len() > 120 {
        let mut cut = 120;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// How an answer is decoded: `(endpoint, HTTP status, Retry-After, body)`.
type Decode<T> = fn(&'static str, u16, Option<Duration>, &[u8]) -> Result<T, ApiError>;

/// Turns one HTTP answer into a success envelope or a classified error.
pub(crate) fn decode_response(
    endpoint: &'static str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Envelope, ApiError> {
    classify(endpoint, status, retry_after, body, || {
        serde_json::from_slice(body).ok()
    })
}

/// The envelope's fields that say success or error (`data` is skipped
/// unread).
#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "_status")]
    underscore_status: Option<Value>,
    status: Option<Value>,
    response: Option<Value>,
    #[serde(rename = "0")]
    zero: Option<Value>,
    message: Option<Value>,
}

impl Head {
    fn into_map(self) -> Map<String, Value> {
        [
            ("_status", self.underscore_status),
            ("status", self.status),
            ("response", self.response),
            ("0", self.zero),
            ("message", self.message),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
    }
}

/// A `/folder/listing` answer, classified as [`decode_response`] does,
/// with `data` decoded from the bytes into the listing (an empty folder's
/// `data` may be `[]`, `null` or missing).
fn decode_listing(
    endpoint: &'static str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<RawListing, ApiError> {
    classify(endpoint, status, retry_after, body, || {
        serde_json::from_slice::<Head>(body)
            .ok()
            .map(Head::into_map)
    })?;
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(default, deserialize_with = "super::de::listing_data")]
        data: RawListing,
    }
    serde_json::from_slice::<Data>(body)
        .map(|d| d.data)
        .map_err(|e| ApiError::Protocol {
            endpoint,
            detail: format!("listing not understood: {e}"),
        })
}

/// [`decode_response`]'s classification, over the envelope `parse` reads
/// (`None`: the body is not a JSON object).
fn classify(
    endpoint: &'static str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    parse: impl FnOnce() -> Option<Map<String, Value>>,
) -> Result<Envelope, ApiError> {
    match status {
        429 => {
            return Err(ApiError::RateLimited {
                endpoint,
                retry_after,
            });
        }
        500..=599 => {
            return Err(ApiError::Server {
                endpoint,
                status,
                snippet: snippet(body),
            });
        }
        _ => {}
    }
    let parsed = parse();
    match (status, parsed) {
        (404, Some(obj)) if error_message(&obj).is_some() => {
            let message = error_message(&obj).unwrap_or_default();
            if message.to_ascii_lowercase().contains("no method found") {
                Err(ApiError::UnknownEndpoint { endpoint, message })
            } else {
                Err(classify_message(endpoint, message))
            }
        }
        (404, _) => Err(ApiError::UnknownEndpoint {
            endpoint,
            message: format!("HTTP 404 {}", snippet(body)),
        }),
        (401, _) => Err(ApiError::TokenRejected {
            endpoint,
            message: "HTTP 401".into(),
        }),
        (200..=299, Some(obj)) | (400..=499, Some(obj)) => {
            if let Some(message) = error_message(&obj) {
                return Err(classify_message(endpoint, message));
            }
            let st = obj
                .get("_status")
                .or_else(|| obj.get("status"))
                .and_then(Value::as_str);
            match st {
                Some(s) if s.eq_ignore_ascii_case("success") => Ok(obj),
                None if (200..=299).contains(&status) => Ok(obj),
                _ => Err(ApiError::Protocol {
                    endpoint,
                    detail: format!(
                        "HTTP {status} with an answer that is neither success nor error"
                    ),
                }),
            }
        }
        (_, None) => {
            let trimmed = String::from_utf8_lossy(&body[..body.len().min(64)])
                .trim_start()
                .to_ascii_lowercase();
            let what = if trimmed.starts_with('<') {
                "an HTML page where JSON was expected"
            } else if body.is_empty() {
                "an empty answer where JSON was expected"
            } else {
                "an answer that is not JSON"
            };
            let shown = snippet(body);
            let detail = if shown.trim().is_empty() {
                format!("HTTP {status}, {what}")
            } else {
                format!("HTTP {status}, {what}: {shown}")
            };
            if (400..=499).contains(&status) {
                // The address answers, but it is not this API: asking
                // again will not change that.
                return Err(ApiError::Config(format!("{endpoint}: {detail}")));
            }
            Err(ApiError::Protocol { endpoint, detail })
        }
        (_, Some(_)) => Err(ApiError::Server {
            endpoint,
            status,
            snippet: snippet(body),
        }),
    }
}

/// The message of an error envelope (`_status` or `status` = "error").
fn error_message(obj: &Map<String, Value>) -> Option<String> {
    let is_error = ["_status", "status"]
        .iter()
        .any(|k| obj.get(*k).and_then(Value::as_str) == Some("error"));
    if !is_error {
        return None;
    }
    let msg = obj
        .get("response")
        .or_else(|| obj.get("0"))
        .or_else(|| obj.get("message"))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "error without a message".to_owned());
    Some(msg)
}

fn data_value<'a>(endpoint: &'static str, env: &'a Envelope) -> Result<&'a Value, ApiError> {
    env.get("data").ok_or_else(|| ApiError::Protocol {
        endpoint,
        detail: "no data in the answer".into(),
    })
}

fn data_object<'a>(
    endpoint: &'static str,
    env: &'a Envelope,
) -> Result<&'a Map<String, Value>, ApiError> {
    data_value(endpoint, env)?
        .as_object()
        .ok_or_else(|| ApiError::Protocol {
            endpoint,
            detail: "data is not an object".into(),
        })
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn decode_data<T: serde::de::DeserializeOwned>(
    endpoint: &'static str,
    env: &Envelope,
) -> Result<T, ApiError> {
    serde_json::from_value(data_value(endpoint, env)?.clone()).map_err(|e| ApiError::Protocol {
        endpoint,
        detail: format!("data not understood: {e}"),
    })
}

pub(crate) fn decode_file(endpoint: &'static str, v: &Value) -> Result<RemoteFile, ApiError> {
    let raw: RawFile = serde_json::from_value(v.clone()).map_err(|e| ApiError::Protocol {
        endpoint,
        detail: format!("file object not understood: {e}"),
    })?;
    raw.into_file()
        .map_err(|detail| ApiError::Protocol { endpoint, detail })
}

fn decode_folder(endpoint: &'static str, v: &Value) -> Result<RemoteFolder, ApiError> {
    let raw: RawFolder = serde_json::from_value(v.clone()).map_err(|e| ApiError::Protocol {
        endpoint,
        detail: format!("folder object not understood: {e}"),
    })?;
    raw.into_folder()
        .map_err(|detail| ApiError::Protocol { endpoint, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(status: u16, body: &str) -> Result<Envelope, ApiError> {
        decode_response("file/info", status, None, body.as_bytes())
    }

    #[test]
    fn success_with_underscore_status() {
        let env = dec(
            200,
            r#"{"data":{"id":"1"},"_status":"success","_datetime":"x"}"#,
        )
        .unwrap();
        assert!(env.contains_key("data"));
    }

    #[test]
    fn error_with_plain_status_key() {
        let e = dec(
            200,
            r#"{"status":"error","response":"Could not find file based on file_id.","_datetime":"x"}"#,
        )
        .unwrap_err();
        assert!(e.is_not_found(), "{e:?}");
        let e = dec(200, r#"{"_status":"error","response":"Something odd."}"#).unwrap_err();
        assert!(matches!(e, ApiError::Api { .. }), "{e:?}");
    }

    fn listing(status: u16, body: &str) -> Result<RawListing, ApiError> {
        decode_listing("folder/listing", status, None, body.as_bytes())
    }

    #[test]
    fn listings_decode_from_the_bytes_with_php_empty_forms() {
        let full = listing(
            200,
            r#"{"data":{"folders":[{"id":"7","folderName":"a","parentId":null}],
                "files":[{"id":"9","filename":"f.txt","fileSize":"3","status":"active","folderId":null}]},
                "_status":"success"}"#,
        )
        .unwrap();
        assert_eq!(full.folders.map(|f| f.len()), Some(1));
        assert_eq!(full.files.map(|f| f.len()), Some(1));
        for empty in [
            r#"{"data":[],"_status":"success"}"#,
            r#"{"data":null,"_status":"success"}"#,
            r#"{"_status":"success"}"#,
            r#"{"data":{},"_status":"success"}"#,
        ] {
            let l = listing(200, empty).unwrap();
            assert!(l.folders.is_none() && l.files.is_none(), "{empty}");
        }
        let e = listing(200, r#"{"data":[1],"_status":"success"}"#).unwrap_err();
        assert!(matches!(e, ApiError::Protocol { .. }), "{e:?}");
        // Errors are classified as every other answer's.
        let e = listing(
            200,
            r#"{"status":"error","response":"Could not find folder.","data":[]}"#,
        )
        .unwrap_err();
        assert!(
            matches!(e, ApiError::Api { .. } | ApiError::NotFound { .. }),
            "{e:?}"
        );
        let e = listing(429, "").unwrap_err();
        assert!(matches!(e, ApiError::RateLimited { .. }), "{e:?}");
        let e = listing(200, "<html>").unwrap_err();
        assert!(matches!(e, ApiError::Protocol { .. }), "{e:?}");
    }

    #[test]
    fn unknown_endpoint_404() {
        let e = dec(
            404,
            r#"{"0":"No method found within endpoint file/infos","_status":"error"}"#,
        )
        .unwrap_err();
        assert!(matches!(e, ApiError::UnknownEndpoint { .. }), "{e:?}");
    }

    #[test]
    fn html_where_json_expected_is_protocol_error() {
        let e = dec(200, "<html><body>Oops</body></html>").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("HTML page"), "{msg}");
        assert!(e.is_retryable());
    }

    #[test]
    fn proxy_errors_and_rate_limits() {
        let e = dec(
            502,
            "<html><head><title>502 Bad Gateway</title></head></html>",
        )
        .unwrap_err();
        assert!(matches!(e, ApiError::Server { status: 502, .. }));
        assert!(e.to_string().contains("502 Bad Gateway"), "{e}");
        let e = decode_response("x", 429, Some(Duration::from_secs(2)), b"<html>slow</html>")
            .unwrap_err();
        assert!(matches!(
            e,
            ApiError::RateLimited {
                retry_after: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn snippet_is_short_and_tag_free() {
        let s = snippet(format!("<p>{}</p>", "word ".repeat(100)).as_bytes());
        assert!(!s.contains('<'));
        assert!(s.len() <= 124);
    }
}
