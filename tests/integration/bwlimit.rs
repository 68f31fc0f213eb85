//! `bwlimit` through the real binary: transfers keep to the limit each
//! way, and a mistyped limit is refused with how to write it. (The daemon's
//! run-time change is in daemon.rs; the timetable lookup and the pacer are
//! unit-tested in `api::bwlimit`.)

use crate::util::*;
use std::time::{Duration, Instant};

/// 768 KiB at 256 KiB/s: the first 32 KiB go at once (the pacer's
/// bucket), the rest takes about 2.9 s; never less.
const SIZE: usize = 768 << 10;
const AT_LEAST: Duration = Duration::from_millis(2800);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_put_and_get_keep_to_the_bwlimit_of_their_direction() {
    let host = Host::start().await;
    let local = host.path("local");
    let up_only = host.sync_config("up.toml", &local, "/Sync", "bwlimit = \"256k:off\"");
    let down_only = host.sync_config("down.toml", &local, "/Sync", "bwlimit = \"off:256k\"");
    let data = bytes(SIZE, 3);
    let file = host.write("big.bin", &data);

    let t = Instant::now();
    run_dcsync(
        &up_only,
        &["remote", "put", file.to_str().unwrap(), "/"],
        &[],
    )
    .await
    .ok();
    let up = t.elapsed();
    assert!(up >= AT_LEAST, "the upload kept to 256 KiB/s: {up:?}");

    // The download limit does not slow uploads (nor the other way round).
    let t = Instant::now();
    run_dcsync(
        &down_only,
        &["remote", "put", file.to_str().unwrap(), "/again"],
        &[],
    )
    .await
    .ok();
    let fast_up = t.elapsed();
    assert!(
        fast_up < up,
        "an upload under a download-only limit: {fast_up:?}"
    );

    let out = host.path("big.out");
    let t = Instant::now();
    run_dcsync(
        &down_only,
        &["remote", "get", "/big.bin", out.to_str().unwrap()],
        &[],
    )
    .await
    .ok();
    let down = t.elapsed();
    assert!(down >= AT_LEAST, "the download kept to 256 KiB/s: {down:?}");
    assert_eq!(read(&out), data, "and arrived whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_bwlimit_is_refused_with_how_to_write_it() {
    let host = Host::start().await;
    let local = host.path("local");
    for bad in ["fast", "08:00", "25:00,1M", "Moo-08:00,1M"] {
        let cfg = host.sync_config("bad.toml", &local, "/Sync", &format!("bwlimit = \"{bad}\""));
        let r = run_dcsync(&cfg, &["remote", "ls", "/"], &[]).await;
        assert_ne!(r.code, 0, "{bad}: {r:?}");
        assert!(
            r.stderr.contains("bwlimit") && r.stderr.contains("write"),
            "{bad}: {r:?}"
        );
    }
}
