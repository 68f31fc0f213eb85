//! The `/api/v2/` endpoints: request parsing, the success and error envelopes,
//! the JSON object shapes, and each endpoint's checks in the real server's order.
//!
//! Owns: routing (including the 404 for unknown endpoints and 405 for non-POST),
//! the exact error messages and the value typing (strings vs numbers). Must never
//! read a query string or a JSON body (the real server reads only the form body),
//! must never run SQL directly (that is `store`), and must never decide faults.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use md5::{Digest, Md5};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::rules::{self, FolderRef};
use crate::store::{self, ACCOUNT_ID, FileRow, FolderRow};
use crate::{AppState, AuthMode, Error};

// ---------------------------------------------------------------------------
// Ordered JSON (field order as the real server sends it).

/// A JSON value whose objects keep their field order.
#[derive(Debug)]
pub enum J {
    V(Value),
    O(Obj),
    A(Vec<J>),
}

/// A JSON object with ordered fields.
#[derive(Debug, Default)]
pub struct Obj(Vec<(String, J)>);

impl Obj {
    pub fn new() -> Self {
        Self(Vec::new())
    }
    fn v(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.0.push((k.to_string(), J::V(v.into())));
        self
    }
    fn j(mut self, k: &str, v: J) -> Self {
        self.0.push((k.to_string(), v));
        self
    }
}

impl Serialize for Obj {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for J {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::V(v) => v.serialize(s),
            J::O(o) => o.serialize(s),
            J::A(a) => a.serialize(s),
        }
    }
}

fn opt_str(v: Option<impl ToString>) -> Value {
    v.map_or(Value::Null, |x| Value::String(x.to_string()))
}

fn json_response(status: StatusCode, body: &Obj) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

// ---------------------------------------------------------------------------
// Envelopes and errors.

/// An endpoint's failure: a message for the error envelope, or an internal error.
#[derive(Debug)]
pub enum ApiError {
    Msg(String),
    Internal(Error),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Internal(e)
    }
}

fn msg(m: impl Into<String>) -> ApiError {
    ApiError::Msg(m.into())
}

type ApiResult = Result<Response, ApiError>;

fn now_str() -> String {
    crate::clock::format_datetime(std::time::SystemTime::now())
}

/// `{"status": "error", "response": ..., "_datetime": ...}` with HTTP 200.
pub fn error_envelope(message: &str, datetime: String) -> Response {
    json_response(
        StatusCode::OK,
        &Obj::new()
            .v("status", "error")
            .v("response", message)
            .v("_datetime", datetime),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Msg(m) => error_envelope(&m, now_str()),
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                let body = Obj::new()
                    .v("status", "error")
                    .v("response", format!("Internal error: {e}"))
                    .v("_datetime", now_str());
                json_response(StatusCode::INTERNAL_SERVER_ERROR, &body)
            }
        }
    }
}

/// `{[response], [data], "_status": "success", "_datetime": ...}`
fn success(st: &AppState, response: Option<&str>, data: Option<J>) -> Response {
    let mut o = Obj::new();
    if let Some(r) = response {
        o = o.v("response", r);
    }
    if let Some(d) = data {
        o = o.j("data", d);
    }
    json_response(
        StatusCode::OK,
        &o.v("_status", "success").v("_datetime", st.now_str()),
    )
}

// ---------------------------------------------------------------------------
// Request parameters.

/// The form fields of a POST (urlencoded or multipart), each trimmed and with
/// tags stripped. The query string and JSON bodies are never read.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// A non-empty value.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A non-empty value or `Please provide the KEY param.`
    fn require(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key)
            .ok_or_else(|| msg(format!("Please provide the {key} param.")))
    }
}

fn content_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = content_type(&req);
        let mut map = HashMap::new();
        if ct.starts_with("multipart/form-data") {
            let mut mp = Multipart::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            while let Some(field) = mp
                .next_field()
                .await
                .map_err(|e| msg(format!("Could not read form data: {e}")).into_response())?
            {
                let name = field.name().unwrap_or("").to_string();
                let text = field
                    .text()
                    .await
                    .map_err(|e| msg(format!("Could not read form data: {e}")).into_response())?;
                map.insert(name, store::clean_value(&text));
            }
        } else if ct.starts_with("application/x-www-form-urlencoded") {
            let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            for (k, v) in pairs {
                map.insert(k, store::clean_value(&v));
            }
        }
        Ok(Params(map))
    }
}

