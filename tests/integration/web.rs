//! The daemon's web console and `/metrics` (#14 items 1 and 2), through the
//! real binary: the token, the CSRF and `Host` checks and the security
//! headers over plain HTTP, the metrics parsed as Prometheus text, and the
//! page itself in a real headless Chromium driven over WebDriver
//! (chromedriver), which `.ci/run` installs.

use crate::daemon::{DEADLINE, Daemon};
use crate::util::*;
use std::collections::HashMap;

/// A daemon with its console on a port the system picks, and the login URL
/// `dcsync web` prints for it.
async fn console(host: &Host) -> (Daemon, String) {
    let d = Daemon::start_with(host, "poll_interval = \"1h\"\nweb_listen = \"127.0.0.1:0\"").await;
    let url = console_of(&d).await;
    (d, url)
}

/// The login URL of daemon `d`'s console, once it is up.
async fn console_of(d: &Daemon) -> String {
    let url = std::sync::Mutex::new(String::new());
    let up = wait_for(DEADLINE, || {
        let url = &url;
        async move {
            let r = d.cli(&["web"]).await;
            let ok = r.code == 0 && !r.stdout.contains(":0/") && r.stderr.is_empty();
            if ok {
                *url.lock().unwrap() = r.stdout.trim().to_owned();
            }
            ok
        }
    })
    .await;
    assert!(up, "`dcsync web` prints the running console's URL");
    let url = url.into_inner().unwrap();
    assert!(url.contains("/login?token="), "{url}");
    url
}

