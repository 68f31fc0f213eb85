//! `dcsync demo`: sync a folder against the bundled emulator, with no
//! account and no config. Starts the emulator on loopback, creates a demo
//! folder, syncs it, makes changes on each side and shows them arrive on
//! the other, then keeps the emulator up as a playground until Ctrl-C.
//!
//! Owns only the demo's script and output. It never touches anything
//! outside the demo directory it creates (or is given).

use super::CliError;
use crate::api::{Client, FolderId};
use crate::clock::SystemClock;
use crate::config::{Config, EnvOverrides};
use crate::engine::{self, Quiet, SyncRequest};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn random_key() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..64)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

pub async fn run(dir: Option<PathBuf>, wait: bool) -> Result<(), CliError> {
    let dir = match dir {
        // The story assumes a clean start: never continue (or clear) a
        // folder that holds something already.
        Some(d) if std::fs::read_dir(&d).is_ok_and(|mut e| e.next().is_some()) => {
            return Err(CliError::Usage(format!(
                "{} is not empty (an earlier demo?); the demo starts from a clean folder: \
                 remove it or pass another --dir",
                d.display()
            )));
        }
        Some(d) => d,
        // Private and unpredictable: another user cannot prepare it with
        // symlinks (a random name, created exclusively, mode 0700).
        None => tempfile::Builder::new()
            .prefix("dcsync-demo-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(io(&std::env::temp_dir()))?
            .keep(),
    };
    let local = dir.join("Demo");
    // What `dcsync init` does: the folder and its marker.
    let marker = local.join(crate::engine::MARKER);
    std::fs::create_dir_all(&marker).map_err(io(&marker))?;
    let (key1, key2) = (random_key(), random_key());

    let emu_cfg = dcsync_emulator::Config::new(dir.join("host"), key1.clone(), key2.clone());
    let emu = dcsync_emulator::RunningEmulator::start(emu_cfg)
        .await
        .map_err(|e| CliError::Partial(format!("could not start the bundled emulator: {e}")))?;
    out!("demo host (bundled emulator): {}", emu.api_url());
    out!("demo folder:                  {}", local.display());

    let config = Config {
        api_url: emu.api_url(),
        key1: Some(key1),
        key2: Some(key2),
        local_path: Some(local.clone()),
        remote_path: Some("/Demo".into()),
        state_dir: Some(dir.join("state")),
        max_requests_per_second: Some(1000.0),
        ..Config::default()
    };
    let config_path = dir.join("demo.toml");
    config.write_new(&config_path, true)?;
    let config = Config::load(&config_path, &EnvOverrides::default())?;
    let client = super::client_for(&config)?;
    let ecfg = super::sync_cmd::engine_config(&config, &config_path)?;

    let write = |rel: &str, text: &str| -> Result<(), CliError> {
        let p = local.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&p, text).map_err(io(&p))
    };
    write(
        "README.txt",
        "Files in this folder are kept in sync with /Demo on the host.\n",
    )?;
    write("notes/todo.txt", "- try dcsync\n")?;
    write("notes/ideas.txt", "- sync both ways\n")?;

    let sync = |label: &'static str| {
        let client = client.clone();
        let ecfg = ecfg.clone();
        async move {
            let r = engine::sync(
                &client,
                &ecfg,
                SyncRequest::default(),
                Arc::new(SystemClock),
                &Quiet,
            )
            .await?;
            out!(
                "  sync ({label}): {} uploaded, {} downloaded, {} moved, {} deleted, {} conflicts",
                r.uploaded,
                r.downloaded,
                r.moved,
                r.deleted_local + r.deleted_remote,
                r.conflicts
            );
            Ok::<(), CliError>(())
        }
    };

    out!("\n1. First sync: the three local files go up.");
    sync("first").await?;
    show_remote(&client).await?;

    out!("\n2. Someone adds and renames files on the host...");
    let root = remote_folder(&client, "Demo").await?;
    let tmp = dir.join("upload.txt");
    std::fs::write(&tmp, "written on the host\n").map_err(io(&tmp))?;
    client
        .upload_file(&tmp, "from-the-host.txt", Some(root), None)
        .await?;
    let notes = client.folder_listing(Some(root)).await?;
    if let Some(n) = notes.folders.iter().find(|f| f.name == "notes") {
        client.folder_rename(n.id, "notebook").await?;
    }
    sync("pull").await?;
    out!("  the local folder now holds:");
    show_local(&local, &local, 2)?;

    out!("\n3. ...and you edit a file locally.");
    write("notebook/todo.txt", "- try dcsync\n- done!\n")?;
    sync("push").await?;
    show_remote(&client).await?;

    if wait {
        out!(
            "\n4. Now the daemon keeps both sides in sync until Ctrl-C. Change files in\n  {}\nand watch them arrive on the host (in another terminal):\n  dcsync --config {} remote tree /Demo\nor change the host with `dcsync --config {} remote put/mv/rm ...` and watch the folder.",
            local.display(),
            config_path.display(),
            config_path.display()
        );
        let mut pairs = super::sync_cmd::pairs(&config, &config_path)?;
        for p in &mut pairs {
            p.poll_interval = std::time::Duration::from_secs(2);
        }
        let settings = crate::daemon::Settings {
            socket: crate::daemon::socket_path(&dir.join("state"), &config_path),
            full_rescan: crate::config::DEFAULT_FULL_RESCAN,
            debounce: std::time::Duration::from_millis(300),
            notify_command: None,
            web: None,
        };
        crate::daemon::run(client.clone(), pairs, settings, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        out!("\nstopping the demo host");
    }
    emu.stop()
        .await
        .map_err(|e| CliError::Partial(format!("the demo host did not stop cleanly: {e}")))?;
    out!("demo files are kept in {}", dir.display());
    Ok(())
}

async fn remote_folder(client: &Client, name: &str) -> Result<FolderId, CliError> {
    let l = client.folder_listing(None).await?;
    l.folders
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.id)
        .ok_or_else(|| CliError::Partial(format!("the demo folder /{name} is missing on the host")))
}

async fn show_remote(client: &Client) -> Result<(), CliError> {
    out!("  the host now holds:");
    let root = remote_folder(client, "Demo").await?;
    let mut stack = vec![(root, 2usize)];
    while let Some((id, depth)) = stack.pop() {
        let l = client.folder_listing(Some(id)).await?;
        for f in &l.files {
            out!("{}{} ({} bytes)", "  ".repeat(depth), f.name, f.size);
        }
        for d in &l.folders {
            out!("{}{}/", "  ".repeat(depth), d.name);
            stack.push((d.id, depth + 1));
        }
    }
    Ok(())
}

fn show_local(root: &Path, dir: &Path, depth: usize) -> Result<(), CliError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == crate::engine::MARKER && dir == root {
            continue;
        }
        if e.path().is_dir() {
            out!("{}{name}/", "  ".repeat(depth));
            show_local(root, &e.path(), depth + 1)?;
        } else {
            out!("{}{name}", "  ".repeat(depth));
        }
    }
    Ok(())
}
