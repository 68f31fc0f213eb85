//! The files in `packaging/`, checked at the level CI can check them (no root,
//! no systemd, no launchd, no Docker): they parse, they run `dcsync daemon`,
//! and they keep the promises packaging/README.md makes (non-root container,
//! volumes, restart on failure, SIGTERM). Plus the generated completions and
//! man page, from the library and from the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_text(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

// ---------------------------------------------------------------- systemd

/// A unit file as section -> key -> values (a key may repeat).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Parses a unit file strictly enough to catch typos: every line is blank, a
/// comment, a `[Section]` header or `Key=Value` inside a section; no line
/// continuations (none are used, and they would hide the ExecStart check).
fn parse_unit(rel: &str) -> Unit {
    let text = read_text(rel);
    let mut unit = Unit::new();
    let mut section: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = || format!("{rel}:{}: {line}", n + 1);
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(!line.ends_with('\\'), "line continuation: {}", at());
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            assert!(
                ["Unit", "Service", "Install"].contains(&name),
                "unexpected section: {}",
                at()
            );
            unit.entry(name.to_string()).or_default();
            section = Some(name.to_string());
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not Key=Value: {}", at()));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric()),
            "bad key: {}",
            at()
        );
        let section = section
            .as_ref()
            .unwrap_or_else(|| panic!("key before any section: {}", at()));
        unit.get_mut(section)
            .unwrap()
            .entry(key.to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    unit
}

fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    let values = unit
        .get(section)
        .and_then(|s| s.get(key))
        .unwrap_or_else(|| panic!("[{section}] {key}= missing"));
    assert_eq!(values.len(), 1, "[{section}] {key}= set more than once");
    &values[0]
}

/// ExecStart runs the dcsync binary (absolute path) with `daemon` last.
fn assert_runs_daemon(unit: &Unit) {
    let exec = one(unit, "Service", "ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert!(
        words[0].ends_with("/dcsync") && words[0].starts_with(['/', '%']),
        "ExecStart must name the dcsync binary by absolute path: {exec}"
    );
    assert_eq!(words.last(), Some(&"daemon"), "{exec}");
}

fn assert_service_basics(unit: &Unit) {
    assert_runs_daemon(unit);
    assert_eq!(one(unit, "Service", "Restart"), "on-failure");
    assert!(one(unit, "Service", "RestartSec").parse::<u32>().unwrap() > 0);
    assert_eq!(one(unit, "Service", "KillSignal"), "SIGTERM");
    assert!(
        one(unit, "Service", "TimeoutStopSec")
            .parse::<u32>()
            .unwrap()
            >= 30
    );
    assert_eq!(one(unit, "Service", "NoNewPrivileges"), "yes");
    assert_eq!(one(unit, "Service", "StandardError"), "journal");
    // A config error (exit 2) is not a crash: no restart loop.
    assert_eq!(one(unit, "Service", "RestartPreventExitStatus"), "2");
}

#[test]
fn systemd_user_unit_runs_the_daemon() {
    let unit = parse_unit("packaging/systemd/dcsync.service");
    assert_service_basics(&unit);
    assert_eq!(
        one(&unit, "Service", "ExecStart"),
        "%h/.cargo/bin/dcsync daemon",
        "build-deb.sh rewrites exactly this line for the package"
    );
    assert_eq!(one(&unit, "Install", "WantedBy"), "default.target");
    // Not valid in a user unit (the user manager cannot switch users), and
    // the system-only targets do not exist there.
    let service = &unit["Service"];
    for key in [
        "User",
        "Group",
        "DynamicUser",
        "ProtectSystem",
        "ProtectHome",
    ] {
        assert!(!service.contains_key(key), "{key}= in the user unit");
    }
    assert!(
        !unit["Unit"]
            .get("After")
            .into_iter()
            .flatten()
            .any(|v| v.contains("network-online")),
        "network-online.target is a system target"
    );
}

#[test]
fn systemd_system_unit_is_a_hardened_template() {
    let unit = parse_unit("packaging/systemd/dcsync@.service");
    assert_service_basics(&unit);
    assert!(one(&unit, "Service", "ExecStart").starts_with("/usr/bin/dcsync "));
    assert_eq!(one(&unit, "Service", "User"), "%i");
    assert!(one(&unit, "Service", "StateDirectory").starts_with("dcsync"));
    assert_eq!(one(&unit, "Service", "ProtectSystem"), "strict");
    assert_eq!(one(&unit, "Service", "ProtectHome"), "read-only");
    assert_eq!(one(&unit, "Service", "PrivateTmp"), "yes");
    assert_eq!(one(&unit, "Install", "WantedBy"), "multi-user.target");
    // The sync folders must be made writable by the admin: the placeholders
    // are there, commented out (a path that does not exist would fail the start).
    let text = read_text("packaging/systemd/dcsync@.service");
    assert!(
        text.lines().any(|l| l.starts_with("#ReadWritePaths=")),
        "commented ReadWritePaths= examples missing"
    );
    // RemoveIPC= would remove the IPC objects of a real user's other processes.
    assert!(!unit["Service"].contains_key("RemoveIPC"));
}

