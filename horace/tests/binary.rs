//! The `horace` binary itself: zero set-up, `--list-tools` without storage,
//! several replicas on one PostgreSQL and one storage root, and a 1 GiB
//! restore that streams instead of holding the file in memory.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{ok, sha256_file};
use horace::tools::files::{FileInfo, Registration, RegistrationStatus, Restored};
use mcp_runtime::client::Client;
use mcp_tests::{ServerProcess, TestPostgres};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary started in `cwd` with no Horace variables set; killed on drop.
struct InDir {
    _child: Child,
    url: String,
}

async fn start_in(cwd: &Path) -> InDir {
    start(Command::new(env!("CARGO_BIN_EXE_horace")), cwd).await
}

/// Starts `command` (the binary, or a shell that execs it) in `cwd` with no
/// Horace variables but those `command` sets; killed on drop.
async fn start(mut command: Command, cwd: &Path) -> InDir {
    command
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env("MCP_HOST", "127.0.0.1")
        .env("MCP_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for var in ["HORACE_DATA_DIR", "HORACE_STORAGE_ROOT"] {
        if !command.as_std().get_envs().any(|(k, _)| k == var) {
            command.env_remove(var);
        }
    }
    let mut child = command.spawn().expect("the horace binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("horace prints its address within a minute")
        .unwrap()
        .expect("horace printed a line before exiting");
    let addr = line.strip_prefix("listening on ws://").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    InDir { url: format!("ws://{addr}/"), _child: child }
}

#[tokio::test]
async fn runs_with_no_setup() {
    let cwd = tempfile::tempdir().unwrap();
    let horace = start_in(cwd.path()).await;
    let root = cwd.path().join("horace-data/files");
    assert!(root.is_dir(), "the default storage root is ./horace-data/files");
    assert!(cwd.path().join("horace-data/horace.sqlite3").is_file(), "the default catalog is SQLite in ./horace-data");
    std::fs::write(root.join("hello.txt"), b"hello").unwrap();
    let client = Client::connect(&horace.url).await.unwrap();
    let reg: Registration =
        ok(&client, "horace_register_file", json!({"file_path": "hello.txt", "metadata": {"owner": "me"}})).await;
    assert_eq!(reg.file.file_path, format!("{}/hello.txt", std::fs::canonicalize(&root).unwrap().display()));
    let again: Registration =
        ok(&client, "horace_register_file", json!({"file_path": reg.file.file_path, "metadata": {}})).await;
    assert_eq!((again.status, again.file_id), (RegistrationStatus::Duplicate, reg.file_id));
}

/// A write that fails in the middle of copying a large file into the
/// version store (here: the file size limit, RLIMIT_FSIZE, which makes
/// write(2) fail with EFBIG as a full disk fails with ENOSPC) ends the call
/// with IO_ERROR, leaves no temp object behind, and the server still serves.
/// The limit is set by `sh` (`ulimit -f`, with SIGXFSZ ignored so that the
/// write fails instead of killing the process), which then execs the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_copy_into_the_store_ends_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("files");
    std::fs::create_dir(&root).unwrap();
    // Far past the limit (2 MiB or 4 MiB, as `sh` counts blocks), and large
    // enough to take the pipelined copy.
    std::fs::write(root.join("big.bin"), common::noise(16 << 20, 9)).unwrap();
    let mut command = Command::new("sh");
    command
        .args(["-c", "trap '' XFSZ; ulimit -f 4096 && exec \"$0\"", env!("CARGO_BIN_EXE_horace")])
        .env("HORACE_STORAGE_ROOT", &root)
        .env("HORACE_DATA_DIR", dir.path().join("data"));
    let horace = start(command, dir.path()).await;
    // Bounded, so that a regression (the copy hanging) fails the test.
    let client = Client::builder(&horace.url).call_timeout(Duration::from_secs(60)).connect().await.unwrap();
    let text = common::fails_with(
        &client,
        "horace_register_file",
        json!({"file_path": "big.bin", "metadata": {}}),
        "IO_ERROR",
    )
    .await;
    assert!(text.contains("cannot keep a copy of") && text.contains("big.bin"), "{text}");
    assert_eq!(common::stored_objects(&root), Vec::<String>::new(), "no temp object is left in the store");
    std::fs::write(root.join("small.txt"), b"still serving").unwrap();
    let reg: Registration =
        ok(&client, "horace_register_file", json!({"file_path": "small.txt", "metadata": {}})).await;
    assert_eq!(reg.status, RegistrationStatus::Registered);
    let search: horace::tools::files::SearchResults = ok(&client, "horace_search_files", json!({})).await;
    assert_eq!(search.total, 1, "the failed registration cataloged nothing");
}

#[tokio::test]
async fn lists_tools_without_storage() {
    let cwd = tempfile::tempdir().unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_horace")).arg("--list-tools").current_dir(cwd.path()).output().await.unwrap();
    assert!(out.status.success());
    let catalog = String::from_utf8(out.stdout).unwrap();
    assert!(catalog.contains("## `horace_register_file`") && catalog.contains("7 tools"), "{catalog}");
    assert!(!cwd.path().join("horace-data").exists(), "listing tools created no folder");
}

#[tokio::test]
async fn refuses_a_database_url_that_is_not_postgres() {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_horace"))
        .current_dir(cwd.path())
        .env("DATABASE_URL", "mysql://localhost/horace")
        .env("MCP_PORT", "0")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL must be a postgres://"), "{stderr}");
}

