//! dcsync: keeps a local folder and a folder on a File Upload API v2 host
//! identical, in both directions.
//!
//! # Layout
//! - [`api`]: the HTTP client for the host (endpoints, errors, retries,
//!   shared token, streaming transfers).
//! - [`model`]: the three trees' entry types and relative paths (plain data).
//! - [`config`]: the TOML configuration file and credentials from the environment.
//! - [`remote`]: remote path resolution (`/a/b/c` or `id:N` to ids) on top of [`api`].
//! - [`plan`]: the pure planner (three trees in, sorted operations out).
//! - [`engine`]: one sync pass: safety checks, recovery, rounds of scan + snapshot → plan → execute.
//! - [`scan`]: the Local tree from disk (fast check, hashing, ignore rules).
//! - [`snapshot`]: the Remote tree from folder listings.
//! - [`state`]: the SQLite state database (Synced tree, op journal, status).
//! - [`daemon`]: the continuous service: watcher + poller per pair, backoff, control socket.
//! - [`cli`]: the `dcsync` command line (argument parsing, output, exit codes).

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod model;
pub mod plan;
pub mod remote;
pub mod scan;
pub mod snapshot;
pub mod state;
pub mod web;