#[test]
fn build_deb_rewrites_the_user_unit_for_usr_bin() {
    let script = read_text("packaging/build-deb.sh");
    assert!(script.starts_with("#!/usr/bin/env bash\n"));
    assert!(script.contains("set -euo pipefail"));
    assert!(script.contains(r"s|^ExecStart=%h/\.cargo/bin/dcsync |ExecStart=/usr/bin/dcsync |"));
    assert!(script.contains("cargo install cargo-deb"));
    // The script never installs tools itself: it tells the user.
    assert!(
        !script
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.contains("echo"))
            .any(|l| l.contains("cargo install")),
        "build-deb.sh must not run cargo install"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root().join("packaging/build-deb.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "build-deb.sh is not executable");
    }
}

// ---------------------------------------------------------------- launchd

/// A plist value, as much of it as the agent uses.
#[derive(Debug, Clone, PartialEq)]
enum Plist {
    Dict(Vec<(String, Plist)>),
    Array(Vec<Plist>),
    String(String),
    Integer(i64),
    Bool(bool),
}

impl Plist {
    fn get(&self, key: &str) -> Option<&Plist> {
        match self {
            Plist::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// An XML node of the small subset plists use: elements and text.
#[derive(Debug)]
enum Node {
    Element { name: String, children: Vec<Node> },
    Text(String),
}

/// A strict little XML reader: checks well-formedness (one root element,
/// matched tags, comments without `--`, known entities, no attributes except
/// on the root) and returns the root element.
fn parse_xml(text: &str) -> Node {
    let mut rest = text;
    let mut stack: Vec<(String, Vec<Node>)> = vec![("#document".into(), Vec::new())];
    let mut roots = 0;
    assert!(
        rest.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "XML declaration missing"
    );
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").expect("unterminated <?");
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").expect("unterminated comment");
            assert!(
                !r[..end].contains("--"),
                "`--` inside an XML comment: {}",
                &r[..end]
            );
            rest = &r[end + 3..];
        } else if let Some(r) = rest.strip_prefix("<!DOCTYPE") {
            assert_eq!(stack.len(), 1, "DOCTYPE inside an element");
            let end = r.find('>').expect("unterminated DOCTYPE");
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').expect("unterminated end tag");
            let name = r[..end].trim();
            let (open, children) = stack.pop().expect("end tag at top level");
            assert_eq!(open, name, "mismatched end tag");
            let node = Node::Element {
                name: open,
                children,
            };
            stack.last_mut().expect("end tag at top level").1.push(node);
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('<') {
            let end = r.find('>').expect("unterminated tag");
            let mut tag = &r[..end];
            let empty = tag.ends_with('/');
            if empty {
                tag = &tag[..tag.len() - 1];
            }
            let mut parts = tag.split_whitespace();
            let name = parts.next().expect("empty tag").to_string();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)),
                "bad tag name {name}"
            );
            let attrs: Vec<&str> = parts.collect();
            if stack.len() == 1 {
                roots += 1;
                assert_eq!(roots, 1, "more than one root element");
            } else {
                assert!(attrs.is_empty(), "attributes on <{name}>: {attrs:?}");
            }
            for a in &attrs {
                let (k, v) = a.split_once('=').expect("attribute without value");
                assert!(!k.is_empty() && v.len() >= 2 && v.starts_with('"') && v.ends_with('"'));
            }
            if empty {
                stack.last_mut().unwrap().1.push(Node::Element {
                    name,
                    children: Vec::new(),
                });
            } else {
                stack.push((name, Vec::new()));
            }
            rest = &r[end + 1..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let raw = &rest[..end];
            assert!(!raw.contains('>') || stack.len() > 1, "stray `>`");
            if stack.len() == 1 {
                assert!(raw.trim().is_empty(), "text outside the root: {raw:?}");
            } else {
                stack.last_mut().unwrap().1.push(Node::Text(unescape(raw)));
            }
            rest = &rest[end..];
        }
    }
    assert_eq!(
        stack.len(),
        1,
        "unclosed element <{}>",
        stack.last().unwrap().0
    );
    let (_, mut top) = stack.pop().unwrap();
    assert_eq!(top.len(), 1, "no root element");
    top.pop().unwrap()
}

