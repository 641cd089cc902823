//! The workspace: one directory holding a state's configuration, secret key, state store
//! and the two output zones. `xmatch init` makes one; every other command finds it.
//!
//! Layout (paths are configurable in `xmatch.toml`):
//! ```text
//! xmatch.toml      configuration
//! pipelines/       pipeline definitions (copies of the shipped ones, to adapt)
//! key/             0700: the HMAC key (0600) and its key id
//! state/xmatch.db  the SQLite store (when the store is the embedded default)
//! incoming/        source files as they arrive
//! lake/            de-identified zone (analysts, DataFusion)
//! secure/          0700: secure zone (anything identifiable)
//! reports/         report files
//! ```

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::TryRngCore;
use serde::{Deserialize, Serialize};

use crate::secure::{Keyring, SecureZone};
use crate::store::{Store, StoreError};

pub const CONFIG_FILE: &str = "xmatch.toml";
pub const KEY_LEN: usize = 32;
/// Set to point every command at a workspace without `--workspace`.
pub const WORKSPACE_ENV: &str = "XMATCH_WORKSPACE";
/// Overrides `[store] url`, so production can keep a PostgreSQL password out of the file.
pub const STORE_URL_ENV: &str = "XMATCH_STORE_URL";

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(
        "no xmatch workspace found from {0}: pass --workspace DIR, set XMATCH_WORKSPACE, or create one with `xmatch init DIR`"
    )]
    NotFound(PathBuf),
    #[error(
        "{path}: not an xmatch workspace (no {CONFIG_FILE}); create one with `xmatch init {path}`"
    )]
    NoConfig { path: PathBuf },
    #[error("{path}: {problem}")]
    Config { path: PathBuf, problem: String },
    #[error(
        "key file {path} is missing: restore it from your key backup; tokens made with another key will not match this workspace's"
    )]
    KeyMissing { path: PathBuf },
    #[error(
        "key file {path} is readable by group or others (mode {mode:04o}): run `chmod 600 {path}` and check who copied it"
    )]
    KeyExposed { path: PathBuf, mode: u32 },
    #[error("key file {path} holds {len} bytes, not {KEY_LEN}: it is damaged or not an xmatch key")]
    KeyLength { path: PathBuf, len: usize },
    #[error("key id file {path} is missing or empty: restore it beside the key")]
    KeyIdMissing { path: PathBuf },
    #[error(
        "key mismatch: the store's tokens were made with key id {store}, but {path} has key id {file}; use the key this workspace was created with"
    )]
    KeyMismatch {
        path: PathBuf,
        store: String,
        file: String,
    },
    #[error(
        "a key rotation to key id {id} is under way but {path} is {problem}: restore it from the backup taken after `xmatch key rotate`"
    )]
    NextKey {
        path: PathBuf,
        id: String,
        problem: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `xmatch.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub paths: Paths,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub key: KeyConfig,
    #[serde(default)]
    pub reporting: Reporting,
    #[serde(default)]
    pub retention: Retention,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    /// Where source files arrive (and where `generate` writes by default).
    pub incoming: PathBuf,
    /// De-identified zone.
    pub lake: PathBuf,
    /// Secure zone.
    pub secure: PathBuf,
    pub reports: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            incoming: "incoming".into(),
            lake: "lake".into(),
            secure: "secure".into(),
            reports: "reports".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://relative/or/absolute.db` or `postgres://user@host/db`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://state/xmatch.db".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// The 32-byte key; its id lives beside it in `<path>.id`.
    pub path: PathBuf,
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            path: "key/xmatch.key".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Reporting {
    /// Cells (numerators, denominators, their differences) below this many people are
    /// suppressed in anything that can leave the agency.
    pub small_cell_threshold: u32,
}

impl Default for Reporting {
    fn default() -> Self {
        Reporting {
            small_cell_threshold: 11,
        }
    }
}

/// `[retention]`: how long files are kept (see `crate::purge::policy` for the rule).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Years files are kept after a program year's closeout date.
    pub years_after_closeout: u32,
    /// `PY2022 = "2025-09-30"`: the date the program year's final closeout expenditure
    /// report was submitted. Kept as raw TOML so a quoted date and a date literal both
    /// work and a bad one is reported with its key.
    pub closeout: std::collections::BTreeMap<String, toml::Value>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            years_after_closeout: crate::purge::policy::MIN_YEARS_AFTER_CLOSEOUT,
            closeout: Default::default(),
        }
    }
}