/// Which token error message to use.
#[derive(Clone, Copy)]
enum TokenMsg {
    Standard,
    Account,
}

/// Checks `access_token` and `account_id` are present (in that order).
fn require_auth(p: &Params) -> Result<(String, String), ApiError> {
    let token = p.require("access_token")?.to_string();
    let account = p.require("account_id")?.to_string();
    Ok((token, account))
}

/// Validates (and refreshes) the token.
fn check_token(st: &AppState, auth: &(String, String), which: TokenMsg) -> Result<(), ApiError> {
    let idle = i64::try_from(st.config.token_idle_secs).unwrap_or(i64::MAX);
    if st
        .store
        .token_validate(&auth.0, &auth.1, st.now_secs(), idle)?
    {
        Ok(())
    } else {
        Err(msg(match which {
            TokenMsg::Standard => {
                "Could not validate access_token and account_id, please reauthenticate or try again."
            }
            TokenMsg::Account => {
                "Could not validate access_token, please reauthenticate or try again."
            }
        }))
    }
}

/// An id parameter: a number, else no such file or folder.
fn id_of(v: &str, not_found: &str) -> Result<i64, ApiError> {
    v.parse::<i64>().map_err(|_| msg(not_found))
}

fn active_file(st: &AppState, id: &str) -> Result<FileRow, ApiError> {
    rules::active_file(st, id_of(id, rules::FILE_NOT_FOUND)?)
}

fn get_folder(st: &AppState, id: &str) -> Result<FolderRow, ApiError> {
    rules::folder(st, id_of(id, rules::FOLDER_NOT_FOUND)?)
}

// ---------------------------------------------------------------------------
// Object shapes.

fn file_url(st: &AppState, f: &FileRow) -> String {
    format!("{}/{}", st.public_base, f.short_url)
}

/// A file in `/folder/listing`.
fn listing_file(st: &AppState, f: &FileRow) -> Obj {
    Obj::new()
        .v("id", f.id.to_string())
        .v("filename", f.filename.as_str())
        .v("shortUrl", f.short_url.as_str())
        .v("fileType", f.file_type.as_str())
        .v("extension", f.extension.as_str())
        .v("fileSize", f.size.to_string())
        .v("status", f.status.as_str())
        .v("downloads", f.downloads.to_string())
        .v("folderId", opt_str(f.folder_id))
        .v("keywords", f.keywords.as_str())
        .v("url_file", file_url(st, f))
}

/// A file in `/file/info` (and edit/move/delete answers).
pub(crate) fn info_file(st: &AppState, f: &FileRow) -> Obj {
    let url = file_url(st, f);
    Obj::new()
        .v("id", f.id.to_string())
        .v("filename", f.filename.as_str())
        .v("shortUrl", f.short_url.as_str())
        .v("fileType", f.file_type.as_str())
        .v("extension", f.extension.as_str())
        .v("fileSize", f.size.to_string())
        .v("uploadedIP", f.uploaded_ip.as_str())
        .v("uploadedDate", f.uploaded_date.as_str())
        .v("file_status", f.status.as_str())
        .v("downloads", f.downloads.to_string())
        .v("lastAccessed", opt_str(f.last_accessed.as_ref()))
        .v("folderId", opt_str(f.folder_id))
        .v("keywords", f.keywords.as_str())
        .v("isPublic", "1")
        .v("uploadSource", "api")
        .v("url_file", url.clone())
        .v("url_file_info", format!("{url}~i?{}", f.delete_hash))
        .v("url_file_stats", format!("{url}~s"))
        .v("url_file_delete", format!("{url}~d?{}", f.delete_hash))
}

fn folder_obj(st: &AppState, f: &FolderRow, with_password: bool) -> Obj {
    let mut o = Obj::new()
        .v("id", f.id.to_string())
        .v("parentId", opt_str(f.parent_id))
        .v("folderName", f.name.as_str())
        .v("totalSize", f.total_size.to_string())
        .v("isPublic", f.is_public.as_str());
    if with_password {
        o = o.v("accessPassword", opt_str(f.access_password.as_ref()));
    }
    o.v("date_added", opt_str(f.date_added.as_ref()))
        .v("date_updated", opt_str(f.date_updated.as_ref()))
        .v(
            "url_folder",
            format!(
                "{}/folder/{}/{}",
                st.public_base,
                f.id,
                f.name.replace(' ', "_")
            ),
        )
        .v("total_downloads", f.total_downloads)
        .v("child_folder_count", f.child_folder_count)
        .v("file_count", f.file_count)
}

