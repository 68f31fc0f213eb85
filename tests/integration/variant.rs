//! The real `dcsync remote` against a second, independent File Upload API v2
//! server written here from the published text and API-NOTES.md, not from
//! the emulator. It differs from the emulator wherever the spec leaves room:
//!
//! - key order of every object (envelope, files, folders, upload answer);
//! - ids, sizes and counts as JSON numbers, and counts the emulator sends as
//!   numbers as strings (`"child_folder_count": "1"`); parent/folder ids as a
//!   number for some objects and a numeric string for others;
//! - the root as `null` for some objects and `""` for others;
//! - unknown fields everywhere: envelope, data, files, folders, nested objects
//!   and arrays;
//! - errors as `{"_status": "error", "response": ...}` with extra fields, an
//!   HTML content type, and HTTP 200, 400, 401 or 404 in rotation;
//! - empty listings as `{"folders": [], "files": []}`, `{}` or `null` lists;
//!   trashed files listed with `status: "trash"` (the client must drop them);
//!   folders and files in a different order;
//! - upload answer with `file_id` first, an upper-case MD5, numeric size;
//! - `/file/copy` with only `original_file.data` / `new_file.data`;
//! - URL imports with ids as strings and one `downloading` round first;
//! - 429 on every other request: with `Retry-After: 1` and an HTML body,
//!   with no header and an empty body, with no header and an HTML body, with
//!   `Retry-After: 0` and an empty body; the download GET is limited too.

use crate::util::{KEY1, KEY2, Run, bytes, md5_hex, read};
use axum::Router;
use axum::body::Body;
use axum::extract::{
    DefaultBodyLimit, FromRequest, Multipart, Path as AxPath, Query, Request, State,
};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

const ACCOUNT: u64 = 4242;
const DATE: &str = "2025-03-04 05:06:07";
const NO_TOKEN: &str =
    "Could not validate access_token and account_id, please reauthenticate or try again.";
const NO_TOKEN_ACCOUNT: &str =
    "Could not validate access_token, please reauthenticate or try again.";

// ------------------------------------------------------------------ JSON

/// JSON with the key order chosen here (serde_json's map would sort it).
#[derive(Clone)]
enum J {
    Null,
    N(u64),
    S(String),
    A(Vec<J>),
    O(Vec<(&'static str, J)>),
}

fn s(v: impl Into<String>) -> J {
    J::S(v.into())
}

fn o(pairs: Vec<(&'static str, J)>) -> J {
    J::O(pairs)
}

impl fmt::Display for J {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            J::Null => f.write_str("null"),
            J::N(n) => write!(f, "{n}"),
            J::S(v) => write!(f, "{}", serde_json::Value::String(v.clone())),
            J::A(items) => {
                f.write_str("[")?;
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{it}")?;
                }
                f.write_str("]")
            }
            J::O(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", serde_json::Value::String((*k).to_owned()))?;
                }
                f.write_str("}")
            }
        }
    }
}

fn respond(status: u16, content_type: &str, headers: &[(&str, &str)], body: String) -> Response {
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body)).unwrap()
}

// ----------------------------------------------------------------- state

struct Folder {
    name: String,
    parent: Option<u64>,
    trashed: bool,
    is_public: u64,
}

struct File {
    name: String,
    folder: Option<u64>,
    status: &'static str,
    content: Arc<Vec<u8>>,
    file_type: String,
    short: String,
}

struct Import {
    url: String,
    folder: Option<u64>,
    fetched: Result<(String, Arc<Vec<u8>>), String>,
    polls: u32,
    file: Option<u64>,
}

/// When the server answers 429.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
enum Limit {
    #[default]
    Off,
    /// Every other request (API and download GET alike).
    EveryOther,
    /// The next n requests.
    Next(u32),
}

#[derive(Default)]
struct Db {
    base: String,
    token: Option<String>,
    authorizations: u64,
    next_folder: u64,
    next_file: u64,
    next_import: u64,
    folders: BTreeMap<u64, Folder>,
    files: BTreeMap<u64, File>,
    links: HashMap<String, u64>,
    imports: BTreeMap<u64, Import>,
    limit: Limit,
    requests: u64,
    limited: u64,
    errors: u64,
    /// HTTP status of every error answer.
    error_statuses: Vec<u16>,
    /// Endpoint and form fields of every API request that got past the limiter.
    calls: Vec<(String, HashMap<String, String>)>,
    /// `Range` headers of download GETs and the status answered.
    ranges: Vec<(String, u16)>,
    empty_listings: u64,
}

type Shared = Arc<Mutex<Db>>;

/// Form fields of a request, plus the uploaded file.
#[derive(Default)]
struct Input {
    fields: HashMap<String, String>,
    upload: Option<(String, Vec<u8>)>,
}

impl Input {
    fn get(&self, k: &str) -> &str {
        self.fields.get(k).map_or("", |v| v.trim())
    }
}

fn parse_id(v: &str) -> Option<u64> {
    v.trim().parse().ok()
}

fn extension(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if i > 0 => &name[i + 1..],
        _ => "",
    }
}

impl Db {
    fn new(base: String) -> Db {
        Db {
            base,
            next_folder: 700,
            next_file: 30_000,
            next_import: 90,
            ..Db::default()
        }
    }

    /// 429 answers, in four shapes.
    fn throttle(&mut self) -> Option<Response> {
        self.requests += 1;
        let hit = match self.limit {
            Limit::Off => false,
            Limit::EveryOther => self.requests.is_multiple_of(2),
            Limit::Next(0) => false,
            Limit::Next(n) => {
                self.limit = Limit::Next(n - 1);
                true
            }
        };
        if !hit {
            return None;
        }
        let k = self.limited;
        self.limited += 1;
        let html = "<html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests</h1></body></html>";
        // `Retry-After: 1` costs a second: only on every eighth.
        Some(match k % 4 {
            0 if k.is_multiple_of(8) => {
                respond(429, "text/html", &[("Retry-After", "1")], html.into())
            }
            0 => respond(429, "text/html", &[], html.into()),
            1 => respond(429, "text/plain", &[], String::new()),
            2 => respond(429, "text/html; charset=iso-8859-1", &[], html.into()),
            _ => respond(429, "text/html", &[("Retry-After", "0")], String::new()),
        })
    }

