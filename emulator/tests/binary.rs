//! The real binary: first stdout line, a working API behind it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const K: &str = "abababababababababababababababababababababababababababababababab";

#[tokio::test]
async fn binary_prints_listening_line_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcsync-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--key1",
            K,
            "--key2",
            K,
            "--data",
        ])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let line = line.trim_end();
    let url = line.strip_prefix("listening on ").unwrap_or_else(|| {
        panic!("unexpected first line {line:?}");
    });
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/api/v2/"),
        "{url}"
    );
    assert!(!url.contains(":0/"), "{url}");
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}authorize"))
        .form(&[("key1", K), ("key2", K)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(v["_status"], "success", "{v}");
    // Redirected, the log is plain text: no colour codes.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("emulator started"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
}