fn upload_answer(st: &AppState, f: &FileRow, uploaded_type: &str) -> Obj {
    let url = file_url(st, f);
    Obj::new()
        .v("name", f.filename.as_str())
        .v("size", f.size.to_string())
        .v("type", uploaded_type)
        .v("error", Value::Null)
        .v("url", url.clone())
        .v("delete_url", format!("{url}~d?{}", f.delete_hash))
        .v("info_url", format!("{url}~i?{}", f.delete_hash))
        .v("delete_type", "DELETE")
        .v("delete_hash", f.delete_hash.as_str())
        .v("hash", f.md5.as_str())
        .v("stats_url", format!("{url}~s"))
        .v("short_url", f.short_url.as_str())
        .v("file_id", f.id.to_string())
        .v("unique_hash", f.unique_hash.as_str())
        .v(
            "url_html",
            format!(
                "<a href=\"{url}\" target=\"_blank\" title=\"View image on File Upload Script\">view {} on File Upload Script</a>",
                f.filename
            ),
        )
        .v("url_bbcode", format!("[url]{url}[/url]"))
}

// ---------------------------------------------------------------------------
// Router.

pub(crate) fn router(st: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/authorize", post(authorize))
        .route("/disable_access_token", post(disable_access_token))
        .route("/account/info", post(account_info))
        .route("/account/package", post(account_package))
        .route(
            "/file/upload",
            post(file_upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/file/download", post(file_download))
        .route("/file/url_upload_add", post(url_upload_add))
        .route("/file/url_upload_status", post(url_upload_status))
        .route("/file/info", post(file_info))
        .route("/file/edit", post(file_edit))
        .route("/file/delete", post(file_delete))
        .route("/file/move", post(file_move))
        .route("/file/copy", post(file_copy))
        .route("/folder/create", post(folder_create))
        .route("/folder/listing", post(folder_listing))
        .route("/folder/info", post(folder_info))
        .route("/folder/edit", post(folder_edit))
        .route("/folder/delete", post(folder_delete))
        .route("/folder/move", post(folder_move))
        .fallback(unknown_endpoint);
    Router::new()
        .nest("/api/v2", api)
        .route("/{short}", get(crate::download::serve_download))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            crate::faults::middleware,
        ))
        .with_state(st)
}