fn unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').expect("unterminated entity") + i;
        out.push(match &rest[i + 1..end] {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            other => panic!("unknown entity &{other};"),
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn elements(children: &[Node]) -> Vec<&Node> {
    children
        .iter()
        .filter(|n| match n {
            Node::Text(t) => {
                assert!(t.trim().is_empty(), "stray text {t:?}");
                false
            }
            Node::Element { .. } => true,
        })
        .collect()
}

fn text_of(children: &[Node]) -> String {
    children
        .iter()
        .map(|n| match n {
            Node::Text(t) => t.as_str(),
            Node::Element { name, .. } => panic!("<{name}> inside a text value"),
        })
        .collect()
}

fn plist_value(node: &Node) -> Plist {
    let Node::Element { name, children } = node else {
        unreachable!()
    };
    match name.as_str() {
        "dict" => {
            let els = elements(children);
            assert!(
                els.len().is_multiple_of(2),
                "dict with an odd number of children"
            );
            Plist::Dict(
                els.chunks(2)
                    .map(|kv| {
                        let Node::Element { name, children } = kv[0] else {
                            unreachable!()
                        };
                        assert_eq!(name, "key", "dict entry without <key>");
                        (text_of(children), plist_value(kv[1]))
                    })
                    .collect(),
            )
        }
        "array" => Plist::Array(elements(children).into_iter().map(plist_value).collect()),
        "string" => Plist::String(text_of(children)),
        "integer" => Plist::Integer(text_of(children).trim().parse().expect("bad <integer>")),
        "true" | "false" => {
            assert!(children.is_empty());
            Plist::Bool(name == "true")
        }
        other => panic!("unexpected plist element <{other}>"),
    }
}

fn parse_plist(rel: &str) -> Plist {
    let text = read_text(rel);
    assert!(
        text.contains("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\""),
        "plist DOCTYPE missing"
    );
    let root = parse_xml(&text);
    let Node::Element { name, children } = &root else {
        unreachable!()
    };
    assert_eq!(name, "plist");
    let els = elements(children);
    assert_eq!(els.len(), 1, "<plist> holds one value");
    plist_value(els[0])
}

#[test]
fn launchd_agent_runs_the_daemon() {
    let plist = parse_plist("packaging/launchd/com.dcsync.daemon.plist");
    assert_eq!(
        plist.get("Label"),
        Some(&Plist::String("com.dcsync.daemon".into()))
    );
    let Some(Plist::Array(args)) = plist.get("ProgramArguments") else {
        panic!("ProgramArguments is not an array: {plist:?}")
    };
    let args: Vec<&str> = args
        .iter()
        .map(|a| match a {
            Plist::String(s) => s.as_str(),
            other => panic!("ProgramArguments entry {other:?}"),
        })
        .collect();
    assert!(
        args[0].starts_with('/') && args[0].ends_with("/dcsync"),
        "launchd needs the binary's absolute path: {args:?}"
    );
    assert_eq!(args.last(), Some(&"daemon"), "{args:?}");
    assert_eq!(plist.get("RunAtLoad"), Some(&Plist::Bool(true)));
    match plist.get("KeepAlive") {
        Some(Plist::Bool(true)) => {}
        Some(Plist::Dict(d)) => assert!(!d.is_empty()),
        other => panic!("KeepAlive: {other:?}"),
    }
    // Time between SIGTERM and SIGKILL for in-flight transfers.
    match plist.get("ExitTimeOut") {
        Some(Plist::Integer(s)) => assert!(*s >= 30, "ExitTimeOut {s}"),
        other => panic!("ExitTimeOut: {other:?}"),
    }
    let Some(Plist::String(log)) = plist.get("StandardErrorPath") else {
        panic!("StandardErrorPath missing")
    };
    assert!(
        log.starts_with("/Users/") && log.ends_with("/Library/Logs/dcsync.log"),
        "launchd does not expand ~: {log}"
    );
}

#[test]
fn the_xml_reader_rejects_what_launchd_would() {
    let head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    for bad in [
        "<plist><dict></plist>",
        "<plist><!-- a -- b --></plist>",
        "<plist></plist><plist></plist>",
        "<plist><string>a &nbsp; b</string></plist>",
        "<plist><dict>",
    ] {
        let doc = format!("{head}{bad}");
        assert!(
            std::panic::catch_unwind(|| parse_xml(&doc)).is_err(),
            "accepted: {bad}"
        );
    }
    let ok = format!(
        "{head}<plist version=\"1.0\"><array><string>a &amp; b</string><true/></array></plist>"
    );
    let Node::Element { children, .. } = parse_xml(&ok) else {
        unreachable!()
    };
    assert_eq!(
        plist_value(elements(&children)[0]),
        Plist::Array(vec![Plist::String("a & b".into()), Plist::Bool(true)])
    );
}

// ---------------------------------------------------------------- Docker

/// Dockerfile instructions (continuations joined, comments dropped), each as
/// (INSTRUCTION, arguments).
fn dockerfile(rel: &str) -> Vec<(String, String)> {
    let text = read_text(rel);
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (op, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((op.to_ascii_uppercase(), args.trim().to_string()));
        current.clear();
    }
    assert!(current.is_empty(), "{rel} ends in a continuation");
    out
}

fn json_array(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not exec (JSON) form: {args}: {e}"))
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_volumes() {
    let ins = dockerfile("packaging/docker/Dockerfile");
    let froms: Vec<usize> = (0..ins.len()).filter(|&i| ins[i].0 == "FROM").collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    assert!(
        ins[froms[0]].1.starts_with("rust:1-slim"),
        "{:?}",
        ins[froms[0]]
    );
    assert_eq!(ins[froms[1]].1, "debian:stable-slim");
    let build_stage = &ins[froms[0]..froms[1]];
    let runtime = &ins[froms[1]..];
    assert!(
        build_stage
            .iter()
            .any(|(op, a)| op == "RUN" && a.contains("cargo build --release --locked -p dcsync")),
        "release build with the lock file"
    );
    let run_text: String = runtime
        .iter()
        .filter(|(op, _)| op == "RUN")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(run_text.contains("ca-certificates"));
    assert!(run_text.contains("useradd") && run_text.contains("--uid 1000"));
    assert!(run_text.contains("rm -rf /var/lib/apt/lists"));

    // Runs as a non-root user, set after everything that needs root.
    let users: Vec<usize> = (0..runtime.len())
        .filter(|&i| runtime[i].0 == "USER")
        .collect();
    let last_user = *users.last().expect("no USER in the runtime stage");
    let user = &runtime[last_user].1;
    let name = user.split(':').next().unwrap();
    assert!(name != "root" && name != "0", "runs as root: {user}");
    assert!(
        runtime[last_user..].iter().all(|(op, _)| op != "RUN"),
        "RUN after USER"
    );

    let volumes: Vec<String> = runtime
        .iter()
        .filter(|(op, _)| op == "VOLUME")
        .flat_map(|(_, a)| {
            if a.starts_with('[') {
                json_array(a)
            } else {
                a.split_whitespace().map(String::from).collect()
            }
        })
        .collect();
    for v in ["/config", "/state", "/data"] {
        assert!(
            volumes.iter().any(|x| x == v),
            "VOLUME {v} missing: {volumes:?}"
        );
    }

    let last = |op: &str| {
        runtime
            .iter()
            .rev()
            .find(|(o, _)| o == op)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("{op} missing"))
    };
    assert_eq!(
        json_array(&last("ENTRYPOINT")),
        ["dcsync", "--config", "/config/config.toml"]
    );
    assert_eq!(json_array(&last("CMD")), ["daemon"]);
    let health = last("HEALTHCHECK");
    assert!(
        health == "NONE" || health.contains("dcsync status"),
        "HEALTHCHECK {health}"
    );
    assert!(
        std::fs::metadata(root().join("packaging/docker/README.md")).is_ok(),
        "docker/README.md missing"
    );
}

// ---------------------------------------------------------------- cargo deb

#[test]
fn deb_metadata_assets_exist_or_are_generated() {
    let manifest: toml::Value = toml::from_str(&read_text("Cargo.toml")).unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    for key in ["maintainer", "section", "priority", "extended-description"] {
        assert!(deb.get(key).and_then(|v| v.as_str()).is_some(), "{key}");
    }
    assert_eq!(deb["depends"].as_str(), Some("$auto"));
    let script = read_text("packaging/build-deb.sh");
    let assets: Vec<(String, String, String)> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().expect("asset as [source, dest, mode]");
            let s = |i: usize| a[i].as_str().unwrap().to_string();
            (s(0), s(1), s(2))
        })
        .collect();
    let mut dests = BTreeMap::new();
    for (src, dest, mode) in &assets {
        assert!(!dest.starts_with('/'), "dest is relative: {dest}");
        assert!(mode == "644" || mode == "755", "{src}: mode {mode}");
        dests.insert(dest.clone(), src.clone());
        if src.starts_with("target/release/") {
            continue; // built by cargo
        }
        if let Some(generated) = src.strip_prefix("target/") {
            assert!(
                script.contains(&format!("target/{generated}")),
                "{src} is not written by build-deb.sh"
            );
        } else {
            assert!(root().join(src).is_file(), "{src} does not exist");
        }
    }
    let want = [
        ("usr/bin/", "target/release/dcsync"),
        (
            "usr/lib/systemd/user/dcsync.service",
            "target/packaging/dcsync.service",
        ),
        (
            "usr/lib/systemd/system/dcsync@.service",
            "packaging/systemd/dcsync@.service",
        ),
        ("usr/share/man/man1/dcsync.1", "target/dcsync.1"),
        (
            "usr/share/bash-completion/completions/dcsync",
            "target/completions/dcsync.bash",
        ),
        (
            "usr/share/zsh/vendor-completions/_dcsync",
            "target/completions/_dcsync",
        ),
        (
            "usr/share/fish/vendor_completions.d/dcsync.fish",
            "target/completions/dcsync.fish",
        ),
    ];
    for (dest, src) in want {
        assert_eq!(dests.get(dest).map(String::as_str), Some(src), "{dest}");
    }
    assert!(
        dests
            .keys()
            .any(|d| d.starts_with("usr/share/doc/dcsync/README")),
        "README in usr/share/doc/dcsync/"
    );
    for cmd in [
        "man > target/dcsync.1",
        "completions bash > target/completions/dcsync.bash",
        "completions zsh > target/completions/_dcsync",
        "completions fish > target/completions/dcsync.fish",
        "cargo deb",
    ] {
        assert!(script.contains(cmd), "build-deb.sh does not run `{cmd}`");
    }
}