impl Config {
    fn to_commented_toml(&self) -> String {
        let body = toml::to_string_pretty(self).expect("the config serializes");
        format!(
            "# xmatch workspace configuration. Relative paths are relative to this file.\n\
             # The store URL may be overridden with the {STORE_URL_ENV} environment variable\n\
             # (e.g. postgres://xmatch@db.internal/xmatch) to keep passwords out of this file.\n\
             # `xmatch purge` deletes a program year's files only once [retention.closeout]\n\
             # gives its closeout date, e.g. PY2022 = \"2025-09-30\", and years_after_closeout\n\
             # have passed since.\n\n{body}"
        )
    }
}

/// The secret key, read from the workspace. Deliberately no `Debug`/`Display` of the bytes.
pub struct Key {
    bytes: [u8; KEY_LEN],
    id: String,
}

impl Key {
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A key from its bytes and id (a restored backup).
    pub fn from_parts(bytes: [u8; KEY_LEN], id: String) -> Key {
        Key { bytes, id }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key {{ id: {:?}, bytes: <secret> }}", self.id)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // Best effort: do not leave the key in freed memory.
        for b in self.bytes.iter_mut() {
            // SAFETY: `b` is a valid, aligned, exclusive reference into our own array; the
            // volatile write only stops the compiler from eliding the zeroing.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// A found workspace: its root directory and parsed configuration.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    config: Config,
}

impl Workspace {
    /// Finds the workspace: an explicit directory, else `XMATCH_WORKSPACE`, else the nearest
    /// directory holding `xmatch.toml` from `cwd` upwards.
    pub fn find(explicit: Option<&Path>, cwd: &Path) -> Result<Workspace, WorkspaceError> {
        if let Some(dir) = explicit {
            return Workspace::open(dir);
        }
        if let Some(dir) = std::env::var_os(WORKSPACE_ENV).filter(|v| !v.is_empty()) {
            return Workspace::open(Path::new(&dir));
        }
        let mut dir = Some(cwd);
        while let Some(d) = dir {
            if d.join(CONFIG_FILE).is_file() {
                return Workspace::open(d);
            }
            dir = d.parent();
        }
        Err(WorkspaceError::NotFound(cwd.to_path_buf()))
    }

    /// Opens the workspace rooted at `dir`.
    pub fn open(dir: &Path) -> Result<Workspace, WorkspaceError> {
        let root = absolute(dir)?;
        let path = root.join(CONFIG_FILE);
        if !path.is_file() {
            return Err(WorkspaceError::NoConfig { path: root });
        }
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let config: Config = toml::from_str(&text).map_err(|e| WorkspaceError::Config {
            path: path.clone(),
            problem: e.message().to_string(),
        })?;
        // Checked here, not at purge time, so a typo in a closeout date stops every
        // command at once rather than surfacing months later in a purge.
        crate::purge::policy::Policy::from_config(&config.retention).map_err(|problem| {
            WorkspaceError::Config {
                path: path.clone(),
                problem,
            }
        })?;
        Ok(Workspace { root, config })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        self.root.join(p)
    }

    pub fn incoming_dir(&self) -> PathBuf {
        self.resolve(&self.config.paths.incoming)
    }

    pub fn lake_dir(&self) -> PathBuf {
        self.resolve(&self.config.paths.lake)
    }

    pub fn secure_dir(&self) -> PathBuf {
        self.resolve(&self.config.paths.secure)
    }

    pub fn reports_dir(&self) -> PathBuf {
        self.resolve(&self.config.paths.reports)
    }

    pub fn key_path(&self) -> PathBuf {
        self.resolve(&self.config.key.path)
    }

    pub fn key_id_path(&self) -> PathBuf {
        key_id_path(&self.key_path())
    }

    /// The store URL in force: the environment override, else the configured one.
    pub fn store_url(&self) -> String {
        std::env::var(STORE_URL_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| self.config.store.url.clone())
    }

    /// Opens (and migrates) the state store.
    pub async fn open_store(&self) -> Result<Store, WorkspaceError> {
        Ok(Store::open(&self.store_url(), &self.root).await?)
    }

    /// Reads the key, refusing one that is missing, damaged or readable by others: there
    /// is no fallback to unkeyed hashing, ever.
    pub fn load_key(&self) -> Result<Key, WorkspaceError> {
        load_key(&self.key_path())
    }

    /// The key a rotation moves to, beside the current one: `<key path>.next`.
    pub fn next_key_path(&self) -> PathBuf {
        let mut s = self.key_path().into_os_string();
        s.push(".next");
        PathBuf::from(s)
    }

    /// The secure zone, with the key its files are sealed under (and, during a rotation,
    /// the new key, which files may be sealed under too).
    pub fn secure_zone(&self) -> Result<SecureZone, WorkspaceError> {
        let key = self.load_key()?;
        let next = self.next_key_path();
        let next = if next.exists() {
            Some(load_key(&next)?)
        } else {
            None
        };
        Ok(self.secure_zone_for(&key, next.as_ref()))
    }

    /// The secure zone sealed under `key`, opening files under `next` too.
    pub fn secure_zone_for(&self, key: &Key, next: Option<&Key>) -> SecureZone {
        SecureZone::new(
            self.secure_dir(),
            Keyring::new((key.id(), key.bytes()), next.map(|k| (k.id(), k.bytes()))),
        )
    }

    /// The key of the rotation the store says is under way, if one is: its file must be
    /// there and hold that key id.
    pub fn load_next_key(&self, store_next: Option<&str>) -> Result<Option<Key>, WorkspaceError> {
        let Some(id) = store_next else {
            return Ok(None);
        };
        let path = self.next_key_path();
        let problem = |problem: String| WorkspaceError::NextKey {
            path: path.clone(),
            id: id.to_string(),
            problem,
        };
        if !path.exists() {
            return Err(problem("missing".into()));
        }
        let key = load_key(&path)?;
        if key.id() != id {
            return Err(problem(format!("key id {}", key.id())));
        }
        Ok(Some(key))
    }

    /// Opens the store and the key and checks they belong together.
    pub async fn open_keyed(&self) -> Result<(Store, Key), WorkspaceError> {
        let key = self.load_key()?;
        let store = self.open_store().await?;
        if let Some(row) = store.workspace().await?
            && row.key_id != key.id
        {
            return Err(WorkspaceError::KeyMismatch {
                path: self.key_path(),
                store: row.key_id,
                file: key.id.clone(),
            });
        }
        Ok((store, key))
    }
}

/// What `init` did with each part of the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    pub root: PathBuf,
    pub config_created: bool,
    pub key_created: bool,
    pub key_id: String,
    pub store_url: String,
    pub store_created: bool,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = |created: bool| if created { "created" } else { "kept existing" };
        writeln!(f, "workspace {}", self.root.display())?;
        writeln!(f, "  {:<8} {}", "config", verb(self.config_created))?;
        writeln!(
            f,
            "  {:<8} {} (key id {})",
            "key",
            verb(self.key_created),
            self.key_id
        )?;
        write!(
            f,
            "  {:<8} {} ({})",
            "store",
            verb(self.store_created),
            crate::store::redact_url(&self.store_url)
        )
    }
}