async fn unknown_endpoint(req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/').to_string();
    let body = Obj::new()
        .v("0", format!("No method found within endpoint {path}"))
        .v("_status", "error");
    json_response(StatusCode::NOT_FOUND, &body)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>404 Not Found</h1></body></html>",
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// Handlers.

type St = State<Arc<AppState>>;

async fn authorize(State(st): St, p: Params) -> ApiResult {
    let ok = match st.config.auth {
        AuthMode::Keys => {
            let key1 = p
                .get("key1")
                .filter(|k| k.len() == 64)
                .ok_or_else(|| msg("Please provide key1. It must be 64 characters in length."))?;
            let key2 = p
                .get("key2")
                .filter(|k| k.len() == 64)
                .ok_or_else(|| msg("Please provide key2. It must be 64 characters in length."))?;
            if key1 != st.config.key1 || key2 != st.config.key2 {
                return Err(msg(
                    "Could not authenticate user. The key pair may be invalid or your account may be locked from too many failed logins.",
                ));
            }
            true
        }
        AuthMode::Password => {
            // Messages for missing username/password are a guess.
            let user = p.require("username")?;
            let pass = p.require("password")?;
            user == st.config.username && pass == st.config.password
        }
    };
    if !ok {
        return Err(msg(
            "Could not authenticate user. The username and password may be invalid or your account may be locked from too many failed logins.",
        ));
    }
    let token = st.store.token_create(ACCOUNT_ID, st.now_secs())?;
    let data = Obj::new()
        .v("access_token", token)
        .v("account_id", ACCOUNT_ID);
    Ok(success(&st, None, Some(J::O(data))))
}

async fn disable_access_token(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    // Guess: an unknown or expired token is reported as a validation error
    // (the spec lists that error for this endpoint).
    check_token(&st, &auth, TokenMsg::Standard)?;
    st.store.token_delete(&auth.0)?;
    Ok(success(
        &st,
        Some("Token removed or no longer available."),
        None,
    ))
}

async fn account_info(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    check_token(&st, &auth, TokenMsg::Account)?;
    let now = st.now_str();
    let data = Obj::new()
        .v("id", ACCOUNT_ID)
        .v("username", st.config.username.as_str())
        .v("level_id", "20")
        .v("email", "email@yoursite.com")
        .v("lastlogindate", now)
        .v("lastloginip", "127.0.0.1")
        .v("status", "active")
        .v("title", "Mr")
        .v("firstname", "Admin")
        .v("lastname", "User")
        .v("languageId", "1")
        .v("datecreated", Value::Null)
        .v("lastPayment", Value::Null)
        .v("paidExpiryDate", Value::Null)
        .v("storageLimitOverride", Value::Null);
    Ok(success(&st, None, Some(J::O(data))))
}

async fn account_package(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    check_token(&st, &auth, TokenMsg::Account)?;
    let c = &st.config;
    let data = Obj::new()
        .v("id", "20")
        .v("label", "Premium Account")
        .v("max_upload_size", c.max_upload_size.to_string())
        .v("can_upload", if c.can_upload { "1" } else { "0" })
        .v("wait_between_downloads", "0")
        .v("download_speed", "0")
        .v("max_storage_bytes", c.max_storage_bytes.to_string())
        .v("show_site_adverts", "0")
        .v("show_upgrade_screen", "1")
        .v("days_to_keep_inactive_files", "0")
        .v("concurrent_uploads", c.concurrent_uploads.to_string())
        .v("concurrent_downloads", "0")
        .v("downloads_per_24_hours", "0")
        .v("download_size_per_24_hours", "0")
        .v("max_download_filesize_allowed", "0")
        .v("max_remote_download_urls", "50")
        .v("level_type", "paid user")
        .v("on_upgrade_page", "0");
    Ok(success(&st, None, Some(J::O(data))))
}

/// A partial upload on disk, removed on drop unless it was moved away.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Received {
    temp: TempFile,
    name: String,
    content_type: Option<String>,
    size: u64,
    md5: String,
}

/// Stream one multipart file field to a temp file, computing MD5. Stops writing
/// (but keeps reading) once `max` is exceeded.
async fn receive_file(
    st: &AppState,
    mut field: axum::extract::multipart::Field<'_>,
) -> Result<Received, ApiError> {
    let name = field.file_name().unwrap_or("").to_string();
    let content_type = field.content_type().map(str::to_string);
    let temp = TempFile(st.store.temp_path());
    let file = tokio::fs::File::create(&temp.0)
        .await
        .map_err(Error::from)?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Md5::new();
    let mut size: u64 = 0;
    let max = st.config.max_upload_size;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| msg(format!("Error uploading file: {e}")))?
    {
        size += chunk.len() as u64;
        if size <= max {
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(Error::from)?;
        }
    }
    out.flush().await.map_err(Error::from)?;
    out.into_inner().sync_all().await.map_err(Error::from)?;
    Ok(Received {
        temp,
        name,
        content_type,
        size,
        md5: hex::encode(hasher.finalize()),
    })
}

async fn file_upload(
    State(st): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> ApiResult {
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut upload: Option<Received> = None;
    if content_type(&req).starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| msg(format!("Could not read form data: {e}")))?;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| msg(format!("Error uploading file: {e}")))?
        {
            let name = field.name().unwrap_or("").to_string();
            if name == "upload_file" && field.file_name().is_some() && upload.is_none() {
                upload = Some(receive_file(&st, field).await?);
            } else {
                let text = field
                    .text()
                    .await
                    .map_err(|e| msg(format!("Error uploading file: {e}")))?;
                fields.insert(name, store::clean_value(&text));
            }
        }
    } else if content_type(&req).starts_with("application/x-www-form-urlencoded") {
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(req, &())
            .await
            .map_err(|e| msg(format!("Could not read form data: {e}")))?;
        for (k, v) in pairs {
            fields.insert(k, store::clean_value(&v));
        }
    }
    let p = Params(fields);
    let auth = require_auth(&p)?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let Some(up) = upload else {
        return Err(msg("Did not receive uploaded file."));
    };
    let row = rules::file_upload(
        &st,
        p.get("folder_id").map(FolderRef::parse),
        &rules::Upload {
            temp: &up.temp.0,
            name: &up.name,
            content_type: up.content_type.as_deref(),
            size: up.size,
            md5: &up.md5,
        },
        &peer.ip().to_string(),
    )?;
    let data = J::A(vec![J::O(upload_answer(&st, &row, &row.file_type))]);
    Ok(success(&st, Some("File uploaded"), Some(data)))
}

