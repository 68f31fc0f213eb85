//! The in-memory host must not drift from the emulator: the same random
//! sequences of host calls go to the real HTTP client against a running
//! emulator and to [`MemHost`](crate::memhost::MemHost), and every answer
//! must be the same, ids aside (both hosts share a stopped clock, so dates
//! must match too). Names are drawn so that they collide, need stripping or
//! are refused; ids include trashed, unknown and foreign ones. At the end
//! both whole trees must match.
//!
//! Owns: the call generator and the comparison. Must never compare through
//! anything but the `Host` trait (that is what the simulation relies on).

use std::path::Path;
use std::sync::Arc;

use dcsync::api::host::Host;
use dcsync::api::{
    ApiError, Expected, FileId, FolderId, FolderOptions, Listing, RemoteFile, RemoteFolder,
};
use dcsync_emulator::clock::ManualClock;
use dcsync_emulator::{Config as EmuConfig, InProcess, RunningEmulator};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::memhost::MemHost;

/// Names the calls pick from: repeats, names the host strips or refuses,
/// names the host's upload renaming could produce.
const NAMES: &[&str] = &[
    "a.txt",
    "a.txt",
    "b",
    "a (2).txt",
    "  padded.txt  ",
    "sl/ash.txt",
    "",
    "   ",
    "<tag>.md",
    "ünï.txt",
    "x.log",
];
const CONTENTS: &[&[u8]] = &[b"", b"hello", b"hello", b"another text"];

/// Ids on both sides of one object, by the order they were made.
#[derive(Default)]
struct Ids {
    files: Vec<(u64, u64)>,
    folders: Vec<(u64, u64)>,
}

impl Ids {
    fn file(&self, side: usize, id: u64) -> String {
        handle(&self.files, side, id, "f")
    }
    fn folder(&self, side: usize, id: u64) -> String {
        handle(&self.folders, side, id, "d")
    }
}

fn handle(pairs: &[(u64, u64)], side: usize, id: u64, p: &str) -> String {
    pairs
        .iter()
        .position(|&(a, b)| if side == 0 { a == id } else { b == id })
        .map_or_else(|| format!("{p}new"), |i| format!("{p}{i}"))
}

fn norm_file(ids: &Ids, side: usize, f: &RemoteFile) -> String {
    format!(
        "file {} {:?} size={} in={} status={:?} type={:?} date={:?}",
        ids.file(side, f.id.0),
        f.name,
        f.size,
        f.folder_id.map_or("root".into(), |d| ids.folder(side, d.0)),
        f.status,
        f.file_type,
        f.uploaded_date,
    )
}

fn norm_folder(ids: &Ids, side: usize, f: &RemoteFolder) -> String {
    format!(
        "folder {} {:?} in={} size={:?} files={:?} folders={:?} public={:?} date={:?}",
        ids.folder(side, f.id.0),
        f.name,
        f.parent_id.map_or("root".into(), |d| ids.folder(side, d.0)),
        f.total_size,
        f.file_count,
        f.child_folder_count,
        f.is_public,
        f.date_added,
    )
}

fn norm_listing(ids: &Ids, side: usize, l: &Listing) -> String {
    let mut out: Vec<String> = l
        .folders
        .iter()
        .map(|f| norm_folder(ids, side, f))
        .collect();
    out.extend(l.files.iter().map(|f| norm_file(ids, side, f)));
    out.join("\n  ")
}

fn norm_err(e: &ApiError) -> String {
    format!("error (retryable={}): {e}", e.is_retryable())
}

/// One random call, made on both hosts; returns what it was and the two
/// answers, normalized.
struct Pair<'a> {
    hosts: [&'a dyn Host; 2],
    ids: Ids,
    scratch: &'a Path,
}