    fn error(&mut self, msg: &str) -> Response {
        let n = self.errors;
        self.errors += 1;
        let status = if msg.starts_with("Could not find") {
            [404, 200, 400][(n % 3) as usize]
        } else if msg.starts_with("Could not validate") {
            [401, 200][(n % 2) as usize]
        } else {
            [400, 200][(n % 2) as usize]
        };
        self.error_statuses.push(status);
        let body = o(vec![
            ("_datetime", s(DATE)),
            ("response", s(msg)),
            ("_status", s("error")),
            (
                "error",
                o(vec![
                    ("code", J::N(1000 + n)),
                    ("params", J::A(vec![s("file_id"), J::Null])),
                    ("trace", J::Null),
                ]),
            ),
            ("request_id", s(format!("req-{n}"))),
        ]);
        respond(status, "text/html; charset=UTF-8", &[], body.to_string())
    }

    fn success(&self, message: Option<&str>, fields: Vec<(&'static str, J)>) -> Response {
        let mut top = vec![("_datetime", s(DATE))];
        top.extend(fields);
        top.push(("_status", s("success")));
        if let Some(m) = message {
            top.push(("response", s(m)));
        }
        top.push((
            "_server",
            o(vec![
                ("impl", s("variant")),
                ("took_ms", J::N(1)),
                ("warnings", J::A(vec![])),
            ]),
        ));
        respond(200, "application/json", &[], o(top).to_string())
    }

    // --------------------------------------------------------- objects

    /// A parent reference: number or numeric string by object parity; the
    /// root as `""` or `null`.
    fn parent_ref(parent: Option<u64>, owner: u64) -> J {
        match (parent, owner.is_multiple_of(2)) {
            (Some(p), true) => J::N(p),
            (Some(p), false) => s(p.to_string()),
            (None, true) => s(""),
            (None, false) => J::Null,
        }
    }

    fn live_folder(&self, id: u64) -> Option<&Folder> {
        self.folders.get(&id).filter(|f| !f.trashed)
    }

    fn folder_json(&self, id: u64, with_password: bool) -> J {
        let f = &self.folders[&id];
        let kids = self
            .folders
            .values()
            .filter(|c| c.parent == Some(id) && !c.trashed)
            .count();
        let files: Vec<&File> = self
            .files
            .values()
            .filter(|x| x.folder == Some(id) && x.status == "active")
            .collect();
        let total: usize = files.iter().map(|x| x.content.len()).sum();
        let mut v = vec![
            ("child_folder_count", s(kids.to_string())),
            ("file_count", s(files.len().to_string())),
            ("total_downloads", s("0")),
            ("id", J::N(id)),
            ("folderName", s(&f.name)),
            ("parentId", Db::parent_ref(f.parent, id)),
            ("totalSize", J::N(total as u64)),
            ("isPublic", J::N(f.is_public)),
            ("date_added", s(DATE)),
            (
                "date_updated",
                if id.is_multiple_of(2) { s("") } else { J::Null },
            ),
            (
                "url_folder",
                s(format!(
                    "{}/folder/{id}/{}",
                    self.base,
                    f.name.replace(' ', "_")
                )),
            ),
            (
                "owner",
                o(vec![
                    ("id", J::N(ACCOUNT)),
                    ("roles", J::A(vec![s("owner"), o(vec![("x", J::Null)])])),
                ]),
            ),
        ];
        if with_password {
            v.push(("accessPassword", J::Null));
        }
        o(v)
    }

    /// A file as `/folder/listing` shows it (`status`).
    fn listed_file_json(&self, id: u64) -> J {
        let f = &self.files[&id];
        o(vec![
            ("url_file", s(format!("{}/{}", self.base, f.short))),
            ("filename", s(&f.name)),
            ("id", J::N(id)),
            ("fileSize", J::N(f.content.len() as u64)),
            ("status", s(f.status)),
            ("folderId", Db::parent_ref(f.folder, id)),
            ("fileType", s(&f.file_type)),
            ("extension", s(extension(&f.name))),
            ("downloads", J::N(0)),
            ("shortUrl", s(&f.short)),
            ("keywords", J::Null),
            (
                "thumbs",
                o(vec![
                    ("small", J::Null),
                    ("sizes", J::A(vec![J::N(16), J::N(32)])),
                ]),
            ),
        ])
    }

    /// A file as `/file/info` shows it (`file_status`).
    fn info_file_json(&self, id: u64) -> J {
        let f = &self.files[&id];
        let url = format!("{}/{}", self.base, f.short);
        o(vec![
            ("url_file_delete", s(format!("{url}~d"))),
            ("fileSize", s(f.content.len().to_string())),
            ("id", s(id.to_string())),
            ("filename", s(&f.name)),
            ("file_status", s(f.status)),
            ("folderId", Db::parent_ref(f.folder, id + 1)),
            ("shortUrl", s(&f.short)),
            ("fileType", s(&f.file_type)),
            ("extension", s(extension(&f.name))),
            ("uploadedIP", s("127.0.0.1")),
            ("uploadedDate", s(DATE)),
            ("downloads", s("0")),
            ("lastAccessed", s("")),
            ("keywords", s("")),
            ("isPublic", J::N(1)),
            ("uploadSource", s("api")),
            ("url_file", s(&url)),
            ("url_file_info", s(format!("{url}~i"))),
            ("url_file_stats", s(format!("{url}~s"))),
            (
                "storage",
                o(vec![
                    ("node", s("b")),
                    ("replicas", J::A(vec![J::N(1), J::N(2)])),
                ]),
            ),
        ])
    }

    fn add_file(&mut self, name: String, folder: Option<u64>, content: Arc<Vec<u8>>) -> u64 {
        self.next_file += 3;
        let id = self.next_file;
        self.files.insert(
            id,
            File {
                name,
                folder,
                status: "active",
                content,
                file_type: "application/octet-stream".into(),
                short: format!("v{id:x}"),
            },
        );
        id
    }

    /// `""` and `"null"` mean the root; otherwise a live folder is required.
    fn target(&self, raw: &str, param: &str, empty_is_root: bool) -> Result<Option<u64>, String> {
        match raw {
            "" if empty_is_root => Ok(None),
            "" => Err(format!("Please provide the {param} param.")),
            "null" => Ok(None),
            v => match parse_id(v).filter(|id| self.live_folder(*id).is_some()) {
                Some(id) => Ok(Some(id)),
                None => Err(format!(
                    "Could not find the destination folder id defined by {param}."
                )),
            },
        }
    }

    fn file_id(&self, inp: &Input) -> Result<u64, String> {
        if inp.get("file_id").is_empty() {
            return Err("Please provide the file_id param.".into());
        }
        parse_id(inp.get("file_id"))
            .filter(|id| self.files.contains_key(id))
            .ok_or_else(|| "Could not find file based on file_id.".into())
    }

    fn folder_id(&self, raw: &str) -> Result<u64, String> {
        if raw.is_empty() {
            return Err("Please provide the folder_id param.".into());
        }
        parse_id(raw)
            .filter(|id| self.live_folder(*id).is_some())
            .ok_or_else(|| "Could not find folder based on folder_id.".into())
    }

    /// Content behind one of this server's URLs.
    fn fetch_internal(&self, url: &str) -> Result<(String, Arc<Vec<u8>>), String> {
        let rest = url
            .strip_prefix(&self.base)
            .ok_or_else(|| format!("Could not connect to {url}"))?;
        if rest == "/static/logo.png" {
            return Ok(("logo.png".into(), Arc::new(logo())));
        }
        let token = rest.split("download_token=").nth(1).unwrap_or("");
        self.links
            .get(token)
            .and_then(|id| self.files.get(id))
            .map(|f| (f.name.clone(), f.content.clone()))
            .ok_or_else(|| "Remote server answered 404".into())
    }

    // ------------------------------------------------------ endpoints

    fn dispatch(&mut self, ep: &str, inp: Input) -> Response {
        let result = match ep {
            "authorize" => self.authorize(&inp),
            "disable_access_token"
            | "account/info"
            | "account/package"
            | "folder/listing"
            | "folder/create"
            | "folder/info"
            | "folder/edit"
            | "folder/move"
            | "folder/delete"
            | "file/upload"
            | "file/download"
            | "file/info"
            | "file/edit"
            | "file/move"
            | "file/copy"
            | "file/delete"
            | "file/url_upload_add"
            | "file/url_upload_status" => match self.check_token(ep, &inp) {
                Ok(()) => self.endpoint(ep, inp),
                Err(m) => Err(m),
            },
            _ => {
                let body = o(vec![
                    ("_status", s("error")),
                    ("0", s(format!("No method found within endpoint {ep}"))),
                ]);
                return respond(404, "application/json", &[], body.to_string());
            }
        };
        result.unwrap_or_else(|m| self.error(&m))
    }

    fn check_token(&self, ep: &str, inp: &Input) -> Result<(), String> {
        if inp.get("access_token").is_empty() {
            return Err("Please provide the access_token param.".into());
        }
        if inp.get("account_id").is_empty() {
            return Err("Please provide the account_id param.".into());
        }
        if self.token.as_deref() == Some(inp.get("access_token"))
            && parse_id(inp.get("account_id")) == Some(ACCOUNT)
        {
            Ok(())
        } else if ep.starts_with("account/") {
            Err(NO_TOKEN_ACCOUNT.into())
        } else {
            Err(NO_TOKEN.into())
        }
    }

    fn authorize(&mut self, inp: &Input) -> Result<Response, String> {
        for k in ["key1", "key2"] {
            if inp.get(k).len() != 64 {
                return Err(format!(
                    "Please provide {k}. It must be 64 characters in length."
                ));
            }
        }
        if inp.get("key1") != KEY1 || inp.get("key2") != KEY2 {
            return Err("Could not authenticate user. The key pair may be invalid or your account may be locked from too many failed logins.".into());
        }
        self.authorizations += 1;
        let token = md5_hex(format!("variant token {}", self.authorizations).as_bytes()).repeat(4);
        self.token = Some(token.clone());
        Ok(self.success(
            None,
            vec![(
                "data",
                o(vec![
                    ("account_id", J::N(ACCOUNT)),
                    ("expires_in", J::N(3600)),
                    ("access_token", s(token)),
                ]),
            )],
        ))
    }

    fn endpoint(&mut self, ep: &str, inp: Input) -> Result<Response, String> {
        match ep {
            "disable_access_token" => {
                self.token = None;
                Ok(self.success(Some("Token removed or no longer available."), vec![]))
            }
            "account/info" => Ok(self.success(
                None,
                vec![(
                    "data",
                    o(vec![
                        ("username", s("variant-user")),
                        ("id", J::N(ACCOUNT)),
                        ("level_id", J::N(20)),
                        ("email", s("variant@example.invalid")),
                        ("status", s("active")),
                        ("datecreated", s("")),
                        ("paidExpiryDate", J::Null),
                        ("lastlogindate", s(DATE)),
                        (
                            "preferences",
                            o(vec![
                                ("lang", s("en")),
                                ("list", J::A(vec![J::N(1), s("two"), J::Null])),
                            ]),
                        ),
                    ]),
                )],
            )),
            "account/package" => Ok(self.success(
                None,
                vec![(
                    "data",
                    o(vec![
                        ("max_upload_size", J::N(1_073_741_824)),
                        ("label", s("Variant Plan")),
                        ("can_upload", J::N(1)),
                        ("max_storage_bytes", s("0")),
                        ("concurrent_uploads", s("")),
                        ("concurrent_downloads", J::Null),
                        ("max_remote_download_urls", J::N(50)),
                        ("level_type", s("paid user")),
                        ("limits", J::A(vec![o(vec![("k", s("v"))])])),
                    ]),
                )],
            )),
            "folder/listing" => self.listing(&inp),
            "folder/create" => {
                let name = inp.get("folder_name").to_owned();
                if name.is_empty() {
                    return Err("Please provide the folder_name param.".into());
                }
                let parent = self.target(inp.get("parent_id"), "parent_id", true)?;
                self.next_folder += 1;
                let id = self.next_folder;
                let is_public = parse_id(inp.get("is_public")).unwrap_or(0);
                self.folders.insert(
                    id,
                    Folder {
                        name,
                        parent,
                        trashed: false,
                        is_public,
                    },
                );
                let data = self.folder_json(id, true);
                Ok(self.success(Some("Folder successfully created."), vec![("data", data)]))
            }
            "folder/info" => {
                // API-NOTES: the server reads folder_id; fall back to the published name.
                let raw = match inp.get("folder_id") {
                    "" => inp.get("parent_folder_id"),
                    v => v,
                };
                let id = self.folder_id(raw)?;
                let data = self.folder_json(id, true);
                Ok(self.success(None, vec![("data", data)]))
            }
            "folder/edit" => {
                let id = self.folder_id(inp.get("folder_id"))?;
                let parent = match inp.get("parent_id") {
                    "" => None,
                    v => Some(self.target(v, "parent_id", true)?),
                };
                let f = self.folders.get_mut(&id).unwrap();
                if !inp.get("folder_name").is_empty() {
                    f.name = inp.get("folder_name").to_owned();
                }
                if let Some(p) = parse_id(inp.get("is_public")) {
                    f.is_public = p;
                }
                if let Some(p) = parent {
                    f.parent = p;
                }
                let data = self.folder_json(id, true);
                Ok(self.success(Some("Folder successfully updated."), vec![("data", data)]))
            }
            "folder/move" => {
                let id = self.folder_id(inp.get("folder_id"))?;
                let to = self.target(
                    inp.get("new_parent_folder_id"),
                    "new_parent_folder_id",
                    false,
                )?;
                let mut up = to;
                while let Some(p) = up {
                    if p == id {
                        return Err("A folder can not be moved into itself.".into());
                    }
                    up = self.folders[&p].parent;
                }
                self.folders.get_mut(&id).unwrap().parent = to;
                let data = self.folder_json(id, false);
                Ok(self.success(Some("Folder successfully moved."), vec![("data", data)]))
            }
            "folder/delete" => {
                let id = self.folder_id(inp.get("folder_id"))?;
                let mut stack = vec![id];
                while let Some(d) = stack.pop() {
                    self.folders.get_mut(&d).unwrap().trashed = true;
                    stack.extend(
                        self.folders
                            .iter()
                            .filter(|(_, f)| f.parent == Some(d) && !f.trashed)
                            .map(|(k, _)| *k),
                    );
                    for f in self.files.values_mut().filter(|f| f.folder == Some(d)) {
                        if f.status == "active" {
                            f.status = "trash";
                        }
                    }
                }
                Ok(self.success(Some("Folder successfully set as deleted."), vec![]))
            }
            "file/upload" => self.upload(inp),
            "file/download" => {
                let id = self.file_id(&inp)?;
                if self.files[&id].status != "active" {
                    return Err("Could not find file based on file_id.".into());
                }
                let token = md5_hex(format!("dl {id} {}", self.links.len()).as_bytes());
                self.links.insert(token.clone(), id);
                let f = &self.files[&id];
                let data = o(vec![
                    (
                        "download_url",
                        s(format!(
                            "{}/dl/{}?download_token={token}",
                            self.base, f.short
                        )),
                    ),
                    ("filename", s(&f.name)),
                    ("file_id", J::N(id)),
                    (
                        "expires",
                        o(vec![("at", s(DATE)), ("seconds", J::N(86_400))]),
                    ),
                ]);
                Ok(self.success(None, vec![("data", data)]))
            }
            "file/info" => {
                let id = self.file_id(&inp)?;
                let data = self.info_file_json(id);
                Ok(self.success(None, vec![("data", data)]))
            }
            "file/edit" => {
                let id = self.file_id(&inp)?;
                let folder = match inp.get("folder_id") {
                    "" => None,
                    v => Some(self.target(v, "folder_id", true)?),
                };
                let f = self.files.get_mut(&id).unwrap();
                if !inp.get("filename").is_empty() {
                    f.name = inp.get("filename").to_owned();
                }
                if !inp.get("fileType").is_empty() {
                    f.file_type = inp.get("fileType").to_owned();
                }
                if let Some(d) = folder {
                    f.folder = d;
                }
                let data = self.info_file_json(id);
                Ok(self.success(Some("File successfully updated."), vec![("data", data)]))
            }
            "file/move" => {
                let id = self.file_id(&inp)?;
                if self.files[&id].status != "active" {
                    return Err("Could not find file based on file_id.".into());
                }
                let to = self.target(
                    inp.get("new_parent_folder_id"),
                    "new_parent_folder_id",
                    false,
                )?;
                self.files.get_mut(&id).unwrap().folder = to;
                let data = self.info_file_json(id);
                Ok(self.success(Some("File successfully moved."), vec![("data", data)]))
            }
            "file/copy" => {
                let id = self.file_id(&inp)?;
                if self.files[&id].status != "active" {
                    return Err("Could not find file based on file_id.".into());
                }
                let to = self.target(inp.get("copy_to_folder_id"), "copy_to_folder_id", false)?;
                let (name, content) = {
                    let f = &self.files[&id];
                    (f.name.clone(), f.content.clone())
                };
                let new = self.add_file(name, to, content);
                let fields = vec![
                    (
                        "new_file",
                        o(vec![
                            ("data", self.info_file_json(new)),
                            ("kind", s("copy")),
                        ]),
                    ),
                    ("original_file", o(vec![("data", self.info_file_json(id))])),
                ];
                Ok(self.success(Some("File successfully copied."), fields))
            }
            "file/delete" => {
                let id = self.file_id(&inp)?;
                if self.files[&id].status != "active" {
                    return Err("Could not find file based on file_id.".into());
                }
                self.files.get_mut(&id).unwrap().status = "trash";
                let f = &self.files[&id];
                let data = o(vec![
                    ("status", s("trash")),
                    ("id", J::N(id)),
                    ("filename", s(&f.name)),
                    ("shortUrl", s(&f.short)),
                ]);
                Ok(self.success(
                    Some("File successfully set as deleted."),
                    vec![("data", data)],
                ))
            }
            "file/url_upload_add" => {
                use base64::Engine;
                let raw = inp.get("file_url_base64");
                if raw.is_empty() {
                    return Err("Please provide the file_url_base64 param.".into());
                }
                let url = base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or("Could not parse the file_url_base64 parameter. Ensure it's base64 encoded.")?;
                let folder = self.target(inp.get("folder_id"), "folder_id", true)?;
                self.next_import += 1;
                let id = self.next_import;
                let fetched = self.fetch_internal(&url);
                self.imports.insert(
                    id,
                    Import {
                        url: url.clone(),
                        folder,
                        fetched,
                        polls: 0,
                        file: None,
                    },
                );
                let data = o(vec![
                    ("url", s(url)),
                    ("scheduled_item_id", s(id.to_string())),
                ]);
                Ok(self.success(
                    Some("File download from URL scheduled"),
                    vec![("data", data)],
                ))
            }
            "file/url_upload_status" => self.import_status(&inp),
            _ => unreachable!("{ep}"),
        }
    }

    fn listing(&mut self, inp: &Input) -> Result<Response, String> {
        let parent = match inp.get("parent_folder_id") {
            "" | "null" => None,
            v => match parse_id(v).filter(|id| self.live_folder(*id).is_some()) {
                Some(id) => Some(id),
                None => return Ok(self.success(None, vec![("data", o(vec![]))])),
            },
        };
        // Folders by name descending, files by id descending (trashed ones too).
        let mut folders: Vec<(&String, u64)> = self
            .folders
            .iter()
            .filter(|(_, f)| f.parent == parent && !f.trashed)
            .map(|(id, f)| (&f.name, *id))
            .collect();
        folders.sort();
        folders.reverse();
        let folders: Vec<J> = folders
            .into_iter()
            .map(|(_, id)| self.folder_json(id, false))
            .collect();
        let files: Vec<J> = self
            .files
            .iter()
            .rev()
            .filter(|(_, f)| f.folder == parent && f.status != "deleted")
            .map(|(id, _)| self.listed_file_json(*id))
            .collect();
        let data = if folders.is_empty() && files.is_empty() {
            self.empty_listings += 1;
            match self.empty_listings % 3 {
                0 => o(vec![("folders", J::A(vec![])), ("files", J::A(vec![]))]),
                1 => o(vec![]),
                _ => o(vec![
                    ("files", J::Null),
                    ("folders", J::Null),
                    ("total", J::N(0)),
                ]),
            }
        } else {
            let counts = o(vec![
                ("folders", s(folders.len().to_string())),
                ("files", J::N(files.len() as u64)),
            ]);
            let mut v = vec![("summary", counts)];
            if !files.is_empty() {
                v.push(("files", J::A(files)));
            }
            if !folders.is_empty() {
                v.push(("folders", J::A(folders)));
            }
            o(v)
        };
        Ok(self.success(None, vec![("data", data)]))
    }

    fn upload(&mut self, inp: Input) -> Result<Response, String> {
        let Some((sent_name, content)) = inp.upload.as_ref() else {
            return Err("Did not receive uploaded file.".into());
        };
        if content.is_empty() {
            return Err("Filesize received was zero.".into());
        }
        // An unknown folder_id silently means the root.
        let folder = parse_id(inp.get("folder_id")).filter(|id| self.live_folder(*id).is_some());
        let name: String = sent_name
            .chars()
            .filter(|c| !matches!(c, '"' | '\'' | '\r' | '\n'))
            .collect();
        let hash = md5_hex(content).to_ascii_uppercase();
        let size = content.len() as u64;
        let id = self.add_file(name.clone(), folder, Arc::new(content.clone()));
        let short = self.files[&id].short.clone();
        let url = format!("{}/{short}", self.base);
        let item = o(vec![
            ("file_id", J::N(id)),
            ("hash", s(hash)),
            ("error", J::Null),
            ("size", J::N(size)),
            ("name", s(&name)),
            ("short_url", s(&short)),
            ("url", s(&url)),
            ("type", s("application/octet-stream")),
            (
                "unique_hash",
                s(md5_hex(format!("u{id}").as_bytes()).repeat(2)),
            ),
            ("delete_url", s(format!("{url}~d?x"))),
            ("info_url", s(format!("{url}~i?x"))),
            ("stats_url", s(format!("{url}~s"))),
            ("delete_type", s("DELETE")),
            ("delete_hash", s("x")),
            ("url_html", s(format!("<a href=\"{url}\">{name}</a>"))),
            ("url_bbcode", s(format!("[url]{url}[/url]"))),
            (
                "scan",
                o(vec![("virus", J::Null), ("engines", J::A(vec![]))]),
            ),
        ]);
        Ok(self.success(Some("File uploaded"), vec![("data", J::A(vec![item]))]))
    }

    fn import_status(&mut self, inp: &Input) -> Result<Response, String> {
        let raw = inp.get("scheduled_item_id");
        if raw.is_empty() {
            return Err("Please provide the scheduled_item_id param.".into());
        }
        let id = parse_id(raw)
            .filter(|id| self.imports.contains_key(id))
            .ok_or("Could not find scheduled item based on scheduled_item_id.")?;
        let polls = {
            let imp = self.imports.get_mut(&id).unwrap();
            imp.polls += 1;
            imp.polls
        };
        let (folder, fetched) = {
            let imp = &self.imports[&id];
            (imp.folder, imp.fetched.clone())
        };
        let mut v = vec![
            ("created", s(DATE)),
            ("scheduled_item_id", s(id.to_string())),
            ("url", s(&self.imports[&id].url)),
        ];
        match fetched {
            _ if polls == 1 => {
                v.push(("status", s("downloading")));
                v.push(("started", s(DATE)));
                v.push(("finished", s("")));
                v.push(("downloaded_size", s("0")));
                v.push(("downloaded_file", J::Null));
            }
            Ok((name, content)) => {
                let size = content.len() as u64;
                let file = match self.imports[&id].file {
                    Some(f) => f,
                    None => {
                        let f = self.add_file(name.clone(), folder, content);
                        self.imports.get_mut(&id).unwrap().file = Some(f);
                        f
                    }
                };
                v.push(("status", s("complete")));
                v.push(("finished", s(DATE)));
                v.push(("total_size", s(size.to_string())));
                v.push((
                    "downloaded_file",
                    o(vec![
                        ("size", s(size.to_string())),
                        ("file_id", s(file.to_string())),
                        ("name", s(name)),
                        (
                            "url",
                            s(format!("{}/{}", self.base, self.files[&file].short)),
                        ),
                        ("extra", J::A(vec![J::N(1)])),
                    ]),
                ));
            }
            Err(e) => {
                v.push(("status", s("failed")));
                v.push(("error", s(e)));
            }
        }
        Ok(self.success(
            Some("Scheduled URL file download found"),
            vec![("data", o(v))],
        ))
    }
}

fn logo() -> Vec<u8> {
    bytes(30_000, 77)
}

// ------------------------------------------------------------- handlers

async fn api(State(db): State<Shared>, AxPath(ep): AxPath<String>, req: Request) -> Response {
    // The whole body is read first (a proxy would too), then maybe limited.
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return respond(400, "text/plain", &[], "bad body".into());
    };
    if let Some(r) = db.lock().unwrap().throttle() {
        return r;
    }
    let req = Request::from_parts(parts, Body::from(body));
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut inp = Input::default();
    if multipart {
        let mut mp = match Multipart::from_request(req, &()).await {
            Ok(m) => m,
            Err(e) => return e.into_response(),
        };
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return e.into_response(),
            };
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let Ok(data) = field.bytes().await else {
                return respond(400, "text/plain", &[], "bad part".into());
            };
            match file_name {
                Some(f) if name == "upload_file" => inp.upload = Some((f, data.to_vec())),
                _ => {
                    inp.fields
                        .insert(name, String::from_utf8_lossy(&data).into_owned());
                }
            }
        }
    } else {
        match axum::Form::<HashMap<String, String>>::from_request(req, &()).await {
            Ok(axum::Form(f)) => inp.fields = f,
            Err(e) => return e.into_response(),
        }
    }
    let mut db = db.lock().unwrap();
    db.calls.push((ep.clone(), inp.fields.clone()));
    db.dispatch(&ep, inp)
}