#[test]
fn packaging_readme_covers_every_variant() {
    let readme = read_text("packaging/README.md");
    for needle in [
        "systemctl --user daemon-reload",
        "systemctl --user enable --now dcsync",
        "loginctl enable-linger",
        "journalctl --user -u dcsync -f",
        "systemctl enable --now dcsync@",
        "launchctl bootstrap gui/",
        "docker build -f packaging/docker/Dockerfile",
        "packaging/build-deb.sh",
        "cargo install cargo-deb",
    ] {
        assert!(
            readme.contains(needle),
            "packaging/README.md lacks `{needle}`"
        );
    }
    let docker = read_text("packaging/docker/README.md");
    for needle in ["-v ", "-u ", "services:", "/config", "/state", "/data"] {
        assert!(docker.contains(needle), "docker/README.md lacks `{needle}`");
    }
}

// ------------------------------------------------- completions and man page

fn assert_mentions_commands(what: &str, out: &str) {
    assert!(!out.trim().is_empty(), "{what} is empty");
    for word in ["sync", "remote", "status"] {
        assert!(out.contains(word), "{what} does not mention `{word}`");
    }
}

#[test]
fn generated_completions_and_man_page_from_the_library() {
    use dcsync::cli::generate;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let mut out = Vec::new();
        generate::completions(shell, &mut out);
        assert_mentions_commands(
            &format!("{shell} completion"),
            &String::from_utf8(out).unwrap(),
        );
    }
    let mut out = Vec::new();
    generate::man_page(&mut out).unwrap();
    let man = String::from_utf8(out).unwrap();
    assert_mentions_commands("man page", &man);
    assert!(man.contains(".TH dcsync 1"));
}

/// The binary's own `completions` and `man` commands: they need no config
/// (a missing one is no error) and print to stdout.
fn run_dcsync(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcsync"))
        .args(args)
        .env(
            "DCSYNC_CONFIG",
            Path::new("/nonexistent/dcsync/config.toml"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dcsync {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dcsync_completions_bash_prints_the_script() {
    let out = run_dcsync(&["completions", "bash"]);
    assert_mentions_commands("dcsync completions bash", &out);
    assert!(out.contains("complete"), "not a bash completion script");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(
            !run_dcsync(&["completions", shell]).trim().is_empty(),
            "{shell}"
        );
    }
}

#[test]
fn dcsync_man_prints_the_page() {
    let out = run_dcsync(&["man"]);
    assert_mentions_commands("dcsync man", &out);
    assert!(out.contains(".TH dcsync 1"), "not a man page");
}
