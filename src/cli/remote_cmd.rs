//! `dcsync remote ...`: a small rclone-like tool over the API client.
//!
//! Owns the behaviour of each remote subcommand: path resolution, what
//! counts as a conflict (an existing name is never silently overwritten or
//! duplicated), restoring names the host changed on upload, and recovering
//! from uploads whose outcome is unknown. It never writes outside the local
//! paths the user named, and never deletes without being asked.

use super::progress::Bar;
use super::{CliError, Ui};
use crate::api::folders::{self, Made};
use crate::api::{
    ApiError, Client, Expected, FileId, FolderId, FolderOptions, Listing, RemoteFile, UploadedFile,
};
use crate::remote::{self, Entry, RemoteError, Want};
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum RemoteCmd {
    /// List a folder (default: the account root).
    Ls {
        path: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a folder and everything below it.
    Tree { path: Option<String> },
    /// Details of a file or folder.
    Info {
        path: String,
        #[arg(long)]
        json: bool,
    },
    /// Create a folder.
    Mkdir {
        path: String,
        /// Create missing parents; an existing folder is not an error.
        #[arg(short, long)]
        parents: bool,
    },
    /// Upload files or folders into a remote folder (created if missing).
    Put {
        /// Local files or folders, then the remote folder.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
        /// Replace files of the same name (the old version goes to the host's trash).
        #[arg(long)]
        overwrite: bool,
    },
    /// Download a file or folder.
    Get {
        /// The remote file or folder (a path, or `id:N` / `file:N` / `folder:N`).
        path: String,
        /// Where to put it: an existing local folder (the remote name is
        /// kept), or a new path.
        local: PathBuf,
        /// Replace local files of the same name (without it, an existing
        /// file is left as it is and reported).
        #[arg(long)]
        overwrite: bool,
    },
    /// Move or rename a file or folder.
    Mv { src: String, dst: String },
    /// Copy a file or folder on the host (no download, no upload).
    Cp { src: String, dst: String },
    /// Rename a file or folder in place.
    Rename { path: String, new_name: String },
    /// Move a file or folder to the host's trash.
    Rm {
        path: String,
        /// Required to remove a folder (and everything below it).
        #[arg(short, long)]
        recursive: bool,
    },
    /// Ask the host to fetch a URL into a folder.
    ImportUrl {
        url: String,
        dir: Option<String>,
        /// Wait until the host has fetched it.
        #[arg(long)]
        wait: bool,
    },
    /// Status of a URL import.
    ImportStatus {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Account details.
    Account {
        #[arg(long)]
        json: bool,
    },
    /// Limits of the account's package.
    Package {
        #[arg(long)]
        json: bool,
    },
    /// End the access token shared by dcsync processes on this machine.
    Logout,
}

pub async fn run(client: &Client, cmd: RemoteCmd, ui: Ui) -> Result<(), CliError> {
    match cmd {
        RemoteCmd::Ls { path, json } => ls(client, path.as_deref().unwrap_or("/"), json).await,
        RemoteCmd::Tree { path } => tree(client, path.as_deref().unwrap_or("/")).await,
        RemoteCmd::Info { path, json } => info(client, &path, json).await,
        RemoteCmd::Mkdir { path, parents } => mkdir(client, &path, parents).await.map(|id| {
            out!("folder:{id}");
        }),
        RemoteCmd::Put {
            mut paths,
            overwrite,
        } => {
            let dir = paths.pop().unwrap_or_default();
            put(client, &paths, &dir, overwrite, ui).await
        }
        RemoteCmd::Get {
            path,
            local,
            overwrite,
        } => get(client, &path, &local, overwrite, ui).await,
        RemoteCmd::Mv { src, dst } => mv(client, &src, &dst).await,
        RemoteCmd::Cp { src, dst } => cp(client, &src, &dst).await,
        RemoteCmd::Rename { path, new_name } => rename(client, &path, &new_name).await,
        RemoteCmd::Rm { path, recursive } => rm(client, &path, recursive).await,
        RemoteCmd::ImportUrl { url, dir, wait } => {
            import_url(client, &url, dir.as_deref().unwrap_or("/"), wait).await
        }
        RemoteCmd::ImportStatus { id, json } => {
            let s = client.url_upload_status(id).await?;
            if json {
                print_json(&s);
            } else {
                out!("status: {}", s.status.as_deref().unwrap_or("unknown"));
                if let Some(t) = s.total_size {
                    out!("total_size: {t}");
                }
                if let Some(f) = &s.downloaded_file {
                    out!(
                        "file: file:{} {} ({} bytes)",
                        f.file_id.unwrap_or(0),
                        f.name.as_deref().unwrap_or(""),
                        f.size.unwrap_or(0)
                    );
                }
                if let Some(e) = &s.error {
                    out!("error: {e}");
                }
            }
            Ok(())
        }
        RemoteCmd::Account { json } => {
            let a = client.account_info().await?;
            if json {
                print_json(&a);
            } else {
                print_fields(&serde_json::to_value(&a).unwrap_or_default());
            }
            Ok(())
        }
        RemoteCmd::Package { json } => {
            let p = client.account_package().await?;
            if json {
                print_json(&p);
            } else {
                print_fields(&serde_json::to_value(&p).unwrap_or_default());
            }
            Ok(())
        }
        RemoteCmd::Logout => {
            client.disable_access_token().await?;
            out!("logged out");
            Ok(())
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => out!("{s}"),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

fn print_fields(v: &serde_json::Value) {
    if let Some(obj) = v.as_object() {
        for (k, v) in obj {
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => out!("{k}: {s}"),
                other => out!("{k}: {other}"),
            }
        }
    }
}

fn file_line(f: &RemoteFile) -> String {
    format!(
        "-  {:<14} {:>12}  {}",
        format!("file:{}", f.id),
        f.size,
        f.name
    )
}

fn folder_line(id: FolderId, name: &str) -> String {
    format!("d  {:<14} {:>12}  {}/", format!("folder:{id}"), "-", name)
}

async fn ls(client: &Client, path: &str, json: bool) -> Result<(), CliError> {
    match remote::resolve(client, path, Want::Any).await? {
        Entry::File(f) => {
            if json {
                print_json(&f);
            } else {
                out!("{}", file_line(&f));
            }
        }
        e => {
            let listing = client.folder_listing(e.as_parent().flatten()).await?;
            if json {
                print_json(&listing);
            } else {
                for d in &listing.folders {
                    out!("{}", folder_line(d.id, &d.name));
                }
                for f in &listing.files {
                    out!("{}", file_line(f));
                }
            }
        }
    }
    Ok(())
}

async fn tree(client: &Client, path: &str) -> Result<(), CliError> {
    let root = remote::resolve(client, path, Want::Folder).await?;
    let label = match &root {
        Entry::Folder(f) => f.name.clone(),
        _ => "/".to_owned(),
    };
    out!("{label}");
    let (mut folders, mut files) = (0u64, 0u64);
    // Depth-first with an explicit stack: (folder, name to print, depth).
    let mut stack = vec![(root.as_parent().flatten(), None::<String>, 0usize)];
    let mut seen = std::collections::HashSet::new();
    while let Some((id, name, depth)) = stack.pop() {
        if let Some(n) = &name {
            out!("{}{n}/", "  ".repeat(depth));
            folders += 1;
        }
        if let Some(i) = id
            && !seen.insert(i)
        {
            continue; // a cycle would be a host bug; do not loop forever
        }
        let l = client.folder_listing(id).await?;
        let indent = "  ".repeat(depth + 1);
        for f in &l.files {
            out!("{indent}{} ({} bytes)", f.name, f.size);
            files += 1;
        }
        for d in l.folders.iter().rev() {
            stack.push((Some(d.id), Some(d.name.clone()), depth + 1));
        }
    }
    out!("{folders} folders, {files} files");
    Ok(())
}

async fn info(client: &Client, path: &str, json: bool) -> Result<(), CliError> {
    let v = match remote::resolve(client, path, Want::Any).await? {
        Entry::Root => json!({"kind": "folder", "id": null, "name": "/"}),
        Entry::Folder(f) => {
            let mut v = serde_json::to_value(&f).unwrap_or_default();
            v["kind"] = json!("folder");
            v
        }
        Entry::File(f) => {
            let mut v = serde_json::to_value(&f).unwrap_or_default();
            v["kind"] = json!("file");
            v
        }
    };
    if json {
        print_json(&v);
    } else {
        print_fields(&v);
    }
    Ok(())
}

/// Creates `path` (and with `parents`, missing ancestors). Returns its id.
async fn mkdir(client: &Client, path: &str, parents: bool) -> Result<FolderId, CliError> {
    let Some((parent_path, name)) = remote::split_parent(path) else {
        return Err(CliError::Usage(format!(
            "cannot create {path:?}: give a folder path like /Photos/2024"
        )));
    };
    check_remote_name(&name)?;
    let parent = match remote::resolve(client, &parent_path, Want::Folder).await {
        Ok(e) => e.as_parent().flatten(),
        Err(RemoteError::NotFound { .. }) if parents => {
            Some(Box::pin(mkdir(client, &parent_path, true)).await?)
        }
        Err(RemoteError::NotFound { .. }) => {
            return Err(CliError::Usage(format!(
                "parent folder {parent_path:?} does not exist; use -p to create it"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let listing = client.folder_listing(parent).await?;
    if let Some(existing) = listing.folders.iter().find(|f| f.name == name) {
        if parents {
            return Ok(existing.id);
        }
        return Err(CliError::Usage(format!(
            "folder {path:?} already exists (folder:{})",
            existing.id
        )));
    }
    let created = create_folder(client, &name, parent).await?;
    tracing::info!(path, id = %created, "created folder");
    Ok(created)
}

/// `folder/create` that, when the host may have created the folder but the
/// answer was lost, adopts the folder instead of creating a second one
/// (`api::folders`); when the look shows it was not made, tries once more.
async fn create_folder(
    client: &Client,
    name: &str,
    parent: Option<FolderId>,
) -> Result<FolderId, CliError> {
    let before = client.folder_listing(parent).await?;
    let known = |id: FolderId| before.folders.iter().any(|f| f.id == id);
    let opts = FolderOptions::default();
    match folders::create_folder(client, name, parent, &opts, &known).await? {
        Made::Created(f) | Made::Found(f) => Ok(f.id),
        Made::NotMade(_) => {
            match folders::create_folder(client, name, parent, &opts, &known).await? {
                Made::Created(f) | Made::Found(f) => Ok(f.id),
                Made::NotMade(e) => Err(e.into()),
            }
        }
    }
}

fn check_remote_name(name: &str) -> Result<(), CliError> {
    if name.contains('/') || name.contains('\0') || name.trim().is_empty() {
        return Err(CliError::Usage(format!(
            "{name:?} is not a valid remote name (no '/', not empty)"
        )));
    }
    Ok(())
}

/// A name from the host that is safe to create in a local folder.
fn safe_local_name(name: &str) -> bool {
    !(name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\0')
        || (cfg!(windows) && name.contains('\\')))
}

/// Counts of what a multi-item command did.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
}

impl Tally {
    fn fail(&mut self, what: &str, e: &dyn std::fmt::Display) {
        eprintln!(
            "error: {}",
            crate::model::printable_text(&format!("{what}: {e}"))
        );
        self.failed += 1;
    }
    fn finish(self, verb: &str) -> Result<(), CliError> {
        if self.failed > 0 {
            Err(CliError::Partial(format!(
                "{} {verb}, {} failed (see above)",
                self.ok, self.failed
            )))
        } else {
            Ok(())
        }
    }
}

async fn put(
    client: &Client,
    sources: &[String],
    dir: &str,
    overwrite: bool,
    ui: Ui,
) -> Result<(), CliError> {
    let target = match remote::resolve(client, dir, Want::Folder).await {
        Ok(e) => e.as_parent().flatten(),
        Err(RemoteError::NotFound { .. }) => Some(mkdir(client, dir, true).await?),
        Err(e) => return Err(e.into()),
    };
    let mut tally = Tally::default();
    for src in sources {
        let p = PathBuf::from(src);
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                tally.fail(src, &e);
                continue;
            }
        };
        let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            tally.fail(
                src,
                &"the name is not valid UTF-8; the host cannot store it",
            );
            continue;
        };
        if meta.is_dir() {
            put_dir(client, &p, &name, target, overwrite, ui, &mut tally).await?;
        } else {
            let listing = client.folder_listing(target).await?;
            put_one(
                client, &p, &name, target, &listing, overwrite, ui, &mut tally,
            )
            .await;
        }
    }
    tally.finish("uploaded")
}

#[allow(clippy::too_many_arguments)]
async fn put_dir(
    client: &Client,
    dir: &Path,
    name: &str,
    parent: Option<FolderId>,
    overwrite: bool,
    ui: Ui,
    tally: &mut Tally,
) -> Result<(), CliError> {
    // (local dir, remote name, remote parent)
    let mut stack = vec![(dir.to_path_buf(), name.to_owned(), parent)];
    while let Some((local, name, parent)) = stack.pop() {
        let listing = client.folder_listing(parent).await?;
        let folder = match listing.folders.iter().find(|f| f.name == name) {
            Some(f) => f.id,
            None => create_folder(client, &name, parent).await?,
        };
        let inner = client.folder_listing(Some(folder)).await?;
        let mut entries: Vec<_> = match std::fs::read_dir(&local) {
            Ok(rd) => rd.filter_map(Result::ok).collect(),
            Err(e) => {
                tally.fail(&local.display().to_string(), &e);
                continue;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Some(child) = entry.file_name().to_str().map(str::to_owned) else {
                tally.fail(
                    &path.display().to_string(),
                    &"the name is not valid UTF-8; the host cannot store it",
                );
                continue;
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push((path, child, Some(folder))),
                Ok(t) if t.is_file() => {
                    put_one(
                        client,
                        &path,
                        &child,
                        Some(folder),
                        &inner,
                        overwrite,
                        ui,
                        tally,
                    )
                    .await
                }
                Ok(_) => eprintln!(
                    "warning: {}: not a regular file or folder (symlink?); skipped",
                    crate::model::printable_text(&path.display().to_string())
                ),
                Err(e) => tally.fail(&path.display().to_string(), &e),
            }
        }
    }
    Ok(())
}

/// Uploads one file so that it ends up under exactly `name` in `folder`.
#[allow(clippy::too_many_arguments)]
async fn put_one(
    client: &Client,
    path: &Path,
    name: &str,
    folder: Option<FolderId>,
    listing: &Listing,
    overwrite: bool,
    ui: Ui,
    tally: &mut Tally,
) {
    let what = path.display().to_string();
    // The host cannot store empty files: skipped with a warning (not a
    // failure of the whole command), as `sync` holds them back.
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        eprintln!(
            "warning: {}: empty; skipped (the host cannot store empty files)",
            crate::model::printable_text(&what)
        );
        return;
    }
    let existing: Vec<FileId> = listing
        .files
        .iter()
        .filter(|f| f.name == name)
        .map(|f| f.id)
        .collect();
    if !existing.is_empty() && !overwrite {
        tally.fail(
            &what,
            &format!("{name:?} already exists there; pass --overwrite to replace it"),
        );
        return;
    }
    match upload_exact(client, path, name, folder, listing, ui).await {
        Ok(up) => {
            for old in existing {
                if let Err(e) = client.file_delete(old).await {
                    tally.fail(&format!("trashing the old version of {name}"), &e);
                    return;
                }
            }
            if up.name != name
                && let Err(e) = client.file_rename(up.id, name).await
            {
                tally.fail(
                    &format!("restoring the name {name:?} (stored as {:?})", up.name),
                    &e,
                );
                return;
            }
            tracing::info!(path = %what, id = %up.id, "uploaded");
            out!("uploaded    {what} -> file:{} {name}", up.id);
            tally.ok += 1;
        }
        Err(e) => tally.fail(&what, &e),
    }
}

/// Uploads, restoring the name if the host changed it and there is no
/// other file of that name; adopts an upload whose answer was lost.
async fn upload_exact(
    client: &Client,
    path: &Path,
    name: &str,
    folder: Option<FolderId>,
    before: &Listing,
    ui: Ui,
) -> Result<UploadedFile, ApiError> {
    let size = std::fs::metadata(path)
        .map_err(|source| ApiError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let bar = Bar::new(ui.progress, size, name);
    let result = client.upload_file(path, name, folder, bar.callback()).await;
    bar.finish();
    let up = match result {
        Ok(up) => up,
        Err(ApiError::OutcomeUnknown { source, .. }) => {
            // Did it arrive? A new file of this size that was not there before.
            let after = client.folder_listing(folder).await?;
            let arrived = after.files.iter().find(|f| {
                f.size == size
                    && !before.files.iter().any(|b| b.id == f.id)
                    && crate::api::names::is_upload_variant(&f.name, name)
            });
            match arrived {
                Some(f) => UploadedFile {
                    id: f.id,
                    name: f.name.clone(),
                    size: f.size,
                    md5: String::new(),
                    short_url: f.short_url.clone(),
                    url: f.url.clone(),
                },
                None => {
                    tracing::info!(path = %path.display(), error = %source, "upload did not arrive; sending it again");
                    client.upload_file(path, name, folder, None).await?
                }
            }
        }
        Err(e) => return Err(e),
    };
    if up.name != name && !before.files.iter().any(|f| f.name == name) {
        let renamed = client.file_rename(up.id, name).await?;
        return Ok(UploadedFile {
            name: renamed.name,
            ..up
        });
    }
    Ok(up)
}

async fn get(
    client: &Client,
    path: &str,
    local: &Path,
    overwrite: bool,
    ui: Ui,
) -> Result<(), CliError> {
    if local == Path::new("-") {
        return Err(CliError::Usage(
            "`remote get` does not write to standard output; give a local file or folder path (e.g. `.`)".into(),
        ));
    }
    let entry = remote::resolve(client, path, Want::Any).await?;
    let mut tally = Tally::default();
    match entry {
        Entry::File(f) => {
            let dest = if local.is_dir() {
                if !safe_local_name(&f.name) {
                    return Err(CliError::Usage(format!(
                        "the remote name {:?} cannot be used as a local file name; give a full local path",
                        f.name
                    )));
                }
                local.join(&f.name)
            } else {
                local.to_path_buf()
            };
            match get_one(client, &f, &dest, overwrite, ui).await {
                Ok(()) => tally.ok += 1,
                Err(e) => tally.fail(&dest.display().to_string(), &e),
            }
        }
        folder => {
            let (name, id) = match &folder {
                Entry::Folder(f) => (f.name.clone(), Some(f.id)),
                _ => ("root".to_owned(), None),
            };
            let dest = if local.is_dir() {
                if !safe_local_name(&name) {
                    return Err(CliError::Usage(format!(
                        "the remote name {name:?} cannot be used as a local folder name"
                    )));
                }
                local.join(&name)
            } else {
                local.to_path_buf()
            };
            let mut stack = vec![(id, dest)];
            let mut seen = std::collections::HashSet::new();
            while let Some((id, dir)) = stack.pop() {
                if let Some(i) = id
                    && !seen.insert(i)
                {
                    continue;
                }
                if let Err(source) = std::fs::create_dir_all(&dir) {
                    tally.fail(&dir.display().to_string(), &source);
                    continue;
                }
                let l = client.folder_listing(id).await?;
                let mut used = std::collections::HashSet::new();
                for d in &l.folders {
                    if !safe_local_name(&d.name) || !used.insert(d.name.clone()) {
                        tally.fail(
                            &format!("remote folder folder:{} {:?}", d.id, d.name),
                            &"name unusable locally or used twice in its folder; skipped",
                        );
                        continue;
                    }
                    stack.push((Some(d.id), dir.join(&d.name)));
                }
                for f in &l.files {
                    if !safe_local_name(&f.name) || !used.insert(f.name.clone()) {
                        tally.fail(
                            &format!("remote file file:{} {:?}", f.id, f.name),
                            &"name unusable locally or used twice in its folder; skipped",
                        );
                        continue;
                    }
                    let dest = dir.join(&f.name);
                    match get_one(client, f, &dest, overwrite, ui).await {
                        Ok(()) => tally.ok += 1,
                        Err(e) => tally.fail(&dest.display().to_string(), &e),
                    }
                }
            }
        }
    }
    tally.finish("downloaded")
}

/// Downloads into a temp file beside `dest`, then renames it into place.
///
/// The temp file is always new: one left by anyone (another run, another
/// user) is removed, never resumed from, and ours is created exclusively
/// (0600, no symlink followed); it must still be the same file when it is
/// renamed. An existing `dest` is replaced only with `overwrite` (keeping
/// its permissions); a new file gets the usual ones (umask).
async fn get_one(
    client: &Client,
    f: &RemoteFile,
    dest: &Path,
    overwrite: bool,
    ui: Ui,
) -> Result<(), ApiError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ApiError::Io { path, source }
    };
    let existing = std::fs::symlink_metadata(dest).ok();
    let mode = match &existing {
        Some(_) if !overwrite => {
            return Err(ApiError::Io {
                path: dest.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "already exists; pass --overwrite to replace it",
                ),
            });
        }
        Some(m) if m.is_file() => m.permissions().mode() & 0o7777,
        Some(_) => {
            return Err(ApiError::Io {
                path: dest.to_path_buf(),
                source: std::io::Error::other("is not a regular file; not replaced"),
            });
        }
        None => crate::engine::new_file_mode(),
    };
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{base}.dcsync-part"));
    // Never trust a partial file that this run did not make.
    match std::fs::symlink_metadata(&tmp) {
        Ok(m) if m.is_dir() => {
            return Err(ApiError::Io {
                path: tmp.clone(),
                source: std::io::Error::other("a folder is where the partial file goes"),
            });
        }
        Ok(_) => std::fs::remove_file(&tmp).map_err(io(&tmp))?,
        Err(_) => {}
    }
    let ours = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|f| f.metadata())
        .map_err(io(&tmp))?;
    let bar = Bar::new(ui.progress, f.size, &f.name);
    let expected = Expected {
        size: Some(f.size),
        md5: None,
    };
    let result = client
        .download_file(f.id, &tmp, &expected, bar.callback())
        .await;
    bar.finish();
    result?;
    let now = std::fs::symlink_metadata(&tmp).map_err(io(&tmp))?;
    if (now.dev(), now.ino()) != (ours.dev(), ours.ino()) {
        return Err(ApiError::Io {
            path: tmp,
            source: std::io::Error::other(
                "the partial file was replaced by someone else while downloading; not used",
            ),
        });
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(io(&tmp))?;
    std::fs::rename(&tmp, dest).map_err(io(dest))?;
    tracing::info!(file = %f.id, path = %dest.display(), "downloaded");
    out!("downloaded  file:{} {} -> {}", f.id, f.name, dest.display());
    Ok(())
}

/// Where `dst` puts an entry: an existing folder (keep the name), or a new
/// name in an existing parent folder.
async fn destination(
    client: &Client,
    dst: &str,
) -> Result<(Option<FolderId>, Option<String>), CliError> {
    match remote::resolve(client, dst, Want::Any).await {
        Ok(e @ (Entry::Root | Entry::Folder(_))) => Ok((e.as_parent().flatten(), None)),
        Ok(Entry::File(_)) => Err(CliError::Usage(format!(
            "{dst:?} already exists; remove it first or choose another name"
        ))),
        Err(RemoteError::NotFound { .. }) => {
            let Some((parent, name)) = remote::split_parent(dst) else {
                return Err(CliError::Usage(format!(
                    "{dst:?} is not a valid destination"
                )));
            };
            check_remote_name(&name)?;
            let p = remote::resolve(client, &parent, Want::Folder).await?;
            Ok((p.as_parent().flatten(), Some(name)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn mv(client: &Client, src: &str, dst: &str) -> Result<(), CliError> {
    let entry = remote::resolve(client, src, Want::Any).await?;
    let (to, new_name) = destination(client, dst).await?;
    match entry {
        Entry::Root => return Err(CliError::Usage("the root cannot be moved".into())),
        Entry::File(f) => {
            if f.folder_id != to {
                client.file_move(f.id, to).await?;
            }
            if let Some(n) = new_name.filter(|n| *n != f.name) {
                client.file_rename(f.id, &n).await?;
            }
        }
        Entry::Folder(f) => {
            if Some(f.id) == to {
                return Err(CliError::Usage(
                    "a folder cannot be moved into itself".into(),
                ));
            }
            if f.parent_id != to {
                client.folder_move(f.id, to).await?;
            }
            if let Some(n) = new_name.filter(|n| *n != f.name) {
                client.folder_rename(f.id, &n).await?;
            }
        }
    }
    Ok(())
}

async fn cp(client: &Client, src: &str, dst: &str) -> Result<(), CliError> {
    let entry = remote::resolve(client, src, Want::Any).await?;
    let (to, new_name) = destination(client, dst).await?;
    match entry {
        Entry::Root => Err(CliError::Usage(
            "the root cannot be copied; copy a folder".into(),
        )),
        Entry::File(f) => {
            let c = client.file_copy(f.id, to).await?;
            if let Some(n) = new_name.filter(|n| *n != c.copy.name) {
                client.file_rename(c.copy.id, &n).await?;
            }
            out!("file:{}", c.copy.id);
            Ok(())
        }
        Entry::Folder(f) => {
            let name = new_name.unwrap_or_else(|| f.name.clone());
            let top = client
                .folder_create(&name, to, &FolderOptions::default())
                .await?;
            let mut stack = vec![(f.id, top.id)];
            while let Some((from, into)) = stack.pop() {
                if from == top.id {
                    continue; // copying a folder into itself: do not recurse into the copy
                }
                let l = client.folder_listing(Some(from)).await?;
                for file in &l.files {
                    client.file_copy(file.id, Some(into)).await?;
                }
                for d in &l.folders {
                    let nd = client
                        .folder_create(&d.name, Some(into), &FolderOptions::default())
                        .await?;
                    stack.push((d.id, nd.id));
                }
            }
            out!("folder:{}", top.id);
            Ok(())
        }
    }
}

async fn rename(client: &Client, path: &str, new_name: &str) -> Result<(), CliError> {
    check_remote_name(new_name)?;
    match remote::resolve(client, path, Want::Any).await? {
        Entry::Root => Err(CliError::Usage("the root cannot be renamed".into())),
        Entry::File(f) => client
            .file_rename(f.id, new_name)
            .await
            .map(|_| ())
            .map_err(Into::into),
        Entry::Folder(f) => client
            .folder_rename(f.id, new_name)
            .await
            .map(|_| ())
            .map_err(Into::into),
    }
}

async fn rm(client: &Client, path: &str, recursive: bool) -> Result<(), CliError> {
    match remote::resolve(client, path, Want::Any).await? {
        Entry::Root => Err(CliError::Usage("the root cannot be removed".into())),
        Entry::File(f) => {
            client.file_delete(f.id).await?;
            out!("trashed file:{} {}", f.id, f.name);
            Ok(())
        }
        Entry::Folder(f) if recursive => {
            client.folder_delete(f.id).await?;
            out!("trashed folder:{} {}", f.id, f.name);
            Ok(())
        }
        Entry::Folder(_) => Err(CliError::Usage(format!(
            "{path:?} is a folder; pass -r to trash it and everything below it"
        ))),
    }
}

async fn import_url(client: &Client, url: &str, dir: &str, wait: bool) -> Result<(), CliError> {
    let folder = remote::resolve(client, dir, Want::Folder)
        .await?
        .as_parent()
        .flatten();
    let s = client.url_upload_add(url, folder).await?;
    let id = s.scheduled_item_id.unwrap_or(0);
    out!("scheduled {id}");
    if !wait {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        let st = client.url_upload_status(id).await?;
        match st.status.as_deref() {
            Some("complete") => {
                if let Some(f) = st.downloaded_file {
                    out!(
                        "complete: file:{} {}",
                        f.file_id.unwrap_or(0),
                        f.name.unwrap_or_default()
                    );
                }
                return Ok(());
            }
            Some("failed") | Some("error") => {
                return Err(CliError::Partial(format!(
                    "the host could not fetch {url}: {}",
                    st.error.unwrap_or_else(|| "no reason given".into())
                )));
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(CliError::Partial(format!(
                    "import {id} still not finished after an hour; check later with `dcsync remote import-status {id}`"
                )));
            }
            _ => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_local_names() {
        assert!(!safe_local_name(".."));
        assert!(!safe_local_name("a/b"));
        assert!(!safe_local_name(""));
        assert!(safe_local_name("ok.txt"));
    }
}