async fn download(
    State(db): State<Shared>,
    AxPath(short): AxPath<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut db = db.lock().unwrap();
    if let Some(r) = db.throttle() {
        return r;
    }
    let content = q
        .get("download_token")
        .and_then(|t| db.links.get(t))
        .and_then(|id| db.files.get(id))
        .filter(|f| f.short == short && f.status == "active")
        .map(|f| f.content.clone());
    let Some(content) = content else {
        let page =
            "<!DOCTYPE html><html><body><p>File not found or link expired.</p></body></html>";
        return respond(200, "text/html; charset=UTF-8", &[], page.into());
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let start = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let len = content.len();
    let (status, from) = match start {
        Some(n) if n > 0 && n < len => (206, n),
        Some(n) if n >= len && len > 0 => (416, len),
        _ => (200, 0),
    };
    if !range.is_empty() {
        db.ranges.push((range, status));
    }
    drop(db);
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes");
    if status == 206 {
        b = b.header(
            header::CONTENT_RANGE,
            format!("bytes {from}-{}/{len}", len - 1),
        );
    }
    if status == 416 {
        b = b.header(header::CONTENT_RANGE, format!("bytes */{len}"));
        return b.body(Body::empty()).unwrap();
    }
    b.body(Body::from(content[from..].to_vec())).unwrap()
}

async fn static_logo() -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "image/png")
        .body(Body::from(logo()))
        .unwrap()
}

