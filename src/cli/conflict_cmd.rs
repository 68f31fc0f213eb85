//! `dcsync resolve PATH --keep local|remote|both`: settles one kept
//! conflict. Only local moves (the version not kept goes to the local
//! trash) and the conflict record change here; the next sync carries the
//! result to the host (the other version goes to the host's trash there).
//! Never deletes anything outright.

use super::{CliError, sync_cmd};
use crate::config::Config;
use crate::engine::trash;
use crate::model::RelPath;
use crate::state::{Side, StateDb};
use std::path::Path;

/// Which version a resolve keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Keep {
    /// The version that was local when the conflict happened.
    Local,
    /// The version the host had.
    Remote,
    /// Both, as they are (only the record goes).
    Both,
}

pub fn resolve(
    config: &Config,
    config_path: &Path,
    pair: Option<&str>,
    path: &str,
    keep: Keep,
) -> Result<(), CliError> {
    let mut pairs = sync_cmd::chosen_pairs(config, config_path, pair)?;
    if pairs.len() > 1 {
        return Err(CliError::Usage(
            "the config has several pairs: say which with --pair NAME".into(),
        ));
    }
    resolve_pair(&pairs.remove(0), path, keep)
}

/// Settles the kept conflict at `path` (the contested path or its copy)
/// of pair `p` (also what the web console calls).
pub fn resolve_pair(p: &crate::engine::PairSpec, path: &str, keep: Keep) -> Result<(), CliError> {
    let root = &p.engine.local_root;
    let st = |e: crate::state::StateError| CliError::Engine(e.into());
    let mut db = StateDb::open(&p.engine.db_path).map_err(st)?;
    let wanted = path.trim_matches('/');
    let Some(c) = db
        .conflicts()
        .map_err(st)?
        .into_iter()
        .rev()
        .find(|c| c.path.as_str() == wanted || c.copy_path.as_str() == wanted)
    else {
        return Err(CliError::Usage(format!(
            "no kept conflict for {path:?}; `dcsync conflicts` lists them"
        )));
    };
    let io = |p: &RelPath| {
        let at = root.join(p.as_str());
        move |source| CliError::Io { path: at, source }
    };
    let stamp = crate::clock::compact_stamp(std::time::SystemTime::now());
    let exists = |p: &RelPath| std::fs::symlink_metadata(root.join(p.as_str())).is_ok();
    // The copy holds the `copy_from` side's version; the path the other.
    let keep_copy = match (keep, c.copy_from) {
        (Keep::Both, _) => None,
        (Keep::Local, Side::Local) | (Keep::Remote, Side::Remote) => Some(true),
        (Keep::Local, Side::Remote) | (Keep::Remote, Side::Local) => Some(false),
    };
    match keep_copy {
        None => {}
        Some(true) => {
            // The copy's version takes the name; the other goes to the trash.
            if !exists(&c.copy_path) {
                return Err(CliError::Usage(format!(
                    "{} is not on this disk (it is on the host only); sync first, or keep both",
                    c.copy_path
                )));
            }
            if exists(&c.path) {
                trash::discard(root, &c.path, &stamp).map_err(io(&c.path))?;
            }
            trash::rename(root, &c.copy_path, &c.path).map_err(io(&c.copy_path))?;
        }
        Some(false) => {
            if exists(&c.copy_path) {
                trash::discard(root, &c.copy_path, &stamp).map_err(io(&c.copy_path))?;
            } else if c.copy_from == Side::Remote {
                out!(
                    "note: the host's version stays on the host as {} (a backup never removes what \
                     it did not upload); remove it there with `dcsync remote rm` if you want",
                    c.copy_path
                );
            }
        }
    }
    db.remove_conflict(c.id).map_err(st)?;
    let what = match keep {
        Keep::Both => "kept both versions".to_owned(),
        Keep::Local => format!("kept the local version at {}", c.path),
        Keep::Remote => format!("kept the host's version at {}", c.path),
    };
    out!(
        "resolved {}: {what}; the next sync carries it to the host",
        c.path
    );
    Ok(())
}