impl Pair<'_> {
    fn pick_file(&self, rng: &mut StdRng) -> ([FileId; 2], String) {
        if self.ids.files.is_empty() || rng.random_bool(0.1) {
            let bogus = rng.random_range(900_000..900_010);
            return ([FileId(bogus); 2], format!("file#{bogus}"));
        }
        let i = rng.random_range(0..self.ids.files.len());
        let (a, b) = self.ids.files[i];
        ([FileId(a), FileId(b)], format!("f{i}"))
    }

    fn pick_folder(&self, rng: &mut StdRng) -> ([Option<FolderId>; 2], String) {
        if self.ids.folders.is_empty() || rng.random_bool(0.25) {
            return ([None, None], "root".into());
        }
        if rng.random_bool(0.05) {
            let bogus = rng.random_range(900_000..900_010);
            return ([Some(FolderId(bogus)); 2], format!("folder#{bogus}"));
        }
        let i = rng.random_range(0..self.ids.folders.len());
        let (a, b) = self.ids.folders[i];
        ([Some(FolderId(a)), Some(FolderId(b))], format!("d{i}"))
    }

    /// Makes one call on both sides. Returns the call and both answers.
    async fn step(&mut self, rng: &mut StdRng, n: usize) -> (String, [String; 2]) {
        let name = *NAMES.choose(rng).unwrap_or(&"a.txt");
        let mut out: [String; 2] = Default::default();
        let call;
        match rng.random_range(0..14) {
            0..=2 => {
                let (folder, fname) = self.pick_folder(rng);
                let content = *CONTENTS.choose(rng).unwrap_or(&&b"x"[..]);
                let src = self.scratch.join(format!("up-{n}"));
                std::fs::write(&src, content).expect("write upload source");
                call = format!("upload {name:?} ({} bytes) into {fname}", content.len());
                let mut new = [0; 2];
                for side in 0..2 {
                    let r = self.hosts[side]
                        .upload_file(&src, name, folder[side], None)
                        .await;
                    out[side] = match r {
                        Ok(u) => {
                            new[side] = u.id.0;
                            format!("uploaded {:?} size={} md5={}", u.name, u.size, u.md5)
                        }
                        Err(e) => norm_err(&e),
                    };
                }
                if new[0] != 0 && new[1] != 0 {
                    self.ids.files.push((new[0], new[1]));
                }
            }
            3 | 4 => {
                let (parent, pname) = self.pick_folder(rng);
                let opts = FolderOptions {
                    is_public: rng.random_bool(0.3).then(|| rng.random_range(0..3u8)),
                    ..FolderOptions::default()
                };
                call = format!("folder_create {name:?} in {pname} {opts:?}");
                let mut new = [0; 2];
                for side in 0..2 {
                    out[side] = match self.hosts[side]
                        .folder_create(name, parent[side], &opts)
                        .await
                    {
                        Ok(f) => {
                            new[side] = f.id.0;
                            norm_folder(&self.ids, side, &f)
                        }
                        Err(e) => norm_err(&e),
                    };
                }
                if new[0] != 0 && new[1] != 0 {
                    self.ids.folders.push((new[0], new[1]));
                }
            }
            5 => {
                let (id, fname) = self.pick_file(rng);
                call = format!("file_rename {fname} to {name:?}");
                for side in 0..2 {
                    out[side] = match self.hosts[side].file_rename(id[side], name).await {
                        Ok(f) => norm_file(&self.ids, side, &f),
                        Err(e) => norm_err(&e),
                    };
                }
            }
            6 => {
                let (id, fname) = self.pick_file(rng);
                let (to, tname) = self.pick_folder(rng);
                call = format!("file_move {fname} to {tname}");
                for side in 0..2 {
                    out[side] = match self.hosts[side].file_move(id[side], to[side]).await {
                        Ok(f) => norm_file(&self.ids, side, &f),
                        Err(e) => norm_err(&e),
                    };
                }
            }
            7 => {
                let (id, fname) = self.pick_file(rng);
                let (to, tname) = self.pick_folder(rng);
                call = format!("file_copy {fname} to {tname}");
                let mut new = [0; 2];
                for side in 0..2 {
                    out[side] = match self.hosts[side].file_copy(id[side], to[side]).await {
                        Ok(c) => {
                            new[side] = c.copy.id.0;
                            format!(
                                "original {} copy {}",
                                norm_file(&self.ids, side, &c.original),
                                norm_file(&self.ids, side, &c.copy)
                            )
                        }
                        Err(e) => norm_err(&e),
                    };
                }
                if new[0] != 0 && new[1] != 0 {
                    self.ids.files.push((new[0], new[1]));
                }
            }
            8 => {
                let (id, fname) = self.pick_file(rng);
                call = format!("file_delete {fname}");
                for side in 0..2 {
                    out[side] = match self.hosts[side].file_delete(id[side]).await {
                        Ok(()) => "deleted".into(),
                        Err(e) => norm_err(&e),
                    };
                }
            }
            9 => {
                let (id, fname) = self.pick_file(rng);
                call = format!("file_info {fname}");
                for side in 0..2 {
                    out[side] = match self.hosts[side].file_info(id[side]).await {
                        Ok(f) => norm_file(&self.ids, side, &f),
                        Err(e) => norm_err(&e),
                    };
                }
            }
            10 => {
                let (id, fname) = self.pick_file(rng);
                call = format!("download {fname}");
                for side in 0..2 {
                    let dest = self.scratch.join(format!("down-{n}-{side}"));
                    let r = self.hosts[side]
                        .download_file(id[side], &dest, &Expected::default(), None)
                        .await;
                    out[side] = match r {
                        Ok(d) => format!(
                            "downloaded size={} md5={} bytes={:?}",
                            d.size,
                            d.md5,
                            std::fs::read(&dest).map(|b| String::from_utf8_lossy(&b).into_owned())
                        ),
                        Err(e) => norm_err(&e),
                    };
                }
            }
            11 => {
                let (id, fname) = self.pick_folder(rng);
                call = format!("folder_listing {fname}");
                for side in 0..2 {
                    out[side] = match self.hosts[side].folder_listing(id[side]).await {
                        Ok(l) => norm_listing(&self.ids, side, &l),
                        Err(e) => norm_err(&e),
                    };
                }
            }
            12 => {
                let (id, fname) = self.pick_folder(rng);
                let (to, tname) = self.pick_folder(rng);
                let what = rng.random_range(0..4);
                call = match what {
                    0 => format!("folder_rename {fname} to {name:?}"),
                    1 => format!("folder_move {fname} to {tname}"),
                    2 => format!("folder_info {fname}"),
                    _ => format!("folder_delete {fname}"),
                };
                for side in 0..2 {
                    let Some(id) = id[side] else {
                        out[side] = "(root: not a call)".into();
                        continue;
                    };
                    let h = self.hosts[side];
                    let r = match what {
                        0 => h.folder_rename(id, name).await.map(Some),
                        1 => h.folder_move(id, to[side]).await.map(Some),
                        2 => h.folder_info(id).await.map(Some),
                        _ => h.folder_delete(id).await.map(|()| None),
                    };
                    out[side] = match r {
                        Ok(Some(f)) => norm_folder(&self.ids, side, &f),
                        Ok(None) => "deleted".into(),
                        Err(e) => norm_err(&e),
                    };
                }
            }
            _ => {
                call = "account_package".into();
                for (o, h) in out.iter_mut().zip(self.hosts) {
                    *o = match h.account_package().await {
                        Ok(p) => format!("{:?} {:?}", p.max_upload_size, p.can_upload),
                        Err(e) => norm_err(&e),
                    };
                }
            }
        }
        (call, out)
    }

    /// Every folder reachable from the root, and every file in them, as
    /// text (a trashed folder may still be listed: that is compared too).
    async fn tree(&self, side: usize) -> String {
        let mut out = Vec::new();
        let mut todo = vec![(None, String::from("/"))];
        let mut seen = std::collections::BTreeSet::new();
        while let Some((id, path)) = todo.pop() {
            let l = match self.hosts[side].folder_listing(id).await {
                Ok(l) => l,
                Err(e) => {
                    out.push(format!("{path}: {}", norm_err(&e)));
                    continue;
                }
            };
            out.push(format!("{path}: {}", norm_listing(&self.ids, side, &l)));
            for f in &l.folders {
                if seen.insert(f.id.0) {
                    todo.push((Some(f.id), format!("{path}{}/", f.name)));
                }
            }
        }
        out.join("\n")
    }
}

