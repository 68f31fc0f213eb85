//! `dcsync trash list|restore`: the local trash of each pair, read and
//! put back. Never removes anything (pruning is the engine's, by
//! `trash_retention` / `trash_max_size`), never talks to the host.

use super::{CliError, sync_cmd};
use crate::config::Config;
use crate::engine::trash;
use crate::model::RelPath;
use std::path::Path;

/// What `dcsync trash` does.
#[derive(Debug, clap::Subcommand)]
pub enum TrashCmd {
    /// What the local trash holds, newest first.
    List {
        /// Only this pair (its `name`).
        pair: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Put the newest trashed version of PATH back (beside it, as
    /// `name (restored ...)`, when the place is taken); the next sync
    /// uploads it.
    Restore {
        /// The path inside the sync folder, as `trash list` shows it.
        path: String,
        /// The pair (needed when the config has several).
        #[arg(long)]
        pair: Option<String>,
    },
}

pub fn run(config: &Config, config_path: &Path, cmd: TrashCmd) -> Result<(), CliError> {
    match cmd {
        TrashCmd::List { pair, json } => {
            let pairs = sync_cmd::chosen_pairs(config, config_path, pair.as_deref())?;
            let mut all = Vec::new();
            for p in &pairs {
                let root = &p.engine.local_root;
                let entries = trash::list(root).map_err(|source| CliError::Io {
                    path: root.join(crate::engine::MARKER).join("trash"),
                    source,
                })?;
                if json {
                    all.push(serde_json::json!({ "pair": p.name, "entries": entries }));
                    continue;
                }
                out!("[{}] {} files in the trash", p.name, entries.len());
                for e in &entries {
                    out!(
                        "  {}  {:>10}  {}",
                        e.deleted_at,
                        sync_cmd::human_bytes(e.size),
                        e.path
                    );
                }
            }
            if json {
                sync_cmd::print_json_per_pair(all);
            }
            Ok(())
        }
        TrashCmd::Restore { path, pair } => {
            let mut pairs = sync_cmd::chosen_pairs(config, config_path, pair.as_deref())?;
            if pairs.len() > 1 {
                return Err(CliError::Usage(
                    "the config has several pairs: say which with --pair NAME".into(),
                ));
            }
            let p = pairs.remove(0);
            let rel = RelPath::new(path.trim_matches('/'))
                .filter(|r| !r.is_root())
                .ok_or_else(|| {
                    CliError::Usage(format!("{path:?} is not a path in the sync folder"))
                })?;
            let stamp = crate::clock::conflict_stamp(std::time::SystemTime::now());
            let root = &p.engine.local_root;
            let at = trash::restore(root, &rel, &stamp).map_err(|source| CliError::Io {
                path: root.join(rel.as_str()),
                source,
            })?;
            if at == rel {
                out!("restored {rel}");
            } else {
                out!("restored {rel} as {at} (the place was taken)");
            }
            Ok(())
        }
    }
}