async fn file_download(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let file_id = p.require("file_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let f = active_file(&st, file_id)?;
    let token = st.store.download_token_create(f.id, st.now_secs())?;
    let data = Obj::new()
        .v("file_id", f.id.to_string())
        .v("filename", f.filename.as_str())
        .v(
            "download_url",
            format!("{}?download_token={token}", file_url(&st, &f)),
        );
    Ok(success(&st, None, Some(J::O(data))))
}

async fn url_upload_add(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let encoded = p.require("file_url_base64")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let url = decode_url(encoded).ok_or_else(|| {
        msg("Could not parse the file_url_base64 parameter. Ensure it's base64 encoded.")
    })?;
    let folder = rules::folder_or_root(&st, p.get("folder_id").map(FolderRef::parse))?;
    let id = st.store.url_upload_create(&url, folder, &st.now_str())?;
    crate::url_upload::spawn(&st, id);
    let data = Obj::new().v("scheduled_item_id", id).v("url", url);
    Ok(success(
        &st,
        Some("File download from URL scheduled"),
        Some(J::O(data)),
    ))
}

/// Base64 (standard or URL-safe, padding optional) of an http(s) URL.
fn decode_url(encoded: &str) -> Option<String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = encoded.trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .ok()?;
    let url = String::from_utf8(bytes).ok()?;
    let url = url.trim().to_string();
    let parsed = reqwest::Url::parse(&url).ok()?;
    matches!(parsed.scheme(), "http" | "https").then_some(url)
}