/// `/api/state`, with the token as a Bearer header.
async fn api_state(http: &reqwest::Client, base: &str, token: &str) -> serde_json::Value {
    http.get(format!("{base}/api/state"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The base URL and the token of a login URL.
fn split(url: &str) -> (String, String) {
    let (base, token) = url.split_once("/login?token=").unwrap();
    (base.to_owned(), token.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_needs_its_token_and_refuses_cross_site_posts() {
    let host = Host::start().await;
    std::fs::create_dir_all(host.path("local")).unwrap();
    std::fs::write(host.path("local/a.txt"), b"hello").unwrap();
    let (d, url) = console(&host).await;
    let (base, token) = split(&url);
    let http = no_redirects();

    // Without the token: nothing but the login hint.
    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(format!("{base}/api/state")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{base}/login?token=wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Another host name pointed at the loopback (DNS rebinding).
    let r = http
        .get(format!("{base}/api/state"))
        .header("host", "evil.example:80")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);

    // The login URL sets an HttpOnly, SameSite=Strict cookie.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let r = http
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let page = r.text().await.unwrap();
    assert!(page.contains("/app.js") && !page.contains("http://") && !page.contains("https://"));

    let state = |http: reqwest::Client, base: String, cookie: String| async move {
        http.get(format!("{base}/api/state"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let seen = std::sync::Mutex::new(serde_json::Value::Null);
    assert!(
        wait_for(DEADLINE, || {
            let (http, base, cookie, seen) = (http.clone(), base.clone(), cookie.clone(), &seen);
            async move {
                let s = state(http, base, cookie).await;
                let ok = s["pairs"][0]["state"] == "idle"
                    && s["activity"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x["path"] == "a.txt"));
                *seen.lock().unwrap() = s;
                ok
            }
        })
        .await,
        "the pair goes idle and the upload shows in the activity: {}",
        seen.lock().unwrap()
    );
    let s = seen.into_inner().unwrap();
    let name = s["pairs"][0]["name"].as_str().unwrap().to_owned();
    let csrf = s["csrf"].as_str().unwrap().to_owned();
    let pause = format!("{base}/api/pairs/{name}/pause");

    // A page of another site can neither read the CSRF token nor pass the
    // Origin check: its POST is refused, and nothing changes.
    for req in [
        http.post(&pause).header("cookie", &cookie),
        http.post(&pause)
            .header("cookie", &cookie)
            .header("origin", "http://evil.example")
            .header("x-csrf-token", &csrf),
        http.post(&pause)
            .header("cookie", &cookie)
            .header("x-csrf-token", "0".repeat(64)),
    ] {
        let r = req.body("{}").send().await.unwrap();
        assert_eq!(r.status(), 403);
    }
    let s = state(http.clone(), base.clone(), cookie.clone()).await;
    assert_eq!(s["pairs"][0]["state"], "idle");

    // The console's own POST pauses the pair.
    let r = http
        .post(&pause)
        .header("cookie", &cookie)
        .header("origin", &base)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        wait_for(DEADLINE, || async {
            state(http.clone(), base.clone(), cookie.clone()).await["pairs"][0]["state"] == "paused"
        })
        .await
    );
    assert!(d.cli(&["status"]).await.stdout.contains("paused"));

    // /metrics: the token is needed, and the text parses.
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{base}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = parse_prometheus(&r.text().await.unwrap());
    let pair = format!("pair=\"{name}\"");
    assert_eq!(
        m[&format!("dcsync_pair_state{{{pair},state=\"paused\"}}")],
        1.0
    );
    assert_eq!(m[&format!("dcsync_files_tracked{{{pair}}}")], 1.0);
    assert_eq!(m[&format!("dcsync_bytes_tracked{{{pair}}}")], 5.0);
    assert!(m[&format!("dcsync_sent_bytes_total{{{pair}}}")] >= 5.0);
    assert!(m[&format!("dcsync_ops_total{{{pair},kind=\"upload\",outcome=\"ok\"}}")] >= 1.0);
    assert!(m[&format!("dcsync_pass_duration_seconds_count{{{pair}}}")] >= 1.0);
    assert!(m[&format!("dcsync_last_success_timestamp_seconds{{{pair}}}")] > 1.7e9);
    assert!(m["dcsync_api_requests_total"] > 0.0);
    assert_eq!(m["dcsync_api_throttled_total"], 0.0);
    assert!(d.stop().await.success());
}

/// A mass-delete stop shows in the console with what it would delete, and
/// the console's "Delete them" lets the next pass go ahead, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_delete_stop_is_shown_and_confirmed_from_the_console() {
    let host = Host::start().await;
    let local = host.path("local");
    std::fs::create_dir_all(&local).unwrap();
    for i in 0..5 {
        std::fs::write(local.join(format!("f{i}.txt")), format!("file {i}")).unwrap();
    }
    let d = Daemon::start_with(
        &host,
        "poll_interval = \"1h\"\nweb_listen = \"127.0.0.1:0\"\nmax_delete_count = 2",
    )
    .await;
    let url = console_of(&d).await;
    let (base, token) = split(&url);
    let http = no_redirects();
    let get_state = || api_state(&http, &base, &token);
    let c = host.client();
    let on_host = || async {
        let sync = c
            .folder_listing(None)
            .await
            .ok()?
            .folders
            .into_iter()
            .find(|f| f.name == "Sync")?;
        Some(c.folder_listing(Some(sync.id)).await.ok()?.files.len())
    };
    assert!(wait_for(DEADLINE, || async { on_host().await == Some(5) }).await);
    // Paused while the files go, so that one pass sees all five deletes
    // (the watcher may report them in more than one batch).
    assert_eq!(d.cli(&["pause"]).await.code, 0);
    for i in 0..5 {
        std::fs::remove_file(local.join(format!("f{i}.txt"))).unwrap();
    }
    assert_eq!(d.cli(&["resume"]).await.code, 0);
    let stopped = std::sync::Mutex::new(serde_json::Value::Null);
    assert!(
        wait_for(DEADLINE, || async {
            let s = get_state().await;
            let ok = s["pairs"][0]["mass_delete"]["count"] == 5;
            *stopped.lock().unwrap() = s;
            ok
        })
        .await,
        "the stop shows: {}",
        stopped.lock().unwrap()
    );
    let s = stopped.into_inner().unwrap();
    assert_eq!(s["pairs"][0]["state"], "paused");
    let paths: Vec<&str> = s["pairs"][0]["mass_delete"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(paths.len(), 5, "{paths:?}");
    assert!(paths.contains(&"f3.txt"), "{paths:?}");
    assert_eq!(on_host().await, Some(5), "nothing deleted yet");
    let name = s["pairs"][0]["name"].as_str().unwrap();
    let r = http
        .post(format!("{base}/api/pairs/{name}/confirm-delete"))
        .bearer_auth(&token)
        .header("x-csrf-token", s["csrf"].as_str().unwrap())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(wait_for(DEADLINE, || async { on_host().await == Some(0) }).await);
    assert!(
        wait_for(DEADLINE, || async {
            let s = get_state().await;
            s["pairs"][0]["state"] == "idle" && s["pairs"][0]["mass_delete"].is_null()
        })
        .await
    );
    assert!(d.stop().await.success());
}

/// A kept conflict shows in the console with both versions, and "Keep
/// local" settles it as `dcsync resolve` does; the daemon then carries it to
/// the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_listed_and_settled_from_the_console() {
    let host = Host::start().await;
    let pair = crate::sync::Pair::new(&host);
    pair.write("a.txt", b"local a");
    let f = host.write("h/a.txt", b"remote a!");
    host.dcsync(&["remote", "put", f.to_str().unwrap(), "/Sync"])
        .await
        .ok();
    pair.sync(&[]).await.ok();
    pair.sync(&[]).await.ok();
    let mut cfg = std::fs::read_to_string(&pair.cfg).unwrap();
    cfg.push_str("\npoll_interval = \"1h\"\nweb_listen = \"127.0.0.1:0\"\n");
    std::fs::write(&pair.cfg, cfg).unwrap();
    let d = Daemon::spawn(pair.cfg.clone(), pair.local.clone());
    let url = console_of(&d).await;
    let (base, token) = split(&url);
    let http = no_redirects();
    let get_state = || api_state(&http, &base, &token);
    let s = get_state().await;
    let c = &s["pairs"][0]["conflicts"][0];
    assert_eq!(c["path"], "a.txt", "{s}");
    assert!(
        c["copy_path"].as_str().unwrap().contains("conflicted copy"),
        "{c}"
    );
    let sizes = [c["path_size"].as_u64(), c["copy_size"].as_u64()];
    assert!(sizes.contains(&Some(7)) && sizes.contains(&Some(9)), "{c}");
    let name = s["pairs"][0]["name"].as_str().unwrap();
    let resolve = |keep: &'static str| {
        http.post(format!("{base}/api/pairs/{name}/resolve"))
            .bearer_auth(&token)
            .header("x-csrf-token", s["csrf"].as_str().unwrap())
            .json(&serde_json::json!({ "path": "a.txt", "keep": keep }))
            .send()
    };
    assert_eq!(resolve("mine").await.unwrap().status(), 400);
    assert_eq!(resolve("local").await.unwrap().status(), 200);
    assert!(
        wait_for(DEADLINE, || async {
            get_state().await["pairs"][0]["conflicts"]
                .as_array()
                .is_some_and(|a| a.is_empty())
        })
        .await
    );
    assert_eq!(
        resolve("local").await.unwrap().status(),
        409,
        "settled once"
    );
    let c = host.client();
    let names = || async {
        let sync = c
            .folder_listing(None)
            .await
            .ok()?
            .folders
            .into_iter()
            .find(|f| f.name == "Sync")?;
        let l = c.folder_listing(Some(sync.id)).await.ok()?;
        Some(l.files.into_iter().map(|f| f.name).collect::<Vec<_>>())
    };
    let settled = wait_for(DEADLINE, || async {
        names()
            .await
            .is_some_and(|n| !n.iter().any(|k| k.contains("conflicted copy")))
    })
    .await;
    assert!(settled, "the host keeps no copy: {:?}", names().await);
    assert!(crate::daemon::until_remote(&c, "a.txt", Some(b"local a")).await);
    assert!(
        pair.trash_has(b"remote a!"),
        "the other version is in the local trash"
    );
    assert!(d.stop().await.success());
}

/// Parses Prometheus text (format 0.0.4): every sample line is
/// `name{labels} value`, every family has `# HELP` and `# TYPE` first.
/// Returns `name{labels}` → value; panics on anything malformed.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut typed = std::collections::HashSet::new();
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "{line}"
            );
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = ["_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| typed.contains(*f))
            .unwrap_or(name);
        assert!(typed.contains(family), "no # TYPE before {line}");
        if let Some(labels) = key.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        out.insert(key.to_owned(), v);
    }
    out
}

/// A WebDriver session (chromedriver, W3C protocol) over plain HTTP.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    _driver: tokio::process::Child,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("headless Chromium is needed: apt-get install chromium chromium-driver (.ci/run does)");
        let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromedriver is needed: apt-get install chromium-driver (.ci/run does)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        assert!(
            wait_for(DEADLINE, || async {
                http.get(format!("{base}/status")).send().await.is_ok()
            })
            .await,
            "chromedriver starts"
        );
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1200,900"]
            }
        }}});
        let r: serde_json::Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a WebDriver session: {r}"))
            .to_owned();
        Browser {
            http,
            base,
            session,
            _driver: child,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method.clone(), url);
        if method == reqwest::Method::POST {
            req = req.json(&body);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn go(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            "/url",
            serde_json::json!({ "url": url }),
        )
        .await;
    }

    /// The text of the first element `css` selects, if there is one.
    async fn text(&self, css: &str) -> Option<String> {
        let r = self
            .call(
                reqwest::Method::POST,
                "/element",
                serde_json::json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = r["value"]
            .as_object()?
            .values()
            .next()?
            .as_str()?
            .to_owned();
        let t = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{id}/text"),
                serde_json::Value::Null,
            )
            .await;
        t["value"].as_str().map(str::to_owned)
    }

    async fn click(&self, css: &str) {
        let r = self
            .call(
                reqwest::Method::POST,
                "/element",
                serde_json::json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = r["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no element {css}: {r}"))
            .to_owned();
        let r = self
            .call(
                reqwest::Method::POST,
                &format!("/element/{id}/click"),
                serde_json::json!({}),
            )
            .await;
        assert!(r["value"].is_null(), "click {css}: {r}");
    }

    async fn screenshot(&self, to: &std::path::Path) {
        use base64::Engine as _;
        let r = self
            .call(reqwest::Method::GET, "/screenshot", serde_json::Value::Null)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["value"].as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
    }

    async fn quit(self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let host = Host::start().await;
    // Made before the daemon starts: its first pass sends it.
    let local = host.path("local");
    std::fs::create_dir_all(local.join("docs")).unwrap();
    std::fs::write(local.join("docs/report.txt"), b"quarterly numbers").unwrap();
    let (d, url) = console(&host).await;
    let b = Browser::start().await;
    b.go(&url).await;
    // The pair, idle, and the upload in the recent activity.
    let card = "section.pair";
    assert!(
        wait_for(DEADLINE, || async {
            b.text(&format!("{card} .state")).await.as_deref() == Some("idle")
                && b.text("body")
                    .await
                    .is_some_and(|t| t.contains("docs/report.txt"))
        })
        .await,
        "the console shows the pair idle and the upload: {:?}",
        b.text("body").await
    );
    let body = b.text("body").await.unwrap_or_default();
    assert!(body.contains(&d.local.display().to_string()), "{body}");
    b.click(&format!("{card} button[data-action=\"pause\"]"))
        .await;
    assert!(
        wait_for(DEADLINE, || async {
            b.text(&format!("{card} .state")).await.as_deref() == Some("paused")
        })
        .await,
        "the state changes to paused without a reload"
    );
    assert!(d.cli(&["status"]).await.stdout.contains("paused"));
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-console.png");
    b.screenshot(&shot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    eprintln!("screenshot: {}", shot.display());
    b.quit().await;
    assert!(d.stop().await.success());
}
