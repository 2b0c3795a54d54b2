//! What the Horace end-to-end tests share: a real server bound on
//! 127.0.0.1:0 over a temporary storage root (with a sibling folder
//! `outside/` that nothing may touch), the runtime's WebSocket client, and
//! helpers that call a tool and check success or a failure's error code.

#![allow(dead_code, unused_macros)]

use std::io::Read;
use std::path::{Path, PathBuf};

use horace::{Catalog, CatalogConfig, Horace, StorageRoot};
use mcp_runtime::ShutdownHandle;
use mcp_runtime::client::Client;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// A Horace server in this process; stops when dropped.
pub struct Fixture {
    pub client: Client,
    pub horace: Horace,
    pub url: String,
    dir: TempDir,
    shutdown: ShutdownHandle,
}

impl Fixture {
    /// A fresh root in a temporary folder and a catalog from `config`.
    pub async fn start(config: CatalogConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        let root = StorageRoot::open(&dir.path().join("files")).unwrap();
        let catalog = Catalog::open(&config, &root.path().display().to_string()).await.unwrap();
        let horace = Horace::new(root, catalog).unwrap();
        let bound = horace::server(horace.clone()).bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", bound.local_addr());
        let shutdown = bound.shutdown_handle();
        tokio::spawn(bound.serve());
        let client = Client::connect(&url).await.unwrap();
        Fixture { client, horace, url, dir, shutdown }
    }

    /// The storage root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// A folder beside the root: the target of every escape attempt.
    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Writes a file under the root (creating folders); returns its path.
    pub fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// The absolute path of `rel` as Horace shows it.
    pub fn abs(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root().display())
    }

    /// What the version store holds: see [`stored_objects`].
    pub fn stored_objects(&self) -> Vec<String> {
        stored_objects(&self.root())
    }

    /// Every stored content, sorted: the catalog's inline checksums and the
    /// store's files (see [`stored_objects`]), each once.
    pub async fn stored(&self) -> Vec<String> {
        let mut all = self.horace.catalog().inline_checksums().await.unwrap();
        all.extend(self.stored_objects());
        all.sort();
        all
    }

    /// Opens a second Horace on this fixture's root and catalog, as a
    /// restart (or another replica) does, and a client on it.
    pub async fn reopen(&self) -> (Horace, Client, ShutdownHandle) {
        let root = StorageRoot::open(&self.root()).unwrap();
        let horace = Horace::new(root, self.horace.catalog().clone()).unwrap();
        let bound = horace::server(horace.clone()).bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", bound.local_addr());
        let shutdown = bound.shutdown_handle();
        tokio::spawn(bound.serve());
        (horace, Client::connect(&url).await.unwrap(), shutdown)
    }

    /// Where the version store keeps the content `checksum`.
    pub fn object_path(&self, checksum: &str) -> PathBuf {
        self.root().join(".horace/objects").join(&checksum[..2]).join(checksum)
    }

    /// Every file under `outside/` with its content, to compare before and after.
    pub fn outside_snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    walk(&entry.path(), out);
                } else {
                    out.push((entry.path(), std::fs::read(entry.path()).unwrap_or_default()));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.outside(), &mut out);
        out.sort();
        out
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// Declares one `#[tokio::test]` per scenario and catalog backend
/// (`sqlite::NAME`, `postgres::NAME`), so a failure hides no other scenario
/// and each can be run alone. Every test gets a fresh root and catalog.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = tempfile::tempdir().unwrap();
                    super::$name(super::common::Fixture::on_sqlite(db.path()).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::common::Fixture::on_postgres(stringify!($name)).await).await;
                }
            )*
        }
    };
}

impl Fixture {
    /// A fixture whose catalog is an SQLite file in `dir`.
    pub async fn on_sqlite(dir: &std::path::Path) -> Fixture {
        Fixture::start(CatalogConfig::Sqlite { path: dir.join("horace.sqlite3") }).await
    }

    /// A fixture whose catalog is a fresh database on the test binary's
    /// private PostgreSQL.
    pub async fn on_postgres(label: &'static str) -> Fixture {
        let url =
            tokio::task::spawn_blocking(move || mcp_tests::TestPostgres::shared().fresh_database(label)).await.unwrap();
        Fixture::start(CatalogConfig::Postgres { url }).await
    }
}

/// Calls a tool that must succeed and decodes its structured output.
pub async fn ok<T: DeserializeOwned>(client: &Client, tool: &str, args: Value) -> T {
    let result = client.call_tool(tool, &args).await.unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
    assert!(!result.is_error, "{tool} {args} failed: {}", result.text());
    let structured = result.structured_content.unwrap_or_else(|| panic!("{tool} sent no structuredContent"));
    serde_json::from_value(structured).unwrap_or_else(|e| panic!("{tool}: unexpected output shape: {e}"))
}

/// Calls a tool that must fail with `isError`; returns the text.
pub async fn fails(client: &Client, tool: &str, args: Value) -> String {
    let result = client.call_tool(tool, &args).await.unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
    assert!(result.is_error, "{tool} {args} should have failed, got {}", result.text());
    result.text()
}

/// Calls a tool that must fail with the error code `code`; returns the text.
pub async fn fails_with(client: &Client, tool: &str, args: Value, code: &str) -> String {
    let text = fails(client, tool, args.clone()).await;
    assert_eq!(code_of(&text), code, "{tool} {args}: {text}");
    text
}

/// The stable code before the first `:` of an error text.
pub fn code_of(text: &str) -> &str {
    text.split_once(':').map_or("", |(code, _)| code)
}

/// Everything in the version store of the root `root`, sorted: the checksum
/// of each object in its folder (`objects/ab/ab12...`), and anything else
/// (a temp file left behind, an object in the wrong folder) by its path
/// under `objects/`, so that comparing with a list of checksums also checks
/// that nothing else is there.
pub fn stored_objects(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root.join(".horace/objects")).unwrap() {
        let entry = entry.unwrap();
        let shard = entry.file_name().into_string().unwrap();
        if !entry.file_type().unwrap().is_dir() {
            found.push(shard);
            continue;
        }
        for object in std::fs::read_dir(entry.path()).unwrap() {
            let name = object.unwrap().file_name().into_string().unwrap();
            found.push(if name.starts_with(&shard) && name.len() == 64 { name } else { format!("{shard}/{name}") });
        }
    }
    found.sort();
    found
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}