/// Runs `calls` random calls from `seed` on a fresh emulator over HTTP and
/// a fresh in-memory host; returns the first difference.
pub async fn run(seed: u64, calls: usize, base: &Path) -> Result<(), String> {
    let clock = ManualClock::new();
    let config = |dir: &str| {
        let mut c = EmuConfig::new(base.join(dir), crate::KEY1, crate::KEY2);
        c.clock = clock.clone();
        c
    };
    let emu = RunningEmulator::start(config("http"))
        .await
        .map_err(|e| format!("emulator: {e}"))?;
    let http: Arc<dyn Host> = Arc::new(crate::client(&emu.api_url(), &base.join("tokens")));
    let mem = InProcess::volatile(config("mem")).map_err(|e| format!("in-process host: {e}"))?;
    let mem: Arc<dyn Host> = Arc::new(MemHost(mem));
    let scratch = base.join("scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let mut pair = Pair {
        hosts: [&*http, &*mem],
        ids: Ids::default(),
        scratch: &scratch,
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut trace = Vec::new();
    let mut result = Ok(());
    for n in 0..calls {
        let (call, [a, b]) = pair.step(&mut rng, n).await;
        trace.push(format!("{n}: {call}\n     -> {a}"));
        if a != b {
            result = Err(format!(
                "{}\n---- differential seed {seed}, call {n}: {call}\n  http: {a}\n  mem:  {b}",
                trace.join("\n")
            ));
            break;
        }
        if rng.random_bool(0.1) {
            clock.advance(std::time::Duration::from_secs(61));
        }
    }
    if result.is_ok() {
        let (a, b) = (pair.tree(0).await, pair.tree(1).await);
        if a != b {
            result = Err(format!(
                "---- differential seed {seed}: the trees differ\nhttp:\n{a}\nmem:\n{b}"
            ));
        }
    }
    let _ = emu.stop().await;
    result
}
