//! One integration test binary (faster to build than one per file).
//! Every case talks real HTTP on loopback to an in-process emulator.

mod api;
mod cli;
mod crash;
mod packaging;
mod scan;
mod snapshot;
mod sync;
mod util;
mod variant;