/// Creates a workspace in `dir`, or completes one: existing configuration, key and store
/// are never overwritten, so running it twice is safe.
pub async fn init(dir: &Path) -> Result<InitReport, WorkspaceError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let root = absolute(dir)?;
    let config_path = root.join(CONFIG_FILE);
    let config_created = !config_path.exists();
    if config_created {
        write_new(
            &config_path,
            Config {
                paths: Paths::default(),
                store: StoreConfig::default(),
                key: KeyConfig::default(),
                reporting: Reporting::default(),
                retention: Retention::default(),
            }
            .to_commented_toml()
            .as_bytes(),
            0o644,
        )?;
    }
    let ws = Workspace::open(&root)?;
    for d in [ws.incoming_dir(), ws.lake_dir(), ws.reports_dir()] {
        fs::create_dir_all(&d).map_err(io_err(&d))?;
    }
    let secure = ws.secure_dir();
    create_private_dir(&secure)?;
    // The shipped pipeline definitions, for the operator to adapt; never overwritten.
    let pipelines = root.join("pipelines");
    fs::create_dir_all(&pipelines).map_err(io_err(&pipelines))?;
    for (name, text) in crate::pipeline::config::SHIPPED {
        let path = pipelines.join(name);
        if !path.exists() {
            write_new(&path, text.as_bytes(), 0o644)?;
        }
    }

    let key_path = ws.key_path();
    let key_created = !key_path.exists();
    if key_created {
        create_key(&key_path)?;
    }
    let key = ws.load_key()?;

    let store_url = ws.store_url();
    let store_created = match sqlite_file(&store_url, &root) {
        Some(path) => !path.exists(),
        None => false,
    };
    let store = ws.open_store().await?;
    let row = store
        .init_workspace(&key.id, crate::identity::token::RULE_SET_VERSION)
        .await?;
    store.close().await;
    if row.key_id != key.id {
        return Err(WorkspaceError::KeyMismatch {
            path: key_path,
            store: row.key_id,
            file: key.id.clone(),
        });
    }
    Ok(InitReport {
        root,
        config_created,
        key_created,
        key_id: key.id.clone(),
        store_url,
        store_created,
    })
}