async fn url_upload_status(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let id = p.require("scheduled_item_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    // "Could not find scheduled item." is not in the 4.x source (the endpoint is
    // not there at all); the message is our choice.
    let not_found = || msg("Could not find scheduled item.");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let row = st.store.url_upload_get(id)?.ok_or_else(not_found)?;
    let downloaded = match row.file_id {
        Some(fid) => match st.store.file_get(fid)? {
            Some(f) => J::O(
                Obj::new()
                    .v("file_id", f.id)
                    .v("name", f.filename.as_str())
                    .v("size", f.size)
                    .v("url", format!("{}/{}", file_url(&st, &f), f.filename)),
            ),
            None => J::V(Value::Null),
        },
        None => J::V(Value::Null),
    };
    let mut data = Obj::new()
        .v("scheduled_item_id", row.id)
        .v("status", row.status.as_str())
        .v("created", row.created.as_str())
        .v("started", opt_str(row.started.as_ref()))
        .v("finished", opt_str(row.finished.as_ref()))
        .v("total_size", row.total_size)
        .j("downloaded_file", downloaded);
    if row.status == "failed" {
        data = data.v("error", opt_str(row.error.as_ref()));
    }
    Ok(success(
        &st,
        Some("Scheduled URL file download found"),
        Some(J::O(data)),
    ))
}

async fn file_info(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let file_id = p.require("file_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    // Succeeds on a trashed file.
    let f = rules::any_file(&st, id_of(file_id, rules::FILE_NOT_FOUND)?)?;
    Ok(success(&st, None, Some(J::O(info_file(&st, &f)))))
}

async fn file_edit(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let file_id = p.require("file_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let f = rules::file_edit(
        &st,
        id_of(file_id, rules::FILE_NOT_FOUND)?,
        p.get("filename"),
        p.get("fileType"),
        p.get("folder_id").map(FolderRef::parse),
    )?;
    Ok(success(
        &st,
        Some("File successfully updated."),
        Some(J::O(info_file(&st, &f))),
    ))
}

async fn file_delete(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let file_id = p.require("file_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let f = rules::file_delete(&st, id_of(file_id, rules::FILE_NOT_FOUND)?)?;
    Ok(success(
        &st,
        Some("File successfully set as deleted."),
        Some(J::O(info_file(&st, &f))),
    ))
}

async fn file_move(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let file_id = p.require("file_id")?;
    let dest = p.require("new_parent_folder_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let f = rules::file_move(
        &st,
        id_of(file_id, rules::FILE_NOT_FOUND)?,
        FolderRef::parse(dest),
    )?;
    Ok(success(
        &st,
        Some("File successfully moved."),
        Some(J::O(info_file(&st, &f))),
    ))
}

async fn file_copy(
    State(st): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    p: Params,
) -> ApiResult {
    let auth = require_auth(&p)?;
    let file_id = p.require("file_id")?;
    let dest = p.require("copy_to_folder_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let (f, new) = rules::file_copy(
        &st,
        id_of(file_id, rules::FILE_NOT_FOUND)?,
        FolderRef::parse(dest),
        &peer.ip().to_string(),
    )?;
    let body = Obj::new()
        .v("response", "File successfully copyied.")
        .j(
            "original_file",
            J::O(Obj::new().j("data", J::O(info_file(&st, &f)))),
        )
        .j(
            "new_file",
            J::O(Obj::new().j("data", J::O(info_file(&st, &new)))),
        )
        .v("_status", "success")
        .v("_datetime", st.now_str());
    Ok(json_response(StatusCode::OK, &body))
}

async fn folder_create(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let name = p.require("folder_name")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let f = rules::folder_create(
        &st,
        p.get("parent_id").map(FolderRef::parse),
        name,
        p.get("is_public"),
        p.get("access_password"),
    )?;
    Ok(success(
        &st,
        Some("Folder successfully created."),
        Some(J::O(folder_obj(&st, &f, true))),
    ))
}

async fn folder_listing(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    // Blank, `null` and `0` list the root (guess for the last two).
    let folder = match p.get("parent_folder_id") {
        None | Some("0") => None,
        Some(v) if v.eq_ignore_ascii_case("null") => None,
        Some(v) => Some(id_of(v, rules::FOLDER_NOT_FOUND)?),
    };
    let (folders, files) = rules::folder_listing(&st, folder)?;
    let data = Obj::new()
        .j(
            "folders",
            J::A(
                folders
                    .iter()
                    .map(|f| J::O(folder_obj(&st, f, false)))
                    .collect(),
            ),
        )
        .j(
            "files",
            J::A(files.iter().map(|f| J::O(listing_file(&st, f))).collect()),
        );
    Ok(success(&st, None, Some(J::O(data))))
}

async fn folder_info(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let id = p.require("folder_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let f = get_folder(&st, id)?;
    Ok(success(&st, None, Some(J::O(folder_obj(&st, &f, true)))))
}

async fn folder_edit(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let id = p.require("folder_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let f = rules::folder_edit(
        &st,
        id_of(id, rules::FOLDER_NOT_FOUND)?,
        p.get("folder_name"),
        p.get("is_public"),
        p.get("access_password"),
        p.get("parent_id").map(FolderRef::parse),
    )?;
    Ok(success(
        &st,
        Some("Folder successfully updated."),
        Some(J::O(folder_obj(&st, &f, true))),
    ))
}

async fn folder_delete(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let id = p.require("folder_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    rules::folder_delete(&st, id_of(id, rules::FOLDER_NOT_FOUND)?)?;
    Ok(success(
        &st,
        Some("Folder successfully set as deleted."),
        None,
    ))
}

async fn folder_move(State(st): St, p: Params) -> ApiResult {
    let auth = require_auth(&p)?;
    let id = p.require("folder_id")?;
    let dest = p.require("new_parent_folder_id")?;
    check_token(&st, &auth, TokenMsg::Standard)?;
    let f = rules::folder_move(
        &st,
        id_of(id, rules::FOLDER_NOT_FOUND)?,
        FolderRef::parse(dest),
    )?;
    Ok(success(
        &st,
        Some("Folder successfully moved."),
        Some(J::O(folder_obj(&st, &f, true))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_urls() {
        let e = base64::engine::general_purpose::STANDARD.encode("http://x.test/a.png");
        assert_eq!(decode_url(&e).as_deref(), Some("http://x.test/a.png"));
        assert_eq!(decode_url("!!!"), None);
        let e = base64::engine::general_purpose::STANDARD.encode("not a url");
        assert_eq!(decode_url(&e), None);
    }

    #[test]
    fn ordered_objects_keep_order() {
        let o = Obj::new().v("b", 1).v("a", "x").j("c", J::A(vec![]));
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"b":1,"a":"x","c":[]}"#
        );
    }
}