#[tokio::test]
async fn refuses_a_catalog_inside_the_storage_root() {
    let cwd = tempfile::tempdir().unwrap();
    // Directly, and through a symlink to a folder in the root.
    std::fs::create_dir_all(cwd.path().join("store/sub")).unwrap();
    std::os::unix::fs::symlink("store/sub", cwd.path().join("link")).unwrap();
    for data_dir in ["store/db", "link/db"] {
        let out = Command::new(env!("CARGO_BIN_EXE_horace"))
            .current_dir(cwd.path())
            .env_remove("DATABASE_URL")
            .env("HORACE_STORAGE_ROOT", "store")
            .env("HORACE_DATA_DIR", data_dir)
            .env("MCP_PORT", "0")
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{data_dir}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let root = cwd.path().join("store").display().to_string();
        assert!(stderr.contains("is inside the storage root"), "{stderr}");
        assert!(stderr.contains(&format!("{data_dir}/horace.sqlite3")) && stderr.contains(&root), "{stderr}");
        assert!(!cwd.path().join(data_dir).exists(), "{data_dir}: no catalog was created");
    }
}

/// Eight registrations released together, four through each replica.
async fn register_on_both(urls: &[String; 2], path: &str) -> Vec<Registration> {
    let mut clients = Vec::new();
    for i in 0..8 {
        clients.push(Client::connect(&urls[i % 2]).await.unwrap());
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let barrier = barrier.clone();
            let path = path.to_owned();
            tokio::spawn(async move {
                barrier.wait().await;
                ok::<Registration>(&client, "horace_register_file", json!({"file_path": path, "metadata": {}})).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_on_one_postgres_register_a_path_once() {
    let url = tokio::task::spawn_blocking(|| TestPostgres::shared().fresh_database("replicas")).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().display().to_string();
    let replicas = tokio::task::spawn_blocking(move || {
        let envs = [("DATABASE_URL", url.as_str()), ("HORACE_STORAGE_ROOT", root_path.as_str())];
        [ServerProcess::start("horace", &envs), ServerProcess::start("horace", &envs)]
    })
    .await
    .unwrap();
    let urls = [replicas[0].url(), replicas[1].url()];
    let content = common::noise(4 << 20, 3);
    std::fs::write(root.path().join("shared.bin"), &content).unwrap();

    let first = register_on_both(&urls, "shared.bin").await;
    let ids: BTreeSet<&str> = first.iter().map(|r| r.file_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "two replicas, one path, one file id: {ids:?}");
    let statuses: Vec<RegistrationStatus> = first.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == RegistrationStatus::Registered).count(), 1, "{statuses:?}");

    // Changed content: exactly one of them records version 2.
    std::fs::write(root.path().join("shared.bin"), &content[..content.len() / 2]).unwrap();
    let second = register_on_both(&urls, "shared.bin").await;
    let new_versions = second.iter().filter(|r| r.status == RegistrationStatus::NewVersion).count();
    assert_eq!(new_versions, 1);
    assert!(second.iter().all(|r| r.file.version == 2 && r.file_id == first[0].file_id));
    let client = Client::connect(&urls[1]).await.unwrap();
    let details: FileInfo =
        ok(&client, "horace_get_file_info", json!({"file_id": first[0].file_id, "include_versions": true})).await;
    assert_eq!(details.version_count, 2);
    let mut expected = vec![common::sha256_hex(&content), common::sha256_hex(&content[..content.len() / 2])];
    expected.sort();
    assert_eq!(common::stored_objects(root.path()), expected, "one object per distinct content, no temp files left");
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/PID/status");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_restore_streams() {
    const GIB: u64 = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("files");
    std::fs::create_dir(&root).unwrap();
    let path = root.join("big.bin");
    {
        // Sparse, with data at a few places, so writing it costs nothing.
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::File::create(&path).unwrap();
        file.set_len(GIB).unwrap();
        for (i, offset) in [0, GIB / 3, GIB / 2 + 12345, GIB - 4096].into_iter().enumerate() {
            file.seek(SeekFrom::Start(offset)).unwrap();
            file.write_all(&common::noise(4096, i as u64)).unwrap();
        }
    }
    let expected = sha256_file(&path);
    let root_s = root.display().to_string();
    let data_s = dir.path().join("data").display().to_string();
    let server = tokio::task::spawn_blocking(move || {
        ServerProcess::start("horace", &[("HORACE_STORAGE_ROOT", &root_s), ("HORACE_DATA_DIR", &data_s)])
    })
    .await
    .unwrap();
    let client = Client::builder(&server.url()).call_timeout(Duration::from_secs(300)).connect().await.unwrap();
    let reg: Registration = ok(&client, "horace_register_file", json!({"file_path": "big.bin", "metadata": {}})).await;
    assert_eq!((reg.file.size as u64, reg.file.checksum.as_str()), (GIB, expected.as_str()));
    std::fs::write(&path, b"overwritten").unwrap();
    let restored: Restored = ok(&client, "horace_restore_version", json!({"file_id": reg.file_id, "version": 1})).await;
    assert_eq!(restored.file.checksum, expected);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), GIB);
    assert_eq!(sha256_file(&path), expected, "the restored file is version 1 byte for byte");
    let peak = peak_rss(server.pid().unwrap());
    eprintln!("horace peak RSS over a 1 GiB register and restore: {} MiB", peak >> 20);
    assert!(peak < 128 << 20, "horace held {} MiB at its peak: the 1 GiB file went through memory", peak >> 20);
}