/// The file behind a SQLite URL, if it is one.
fn sqlite_file(url: &str, base: &Path) -> Option<PathBuf> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|p| base.join(p))
}

pub fn key_id_path(key_path: &Path) -> PathBuf {
    let mut s = key_path.as_os_str().to_owned();
    s.push(".id");
    PathBuf::from(s)
}

/// Writes a fresh key from the OS random source and a random key id beside it. The key id
/// is random, never derived from the key, so publishing it reveals nothing.
pub(crate) fn create_key(path: &Path) -> Result<(), WorkspaceError> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let mut key = [0u8; KEY_LEN];
    let mut id = [0u8; 8];
    let mut os = rand::rngs::OsRng;
    os.try_fill_bytes(&mut key)
        .and_then(|_| os.try_fill_bytes(&mut id))
        .map_err(|e| WorkspaceError::Random(e.to_string()))?;
    let id_text = format!("k1-{}\n", hex::encode(id));
    // The id first: a crash between the two writes leaves no key without an id.
    let id_path = key_id_path(path);
    write_new(&id_path, id_text.as_bytes(), 0o600)?;
    let written = write_new(path, &key, 0o600);
    key.iter_mut().for_each(|b| *b = 0);
    written
}

pub fn load_key(path: &Path) -> Result<Key, WorkspaceError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(WorkspaceError::KeyMissing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(WorkspaceError::KeyExposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let data = fs::read(path).map_err(io_err(path))?;
    let bytes: [u8; KEY_LEN] =
        data.as_slice()
            .try_into()
            .map_err(|_| WorkspaceError::KeyLength {
                path: path.to_path_buf(),
                len: data.len(),
            })?;
    let id_path = key_id_path(path);
    let id = fs::read_to_string(&id_path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or(WorkspaceError::KeyIdMissing { path: id_path })?;
    Ok(Key { bytes, id })
}

/// Creates a file that must not exist yet, with `mode` from the start (no window in which
/// the key is readable by others).
pub(crate) fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), WorkspaceError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(data).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    Ok(())
}

/// A directory only the owner can enter (the secure zone, the key directory).
pub fn create_private_dir(dir: &Path) -> Result<(), WorkspaceError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
    }
    Ok(())
}

fn absolute(dir: &Path) -> Result<PathBuf, WorkspaceError> {
    std::path::absolute(dir).map_err(io_err(dir))
}
