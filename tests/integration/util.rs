//! Test helpers: an in-process emulator on loopback, a client for it, and a
//! runner for the real `dcsync` binary. Each case stays a few readable lines.

use dcsync::api::{Client, ClientOptions, Credentials, RetryPolicy, Secret, TokenStore};
use dcsync_emulator::{Config as EmuConfig, RunningEmulator};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const KEY1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
pub const KEY2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// An emulator with its own data dir, plus a scratch dir for the test.
pub struct Host {
    pub emu: Option<RunningEmulator>,
    pub dir: tempfile::TempDir,
    pub config: EmuConfig,
}

impl Host {
    pub async fn start() -> Host {
        Host::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut EmuConfig)) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EmuConfig::new(dir.path().join("emu"), KEY1, KEY2);
        tweak(&mut config);
        let emu = RunningEmulator::start(config.clone()).await.unwrap();
        Host {
            emu: Some(emu),
            dir,
            config,
        }
    }

    pub fn api_url(&self) -> String {
        self.emu.as_ref().unwrap().api_url()
    }

    /// Stops and starts the emulator on the same data dir and port.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Restarts with changed settings (e.g. faults on after setup).
    pub async fn restart_with(&mut self, tweak: impl FnOnce(&mut EmuConfig)) {
        // Same port, so clients and their stored tokens keep working.
        let emu = self.emu.take().unwrap();
        let addr = emu.addr();
        emu.stop().await.unwrap();
        tweak(&mut self.config);
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        self.emu = Some(
            RunningEmulator::start_on(self.config.clone(), listener)
                .await
                .unwrap(),
        );
    }

    /// Where shared tokens of this test live.
    pub fn token_dir(&self) -> PathBuf {
        self.dir.path().join("state").join("tokens")
    }

    pub fn client_opts(&self) -> ClientOptions {
        let creds = Credentials::Keys {
            key1: Secret::new(KEY1),
            key2: Secret::new(KEY2),
        };
        let mut o = ClientOptions::new(self.api_url(), creds);
        o.token_store =
            TokenStore::in_dir(&self.token_dir(), &o.credentials.account_key(&o.api_url));
        o.retry = RetryPolicy::fast();
        o.read_timeout = Duration::from_secs(20);
        o
    }

    pub fn client(&self) -> Client {
        Client::new(self.client_opts()).unwrap()
    }

    /// A scratch path inside the test dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (parents created) and returns its path.
    pub fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Writes a dcsync config file for this host and returns its path.
    pub fn config_file(&self) -> PathBuf {
        let p = self.path("config.toml");
        let text = format!(
            "api_url = \"{}\"\nkey1 = \"{KEY1}\"\nkey2 = \"{KEY2}\"\nstate_dir = \"{}\"\nmax_requests_per_second = 1000.0\n",
            self.api_url(),
            self.dir.path().join("state").display()
        );
        std::fs::write(&p, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        p
    }

    /// Writes a config for syncing `local` with `remote` on this host
    /// (state in the test dir, no request-rate bound to speak of), plus
    /// `extra` TOML lines; returns its path (mode 0600). Makes `local` a
    /// sync root, as `dcsync init` does.
    pub fn sync_config(&self, name: &str, local: &Path, remote: &str, extra: &str) -> PathBuf {
        std::fs::create_dir_all(local.join(".dcsync")).unwrap();
        let p = self.path(name);
        let text = format!(
            "api_url = \"{}\"\nkey1 = \"{KEY1}\"\nkey2 = \"{KEY2}\"\nstate_dir = \"{}\"\n\
             local_path = \"{}\"\nremote_path = \"{remote}\"\nmax_requests_per_second = 1000.0\n{extra}\n",
            self.api_url(),
            self.dir.path().join("state").display(),
            local.display()
        );
        std::fs::write(&p, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        p
    }

    /// Runs the real `dcsync` binary with this host's config.
    pub async fn dcsync(&self, args: &[&str]) -> Run {
        run_dcsync(&self.config_file(), args, &[]).await
    }
}

/// Runs the real `dcsync` binary with `--config cfg`, the given arguments
/// and extra environment variables (no credentials from the environment,
/// warnings-only logs unless `env` says otherwise).
pub async fn run_dcsync(cfg: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcsync"))
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env_remove("DCSYNC_KEY1")
        .env_remove("DCSYNC_KEY2")
        .env("DCSYNC_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    Run::from(out)
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }
    #[track_caller]
    pub fn fails_with(&self, code: i32, text: &str) -> &Self {
        assert_eq!(self.code, code, "exit code: {self:#?}");
        assert!(
            self.stderr.contains(text),
            "stderr should mention {text:?}: {self:#?}"
        );
        self
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

/// Waits for `cond` to hold, polling, up to `deadline`.
pub async fn wait_for<F, Fut>(deadline: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < end {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[allow(dead_code)]
pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// When a [`Hooked`] host asks its hook: before the call reaches the host,
/// or after the host answered (`ok` = it did the work).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Before,
    After { ok: bool },
}

/// The API client behind the engine's `Host` seam, with a hook around every
/// call that may fail it (before: the host never sees it; after: the host
/// did the work and the answer is replaced by the error).
pub struct Hooked<F> {
    pub inner: Client,
    pub hook: F,
}

type Fut<'a, T> = futures_util::future::BoxFuture<'a, Result<T, dcsync::api::ApiError>>;

impl<F> Hooked<F>
where
    F: Fn(&'static str, When) -> Option<dcsync::api::ApiError> + Send + Sync,
{
    fn around<'a, T: Send + 'a>(
        &'a self,
        call: &'static str,
        fut: impl std::future::Future<Output = Result<T, dcsync::api::ApiError>> + Send + 'a,
    ) -> Fut<'a, T> {
        Box::pin(async move {
            if let Some(e) = (self.hook)(call, When::Before) {
                return Err(e);
            }
            let r = fut.await;
            match (self.hook)(call, When::After { ok: r.is_ok() }) {
                Some(e) => Err(e),
                None => r,
            }
        })
    }
}

impl<F> dcsync::api::host::Host for Hooked<F>
where
    F: Fn(&'static str, When) -> Option<dcsync::api::ApiError> + Send + Sync,
{
    fn account_package(&self) -> Fut<'_, dcsync::api::Package> {
        self.around("account/package", self.inner.account_package())
    }
    fn file_info(&self, id: dcsync::api::FileId) -> Fut<'_, dcsync::api::RemoteFile> {
        self.around("file/info", self.inner.file_info(id))
    }
    fn file_rename<'a>(
        &'a self,
        id: dcsync::api::FileId,
        name: &'a str,
    ) -> Fut<'a, dcsync::api::RemoteFile> {
        self.around("file/edit", self.inner.file_rename(id, name))
    }
    fn file_delete(&self, id: dcsync::api::FileId) -> Fut<'_, ()> {
        self.around("file/delete", self.inner.file_delete(id))
    }
    fn file_move(
        &self,
        id: dcsync::api::FileId,
        to: Option<dcsync::api::FolderId>,
    ) -> Fut<'_, dcsync::api::RemoteFile> {
        self.around("file/move", self.inner.file_move(id, to))
    }
    fn file_copy(
        &self,
        id: dcsync::api::FileId,
        to: Option<dcsync::api::FolderId>,
    ) -> Fut<'_, dcsync::api::CopyResult> {
        self.around("file/copy", self.inner.file_copy(id, to))
    }
    fn folder_create<'a>(
        &'a self,
        name: &'a str,
        parent: Option<dcsync::api::FolderId>,
        opts: &'a dcsync::api::FolderOptions,
    ) -> Fut<'a, dcsync::api::RemoteFolder> {
        self.around(
            "folder/create",
            self.inner.folder_create(name, parent, opts),
        )
    }
    fn folder_listing(
        &self,
        parent: Option<dcsync::api::FolderId>,
    ) -> Fut<'_, dcsync::api::Listing> {
        self.around("folder/listing", self.inner.folder_listing(parent))
    }
    fn folder_info(&self, id: dcsync::api::FolderId) -> Fut<'_, dcsync::api::RemoteFolder> {
        self.around("folder/info", self.inner.folder_info(id))
    }
    fn folder_rename<'a>(
        &'a self,
        id: dcsync::api::FolderId,
        name: &'a str,
    ) -> Fut<'a, dcsync::api::RemoteFolder> {
        self.around("folder/edit", self.inner.folder_rename(id, name))
    }
    fn folder_delete(&self, id: dcsync::api::FolderId) -> Fut<'_, ()> {
        self.around("folder/delete", self.inner.folder_delete(id))
    }
    fn folder_move(
        &self,
        id: dcsync::api::FolderId,
        to: Option<dcsync::api::FolderId>,
    ) -> Fut<'_, dcsync::api::RemoteFolder> {
        self.around("folder/move", self.inner.folder_move(id, to))
    }
    fn upload_file<'a>(
        &'a self,
        path: &'a Path,
        name: &'a str,
        folder: Option<dcsync::api::FolderId>,
        progress: Option<dcsync::api::Progress>,
    ) -> Fut<'a, dcsync::api::UploadedFile> {
        self.around(
            "file/upload",
            self.inner.upload_file(path, name, folder, progress),
        )
    }
    fn download_file<'a>(
        &'a self,
        id: dcsync::api::FileId,
        dest: &'a Path,
        expected: &'a dcsync::api::Expected,
        progress: Option<dcsync::api::Progress>,
    ) -> Fut<'a, dcsync::api::Downloaded> {
        self.around(
            "download",
            self.inner.download_file(id, dest, expected, progress),
        )
    }
}

/// A 503 from the host (retryable, nothing done).
pub fn unavailable(call: &'static str) -> dcsync::api::ApiError {
    dcsync::api::ApiError::Server {
        endpoint: call,
        status: 503,
        snippet: "test".into(),
    }
}
