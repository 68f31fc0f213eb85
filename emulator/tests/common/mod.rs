//! Shared helpers for the emulator's integration tests: start an in-process
//! emulator on 127.0.0.1:0 and drive it with raw reqwest, knowing only the
//! published spec and API-NOTES.md.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use dcsync_emulator::{Config, ManualClock, RunningEmulator};
use serde_json::Value;

pub const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
pub const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

pub struct Emu {
    pub emu: Option<RunningEmulator>,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
}

/// A token and account id.
#[derive(Clone, Debug)]
pub struct Auth {
    pub token: String,
    pub account: String,
}

pub fn config(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Config {
    let mut c = Config::new(dir, K1, K2);
    c.clock = clock.clone();
    c
}

pub async fn start() -> Emu {
    start_with(|_| {}).await
}

pub async fn start_with(f: impl FnOnce(&mut Config)) -> Emu {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let mut c = config(dir.path(), &clock);
    f(&mut c);
    let emu = RunningEmulator::start(c).await.unwrap();
    Emu {
        emu: Some(emu),
        http: reqwest::Client::new(),
        dir,
        clock,
    }
}

impl Emu {
    pub fn api(&self) -> String {
        self.emu.as_ref().unwrap().api_url()
    }

    pub fn base(&self) -> String {
        self.emu.as_ref().unwrap().base_url()
    }

    /// Stop and start again on the same directory with a new config.
    pub async fn restart_with(&mut self, f: impl FnOnce(&mut Config)) {
        if let Some(e) = self.emu.take() {
            e.stop().await.unwrap();
        }
        let mut c = config(self.dir.path(), &self.clock);
        f(&mut c);
        self.emu = Some(RunningEmulator::start(c).await.unwrap());
        self.http = reqwest::Client::new();
    }

    pub async fn post_raw(&self, ep: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{ep}", self.api()))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// POST a form; expects HTTP 200 and JSON.
    pub async fn post(&self, ep: &str, form: &[(&str, &str)]) -> Value {
        let r = self.post_raw(ep, form).await;
        assert_eq!(r.status(), 200, "{ep}");
        r.json().await.unwrap()
    }

    pub async fn authorize(&self) -> Auth {
        let v = self.post("authorize", &[("key1", K1), ("key2", K2)]).await;
        assert_eq!(v["_status"], "success", "{v}");
        Auth {
            token: v["data"]["access_token"].as_str().unwrap().to_string(),
            account: v["data"]["account_id"].as_str().unwrap().to_string(),
        }
    }

    /// An authenticated call.
    pub async fn call(&self, ep: &str, a: &Auth, extra: &[(&str, &str)]) -> Value {
        let mut form = vec![
            ("access_token", a.token.as_str()),
            ("account_id", a.account.as_str()),
        ];
        form.extend_from_slice(extra);
        self.post(ep, &form).await
    }

    /// Upload via multipart; returns the whole answer.
    pub async fn upload(
        &self,
        a: &Auth,
        name: &str,
        content: &[u8],
        folder: Option<&str>,
    ) -> Value {
        let mut form = reqwest::multipart::Form::new()
            .text("access_token", a.token.clone())
            .text("account_id", a.account.clone());
        if let Some(f) = folder {
            form = form.text("folder_id", f.to_string());
        }
        form = form.part(
            "upload_file",
            reqwest::multipart::Part::bytes(content.to_vec()).file_name(name.to_string()),
        );
        let r = self
            .http
            .post(format!("{}file/upload", self.api()))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Upload and return the new file id.
    pub async fn upload_id(
        &self,
        a: &Auth,
        name: &str,
        content: &[u8],
        folder: Option<&str>,
    ) -> String {
        let v = self.upload(a, name, content, folder).await;
        assert_eq!(v["_status"], "success", "{v}");
        v["data"][0]["file_id"].as_str().unwrap().to_string()
    }

    pub async fn create_folder(&self, a: &Auth, name: &str, parent: Option<&str>) -> String {
        let mut extra = vec![("folder_name", name)];
        if let Some(p) = parent {
            extra.push(("parent_id", p));
        }
        let v = self.call("folder/create", a, &extra).await;
        assert_eq!(v["_status"], "success", "{v}");
        v["data"]["id"].as_str().unwrap().to_string()
    }

    pub async fn listing(&self, a: &Auth, folder: Option<&str>) -> Value {
        let extra: Vec<(&str, &str)> = folder
            .map(|f| ("parent_folder_id", f))
            .into_iter()
            .collect();
        let v = self.call("folder/listing", a, &extra).await;
        assert_eq!(v["_status"], "success", "{v}");
        v["data"].clone()
    }

    pub async fn file_info(&self, a: &Auth, id: &str) -> Value {
        self.call("file/info", a, &[("file_id", id)]).await
    }
}

/// Assert an error envelope with this message.
pub fn assert_error(v: &Value, message: &str) {
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["response"], message, "{v}");
    assert!(v["_datetime"].is_string(), "{v}");
    assert!(v.get("_status").is_none(), "{v}");
}

pub fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect()
}

/// Poll `f` until it returns Some, or panic after `secs`.
pub async fn wait_for<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}