// ---------------------------------------------------------------- runner

/// The variant server plus a scratch dir, and a runner for the real binary.
struct Variant {
    db: Shared,
    base: String,
    dir: tempfile::TempDir,
}

impl Variant {
    async fn start() -> Variant {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let db: Shared = Arc::new(Mutex::new(Db::new(base.clone())));
        let app = Router::new()
            .route("/api/v2/{*endpoint}", post(api))
            .route("/dl/{short}", get(download))
            .route("/static/logo.png", get(static_logo))
            .layer(DefaultBodyLimit::disable())
            .with_state(db.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Variant {
            db,
            base,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    async fn dcsync(&self, args: &[&str]) -> Run {
        self.dcsync_as(KEY1, KEY2, "state", args).await
    }

    /// Runs the binary with a config of the given keys and state dir.
    async fn dcsync_as(&self, key1: &str, key2: &str, state: &str, args: &[&str]) -> Run {
        let cfg = self.path(&format!("{state}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "api_url = \"{}/api/v2/\"\nkey1 = \"{key1}\"\nkey2 = \"{key2}\"\nstate_dir = \"{}\"\n",
                self.base,
                self.path(state).display()
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcsync"))
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env_remove("DCSYNC_KEY1")
            .env_remove("DCSYNC_KEY2")
            .env_remove("DCSYNC_CONFIG")
            .env("DCSYNC_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Every active file by full path, with its content.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let db = self.db();
        let path_of = |mut f: Option<u64>| -> Option<String> {
            let mut parts = vec![];
            while let Some(id) = f {
                let d = db.live_folder(id)?;
                parts.push(d.name.clone());
                f = d.parent;
            }
            parts.reverse();
            Some(parts.iter().map(|p| format!("/{p}")).collect())
        };
        db.files
            .values()
            .filter(|f| f.status == "active")
            .filter_map(|f| {
                Some((
                    format!("{}/{}", path_of(f.folder)?, f.name),
                    f.content.to_vec(),
                ))
            })
            .collect()
    }

    /// Every live folder by full path.
    fn dirs(&self) -> BTreeSet<String> {
        let db = self.db();
        db.folders
            .iter()
            .filter(|(_, f)| !f.trashed)
            .filter_map(|(id, _)| {
                let mut parts = vec![];
                let mut cur = Some(*id);
                while let Some(c) = cur {
                    let d = db.live_folder(c)?;
                    parts.push(d.name.clone());
                    cur = d.parent;
                }
                parts.reverse();
                Some(parts.iter().map(|p| format!("/{p}")).collect())
            })
            .collect()
    }

    fn called(&self, ep: &str, field: &str, value: &str) -> bool {
        self.db()
            .calls
            .iter()
            .any(|(e, f)| e == ep && f.get(field).map(String::as_str) == Some(value))
    }
}

fn names(v: &serde_json::Value, key: &str) -> BTreeSet<String> {
    v[key]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// ----------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_remote_command_works_against_a_different_server() {
    let v = Variant::start().await;
    v.dcsync(&["remote", "mkdir", "-p", "/Photos/2024"])
        .await
        .ok();
    assert_eq!(v.dirs(), set(&["/Photos", "/Photos/2024"]));
    let ls = v.dcsync(&["remote", "ls", "/Photos"]).await;
    assert!(ls.ok().stdout.contains("2024/"), "{ls:?}");
    // An empty folder in each of the three shapes.
    for _ in 0..3 {
        let r = v.dcsync(&["remote", "ls", "/Photos/2024"]).await;
        assert_eq!(r.ok().stdout.trim(), "", "{r:?}");
    }
    assert!(v.db().empty_listings >= 3);

    // put: a file, then a folder tree (one name the upload mangles).
    let beach = bytes(300_000, 1);
    let local = v.write("pics/beach.jpg", &beach);
    v.write("pics/sub/deep.txt", b"deep file");
    v.write("pics/it's.txt", b"quoted");
    v.dcsync(&["remote", "put", local.to_str().unwrap(), "/Photos/2024"])
        .await
        .ok();
    let pics = v.path("pics");
    v.dcsync(&["remote", "put", pics.to_str().unwrap(), "/Backup"])
        .await
        .ok();
    let files = v.files();
    assert_eq!(files["/Photos/2024/beach.jpg"], beach);
    assert_eq!(files["/Backup/pics/beach.jpg"], beach);
    assert_eq!(files["/Backup/pics/sub/deep.txt"], b"deep file");
    assert_eq!(
        files["/Backup/pics/it's.txt"],
        b"quoted",
        "{:?}",
        files.keys()
    );
    let top = v.write("top.txt", b"top level");
    v.dcsync(&["remote", "put", top.to_str().unwrap(), "/"])
        .await
        .ok();
    assert_eq!(v.files()["/top.txt"], b"top level");
    assert!(
        v.called("file/upload", "folder_id", ""),
        "root uploads send an empty folder_id"
    );

    let tree = v.dcsync(&["remote", "tree", "/Backup"]).await;
    let t = &tree.ok().stdout;
    for want in [
        "pics/",
        "sub/",
        "deep.txt (9 bytes)",
        "beach.jpg (300000 bytes)",
        "it's.txt",
    ] {
        assert!(t.contains(want), "tree lacks {want:?}: {t}");
    }
    assert!(t.contains("2 folders, 3 files"), "{t}");

    let ls = v.dcsync(&["remote", "ls", "--json", "/Backup/pics"]).await;
    let j: serde_json::Value = serde_json::from_str(&ls.ok().stdout).unwrap();
    assert_eq!(names(&j, "files"), set(&["beach.jpg", "it's.txt"]), "{j}");
    assert_eq!(names(&j, "folders"), set(&["sub"]), "{j}");
    let beach_json = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "beach.jpg")
        .unwrap();
    assert_eq!(beach_json["size"], 300_000);
    let sub_json = &j["folders"][0];
    assert_eq!(sub_json["file_count"], 1, "{sub_json}");
    assert_eq!(sub_json["child_folder_count"], 0, "{sub_json}");
    let sub_id = sub_json["id"].as_u64().unwrap();
    let beach_id = beach_json["id"].as_u64().unwrap();

    // info by path, by file:N (file/info), folder:N (folder/info), id:N (both).
    let info = v
        .dcsync(&["remote", "info", "/Photos/2024/beach.jpg"])
        .await;
    let out = &info.ok().stdout;
    assert!(
        out.contains("kind: file") && out.contains("size: 300000"),
        "{out}"
    );
    let info = v.dcsync(&["remote", "info", "/Photos"]).await;
    assert!(info.ok().stdout.contains("kind: folder"), "{info:?}");
    let r = v
        .dcsync(&["remote", "ls", &format!("file:{beach_id}")])
        .await;
    assert!(r.ok().stdout.contains("beach.jpg"), "{r:?}");
    let r = v
        .dcsync(&["remote", "ls", &format!("folder:{sub_id}")])
        .await;
    assert!(r.ok().stdout.contains("deep.txt"), "{r:?}");
    assert!(v.called("folder/info", "folder_id", &sub_id.to_string()));
    let r = v
        .dcsync(&["remote", "info", "--json", &format!("id:{beach_id}")])
        .await;
    let j: serde_json::Value = serde_json::from_str(&r.ok().stdout).unwrap();
    assert_eq!(j["kind"], "file", "{j}");
    assert_eq!(j["status"], "active", "{j}");

    // get: byte-identical, a file and a folder; then a resumed download.
    let out = v.path("beach.out");
    v.dcsync(&[
        "remote",
        "get",
        "/Photos/2024/beach.jpg",
        out.to_str().unwrap(),
    ])
    .await
    .ok();
    assert_eq!(read(&out), beach);
    let dl = v.path("dl");
    std::fs::create_dir_all(&dl).unwrap();
    v.dcsync(&["remote", "get", "/Backup/pics", dl.to_str().unwrap()])
        .await
        .ok();
    assert_eq!(read(&dl.join("pics/beach.jpg")), beach);
    assert_eq!(read(&dl.join("pics/sub/deep.txt")), b"deep file");
    assert_eq!(read(&dl.join("pics/it's.txt")), b"quoted");
    let resumed = v.path("resumed.jpg");
    std::fs::write(v.path(".resumed.jpg.dcsync-part"), &beach[..123_456]).unwrap();
    v.dcsync(&[
        "remote",
        "get",
        "/Photos/2024/beach.jpg",
        resumed.to_str().unwrap(),
    ])
    .await
    .ok();
    assert_eq!(read(&resumed), beach);
    // A partial file this run did not make is never resumed from (#10
    // rule 3): the whole file is fetched again.
    assert!(
        !v.db().ranges.iter().any(|(r, _)| r == "bytes=123456-"),
        "{:?}",
        v.db().ranges
    );

    // mv (move + rename), rename, cp of a file and of a folder, mv to the root.
    v.dcsync(&[
        "remote",
        "mv",
        "/Photos/2024/beach.jpg",
        "/Photos/beach-2024.jpg",
    ])
    .await
    .ok();
    v.dcsync(&["remote", "rename", "/Photos/2024", "Year 2024"])
        .await
        .ok();
    let r = v
        .dcsync(&[
            "remote",
            "cp",
            "/Photos/beach-2024.jpg",
            "/Photos/Year 2024",
        ])
        .await;
    assert!(r.ok().stdout.starts_with("file:"), "{r:?}");
    let r = v
        .dcsync(&["remote", "cp", "/Backup/pics", "/Photos/Year 2024"])
        .await;
    assert!(r.ok().stdout.starts_with("folder:"), "{r:?}");
    v.dcsync(&["remote", "mv", "/Backup/pics/sub", "/"])
        .await
        .ok();
    assert!(v.called("folder/move", "new_parent_folder_id", "null"));
    let files = v.files();
    assert_eq!(files["/Photos/beach-2024.jpg"], beach);
    assert_eq!(files["/Photos/Year 2024/beach-2024.jpg"], beach);
    assert_eq!(files["/Photos/Year 2024/pics/beach.jpg"], beach);
    assert_eq!(files["/Photos/Year 2024/pics/sub/deep.txt"], b"deep file");
    assert_eq!(files["/sub/deep.txt"], b"deep file");
    assert!(!files.contains_key("/Backup/pics/sub/deep.txt"));

    // The token expires on the host: the next command authorizes by itself.
    let before = v.db().authorizations;
    v.db().token = None;
    let ls = v
        .dcsync(&["remote", "ls", "--json", "/Photos/Year 2024"])
        .await;
    let j: serde_json::Value = serde_json::from_str(&ls.ok().stdout).unwrap();
    assert_eq!(names(&j, "files"), set(&["beach-2024.jpg"]), "{j}");
    assert_eq!(names(&j, "folders"), set(&["pics"]), "{j}");
    assert_eq!(v.db().authorizations, before + 1);
    // Again, so that token errors were answered with both HTTP 401 and 200.
    v.db().token = None;
    v.dcsync(&["remote", "ls", "/Photos"]).await.ok();
    assert_eq!(v.db().authorizations, before + 2);
    assert!(v.db().error_statuses.contains(&401));

    // rm of a file, refusal without -r, rm -r; trashed files stay listed as
    // `trash` by this server and the client must not show them.
    v.dcsync(&["remote", "rm", "/Photos/beach-2024.jpg"])
        .await
        .ok();
    v.dcsync(&["remote", "rm", "/Photos/Year 2024"])
        .await
        .fails_with(2, "pass -r");
    v.dcsync(&["remote", "rm", "-r", "/Photos/Year 2024"])
        .await
        .ok();
    let ls = v.dcsync(&["remote", "ls", "/Photos"]).await;
    let out = &ls.ok().stdout;
    assert!(!out.contains("beach") && !out.contains("Year"), "{out}");
    assert!(v.files().keys().all(|k| !k.starts_with("/Photos/")));

    // account, package.
    let r = v.dcsync(&["remote", "account"]).await;
    let out = &r.ok().stdout;
    assert!(
        out.contains("username: variant-user") && out.contains("level_id: 20"),
        "{out}"
    );
    let r = v.dcsync(&["remote", "package", "--json"]).await;
    let j: serde_json::Value = serde_json::from_str(&r.ok().stdout).unwrap();
    assert_eq!(j["max_upload_size"], 1_073_741_824u64, "{j}");
    assert_eq!(j["label"], "Variant Plan", "{j}");

    // import-url --wait: one `downloading` round, then complete.
    let url = format!("{}/static/logo.png", v.base);
    let r = v
        .dcsync(&["remote", "import-url", &url, "/Photos", "--wait"])
        .await;
    let out = &r.ok().stdout;
    assert!(
        out.contains("complete: file:") && out.contains("logo.png"),
        "{r:?}"
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("scheduled "))
        .unwrap()
        .trim()
        .to_owned();
    let st = v.dcsync(&["remote", "import-status", &id]).await;
    assert!(st.ok().stdout.contains("status: complete"), "{st:?}");
    assert_eq!(v.files()["/Photos/logo.png"], logo());

    // logout ends the token on the host; the next command logs in again.
    v.dcsync(&["remote", "logout"]).await.ok();
    assert!(v.db().token.is_none());
    assert!(v.called("disable_access_token", "account_id", &ACCOUNT.to_string()));
    let r = v.dcsync(&["remote", "ls"]).await;
    assert!(r.ok().stdout.contains("Photos/"), "{r:?}");
    assert!(v.db().token.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_a_different_server_read_clearly() {
    let v = Variant::start().await;
    v.dcsync(&["remote", "mkdir", "/here"]).await.ok();
    let r = v.dcsync(&["remote", "ls", "/nope"]).await;
    r.fails_with(1, "\"/nope\" does not exist");
    let r = v.dcsync(&["remote", "get", "/here/nope", "x"]).await;
    r.fails_with(1, "does not exist");
    // file/info and folder/info errors, answered with rotating HTTP statuses.
    for _ in 0..3 {
        let r = v.dcsync(&["remote", "ls", "file:12345"]).await;
        r.fails_with(1, "does not exist");
        let r = v.dcsync(&["remote", "ls", "folder:12345"]).await;
        r.fails_with(1, "does not exist");
    }
    // Wrong keys, twice (errors come back with HTTP 400 and 200): exit 2,
    // the key never echoed.
    let wrong = "7".repeat(64);
    for state in ["bad1", "bad2"] {
        let r = v
            .dcsync_as(&wrong, &wrong, state, &["-vvv", "remote", "ls"])
            .await;
        r.fails_with(2, "refused the credentials");
        assert!(!r.stderr.contains(&wrong), "key leaked: {r:?}");
    }
    let statuses: BTreeSet<u16> = v.db().error_statuses.iter().copied().collect();
    assert!(
        statuses.is_superset(&[200, 400, 404].into_iter().collect()),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_succeed_while_every_other_request_is_rate_limited() {
    let v = Variant::start().await;
    let one = bytes(150_000, 3);
    let p = v.write("one.bin", &one);
    v.dcsync(&["remote", "put", p.to_str().unwrap(), "/rl"])
        .await
        .ok();

    v.db().limit = Limit::EveryOther;
    // Every logical request meets one 429 (its retry is the "other" one),
    // so each command here is kept to a few requests.
    let r = v.dcsync(&["remote", "ls", "--json", "/rl"]).await;
    let j: serde_json::Value = serde_json::from_str(&r.ok().stdout).unwrap();
    assert_eq!(names(&j, "files"), set(&["one.bin"]), "{j}");
    v.dcsync(&["remote", "mkdir", "/rl/new"]).await.ok();
    let two = bytes(80_000, 4);
    let p2 = v.write("two.bin", &two);
    v.dcsync(&["remote", "put", p2.to_str().unwrap(), "/rl"])
        .await
        .ok();
    let out = v.path("one.out");
    v.dcsync(&["remote", "get", "/rl/one.bin", out.to_str().unwrap()])
        .await
        .ok();
    assert_eq!(read(&out), one);
    let limited = v.db().limited;
    assert!(
        limited >= 8,
        "only {limited} answers were 429 (all four shapes need 8)"
    );

    // Exactly one of each upload and folder (no duplicate from a retried 429).
    let files = v.files();
    assert_eq!(files.len(), 2, "{:?}", files.keys());
    assert_eq!(files["/rl/two.bin"], two);
    assert_eq!(v.dirs(), set(&["/rl", "/rl/new"]));

    // An /authorize answered 429 is retried too.
    v.db().limit = Limit::Off;
    v.dcsync(&["remote", "logout"]).await.ok();
    let before = v.db().authorizations;
    v.db().limit = Limit::Next(2);
    let r = v.dcsync(&["remote", "ls", "/rl"]).await;
    assert!(r.ok().stdout.contains("one.bin"), "{r:?}");
    assert_eq!(v.db().authorizations, before + 1);
    assert_eq!(v.db().limit, Limit::Next(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_survives_a_rate_limited_answer() {
    let v = Variant::start().await;
    v.dcsync(&["remote", "ls"]).await.ok();
    assert!(v.db().token.is_some());
    v.db().limit = Limit::Next(1);
    let r = v.dcsync(&["remote", "logout"]).await;
    r.ok();
    assert!(v.db().token.is_none(), "the host still holds the token");
}
