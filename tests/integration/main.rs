//! One integration test binary (faster to build than one per file).
//! Cases talk real HTTP on loopback to an in-process emulator (packaging.rs
//! checks the service files and the generated completions and man page).

mod api;
mod bwlimit;
mod cli;
mod crash;
mod daemon;
mod focus;
mod packaging;
mod safety;
mod scan;
mod security;
mod snapshot;
mod sync;
mod unchanged;
mod util;
mod variant;
mod web;
mod windows;
