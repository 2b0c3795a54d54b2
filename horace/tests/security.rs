//! Escape attempts, over WebSocket through the client against the real
//! server: every one is refused with a clear error code, nothing outside the
//! storage root is read (its content never reaches the catalog or the
//! version store) or written (the `outside/` folder is byte-for-byte the
//! same afterwards). Run on SQLite and PostgreSQL.

#[macro_use]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Fixture, code_of, fails_with, ok, sha256_hex};
use horace::tools::files::{FileUpdate, Registration, Restored, SearchResults};
use serde_json::{Value, json};

scenarios!(
    escapes_are_refused_before_anything_is_read,
    writes_never_follow_a_path_out_of_the_root,
    symlink_swapped_during_register,
    folder_swapped_during_register,
    symlinks_into_the_version_store_are_reserved,
);

const SECRET: &[u8] = b"the outside secret: must never be read by Horace";

fn register_args(path: &str) -> Value {
    json!({"file_path": path, "metadata": {"owner": "attacker"}})
}

/// Nothing from outside is cataloged or stored.
async fn assert_secret_untouched(f: &Fixture, before: &[(std::path::PathBuf, Vec<u8>)]) {
    assert_eq!(f.outside_snapshot(), before, "the outside folder changed");
    assert!(!f.stored_objects().contains(&sha256_hex(SECRET)), "the outside content reached the version store");
    let all: SearchResults = ok(&f.client, "horace_search_files", json!({"limit": 1000})).await;
    assert!(all.files.iter().all(|x| x.checksum != sha256_hex(SECRET)), "the outside content was cataloged");
}

async fn escapes_are_refused_before_anything_is_read(f: Fixture) {
    let outside = f.outside();
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    std::fs::create_dir(outside.join("dir")).unwrap();
    std::fs::write(outside.join("dir/secret.txt"), SECRET).unwrap();
    let before = f.outside_snapshot();
    let root = f.root();
    let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
    link(Path::new("../outside/secret.txt"), "relative-link.txt");
    link(&outside.join("secret.txt"), "absolute-link.txt");
    link(&outside.join("dir"), "dir-link");
    link(Path::new("../outside/dir"), "relative-dir-link");
    std::fs::create_dir(root.join("sub")).unwrap();
    link(Path::new("../../outside/secret.txt"), "sub/deep-link.txt");
    // An absolute link to a file inside the root still leaves the root
    // handle's namespace: refused too (documented: use relative links).
    f.write("inside.txt", b"inside");
    link(&root.join("inside.txt"), "absolute-inside-link.txt");

    let outside_abs = outside.join("secret.txt").display().to_string();
    let sneaky = format!("{}/../outside/secret.txt", root.display());
    for path in [
        "../outside/secret.txt",
        "sub/../../outside/secret.txt",
        "/etc/passwd",
        outside_abs.as_str(),
        sneaky.as_str(),
        "relative-link.txt",
        "absolute-link.txt",
        "dir-link/secret.txt",
        "relative-dir-link/secret.txt",
        "sub/deep-link.txt",
        "absolute-inside-link.txt",
    ] {
        let text = fails_with(&f.client, "horace_register_file", register_args(path), "PATH_OUTSIDE_ROOT").await;
        assert!(text.contains("storage root"), "{path}: {text}");
    }

    // Not a file.
    std::fs::create_dir_all(root.join("folder/inner")).unwrap();
    let text = fails_with(&f.client, "horace_register_file", register_args("folder"), "NOT_A_REGULAR_FILE").await;
    assert!(text.contains("directory"), "{text}");
    let root_abs = root.display().to_string();
    for path in [".", "./", root_abs.as_str()] {
        fails_with(&f.client, "horace_register_file", register_args(path), "NOT_A_REGULAR_FILE").await;
    }
    // A FIFO would block a naive open forever; it is refused at once.
    rustix::fs::mknodat(rustix::fs::CWD, root.join("pipe"), rustix::fs::FileType::Fifo, 0o644.into(), 0).unwrap();
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        fails_with(&f.client, "horace_register_file", register_args("pipe"), "NOT_A_REGULAR_FILE"),
    )
    .await;
    assert!(refused.is_ok(), "registering a FIFO hung");

    // Paths no file can have.
    let text = fails_with(&f.client, "horace_register_file", register_args("a\u{0}b.txt"), "INVALID_PATH").await;
    assert!(text.contains("NUL"), "{text}");
    fails_with(&f.client, "horace_register_file", register_args(""), "INVALID_PATH").await;
    fails_with(&f.client, "horace_register_file", register_args(&"n".repeat(5000)), "INVALID_PATH").await;
    fails_with(&f.client, "horace_register_file", register_args("inside.txt/child"), "PATH_NOT_FOUND").await;

    // Horace's own folder.
    let stored = sha256_hex(b"inside");
    let _: Registration = ok(&f.client, "horace_register_file", register_args("inside.txt")).await;
    for path in [
        format!(".horace/objects/{}/{stored}", &stored[..2]),
        "./.horace/objects".into(),
        format!("{root_abs}/.horace/x"),
    ] {
        fails_with(&f.client, "horace_register_file", register_args(&path), "PATH_RESERVED").await;
    }

    let all: SearchResults = ok(&f.client, "horace_search_files", json!({})).await;
    assert_eq!(all.total, 1, "only inside.txt was cataloged");
    assert_secret_untouched(&f, &before).await;
}

async fn writes_never_follow_a_path_out_of_the_root(f: Fixture) {
    let outside = f.outside();
    std::fs::create_dir(outside.join("dir")).unwrap();
    std::fs::write(outside.join("dir/report.txt"), SECRET).unwrap();
    std::fs::write(outside.join("victim.txt"), SECRET).unwrap();
    let before = f.outside_snapshot();
    let root = f.root();

    // A cataloged folder swapped for a symlink out after registration.
    f.write("reports/report.txt", b"report v1");
    let report: Registration = ok(&f.client, "horace_register_file", register_args("reports/report.txt")).await;
    std::fs::rename(root.join("reports"), root.join("reports.moved")).unwrap();
    std::os::unix::fs::symlink(outside.join("dir"), root.join("reports")).unwrap();
    let id = report.file_id.clone();
    let text =
        fails_with(&f.client, "horace_restore_version", json!({"file_id": id, "version": 1}), "PATH_OUTSIDE_ROOT")
            .await;
    assert!(text.contains("symlink"), "{text}");
    fails_with(&f.client, "horace_update_file", json!({"file_id": id, "check_for_changes": true}), "PATH_OUTSIDE_ROOT")
        .await;
    let info: Value = ok(&f.client, "horace_get_file_info", json!({"file_id": id})).await;
    assert_eq!((info["version"].as_i64(), info["status"].as_str()), (Some(1), Some("active")), "nothing recorded");

    // The file itself swapped for a symlink out: a check refuses to follow
    // it; a restore replaces the link with the file and writes nothing out.
    f.write("victim.txt", b"victim v1");
    let victim: Registration = ok(&f.client, "horace_register_file", register_args("victim.txt")).await;
    std::fs::remove_file(root.join("victim.txt")).unwrap();
    std::os::unix::fs::symlink("../outside/victim.txt", root.join("victim.txt")).unwrap();
    fails_with(
        &f.client,
        "horace_update_file",
        json!({"file_id": victim.file_id, "check_for_changes": true}),
        "PATH_OUTSIDE_ROOT",
    )
    .await;
    let restored: Restored =
        ok(&f.client, "horace_restore_version", json!({"file_id": victim.file_id, "version": 1})).await;
    assert_eq!(restored.new_version, 2);
    let meta = std::fs::symlink_metadata(root.join("victim.txt")).unwrap();
    assert!(meta.file_type().is_file(), "the symlink was replaced by the restored file");
    assert_eq!(std::fs::read(root.join("victim.txt")).unwrap(), b"victim v1");

    // No temp files were left anywhere outside.
    assert_secret_untouched(&f, &before).await;
    let check: FileUpdate =
        ok(&f.client, "horace_update_file", json!({"file_id": victim.file_id, "check_for_changes": true})).await;
    assert_eq!(check.new_version, None);
}

/// Flips the symlink `link` between `inside` and `outside` (atomically, by
/// renaming a fresh link over it) until stopped; counts the flips.
struct Flipper {
    stop: Arc<AtomicBool>,
    flips: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flipper {
    fn start(link: std::path::PathBuf, inside: std::path::PathBuf, outside: std::path::PathBuf) -> Flipper {
        let stop = Arc::new(AtomicBool::new(false));
        let flips = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), flips.clone());
        let thread = std::thread::spawn(move || {
            let temp = link.with_extension("flip-tmp");
            while !s.load(Ordering::Relaxed) {
                for target in [&outside, &inside] {
                    let _ = std::fs::remove_file(&temp);
                    std::os::unix::fs::symlink(target, &temp).unwrap();
                    std::fs::rename(&temp, &link).unwrap();
                    n.fetch_add(1, Ordering::Relaxed);
                    std::thread::yield_now();
                }
            }
        });
        Flipper { stop, flips, thread: Some(thread) }
    }
}

impl Drop for Flipper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// Registers `path` again and again while a [`Flipper`] swaps a symlink on
/// it, until both outcomes have happened several times: every success has
/// the inside content, every refusal says PATH_OUTSIDE_ROOT, and the outside
/// content is never read.
async fn register_during_swaps(f: &Fixture, path: &str, flipper: Flipper, inside: &[u8]) {
    let before = f.outside_snapshot();
    let (mut accepted, mut refused, mut attempts) = (0u32, 0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(60);
    while (accepted < 10 || refused < 10) && Instant::now() < deadline {
        attempts += 1;
        let result = f.client.call_tool("horace_register_file", register_args(path)).await.unwrap();
        let text = result.text();
        if result.is_error {
            // The open raced a rename: resolved through the outside target
            // (refused), or caught the link mid-swap (openat2 retries, then
            // cap-std's own walk).
            assert!(matches!(code_of(&text), "PATH_OUTSIDE_ROOT" | "PATH_NOT_FOUND"), "unexpected refusal: {text}");
            refused += u32::from(code_of(&text) == "PATH_OUTSIDE_ROOT");
        } else {
            let reg: Registration = serde_json::from_value(result.structured_content.unwrap()).unwrap();
            assert_eq!(reg.file.checksum, sha256_hex(inside), "a registration read the outside file");
            accepted += 1;
        }
    }
    let flips = flipper.flips.load(Ordering::Relaxed);
    drop(flipper);
    eprintln!("  {attempts} registrations during {flips} swaps: {accepted} accepted, {refused} refused");
    assert!(accepted >= 10 && refused >= 10, "the race was not provoked: {accepted} accepted, {refused} refused");
    assert_secret_untouched(f, &before).await;
    let all: SearchResults = ok(&f.client, "horace_search_files", json!({})).await;
    assert_eq!(all.total, 1, "one path, one file");
}

async fn symlink_swapped_during_register(f: Fixture) {
    std::fs::write(f.outside().join("secret.bin"), SECRET).unwrap();
    let inside = b"inside content".to_vec();
    f.write("race/inside.bin", &inside);
    let link = f.root().join("race/current.bin");
    std::os::unix::fs::symlink("inside.bin", &link).unwrap();
    let flipper = Flipper::start(link, "inside.bin".into(), "../../outside/secret.bin".into());
    register_during_swaps(&f, "race/current.bin", flipper, &inside).await;
}

async fn folder_swapped_during_register(f: Fixture) {
    std::fs::create_dir(f.outside().join("dir")).unwrap();
    std::fs::write(f.outside().join("dir/data.bin"), SECRET).unwrap();
    let inside = b"inside folder content".to_vec();
    f.write("race/real/data.bin", &inside);
    let link = f.root().join("race/dir");
    std::os::unix::fs::symlink("real", &link).unwrap();
    let flipper = Flipper::start(link, "real".into(), f.outside().join("dir"));
    register_during_swaps(&f, "race/dir/data.bin", flipper, &inside).await;
}

/// `.horace/` is out of reach through symlinks too, which the lexical check
/// cannot see: a folder link into it, a file link to a stored object, and a
/// cataloged folder swapped for a link into it before a restore.
async fn symlinks_into_the_version_store_are_reserved(f: Fixture) {
    let root = f.root();
    let content = common::noise(200 << 10, 41);
    f.write("work/big.bin", &content);
    let reg: Registration = ok(&f.client, "horace_register_file", register_args("work/big.bin")).await;
    let checksum = reg.file.checksum.clone();
    let object = f.object_path(&checksum);
    assert!(object.is_file(), "the content is a file of the store");
    std::os::unix::fs::symlink(".horace/objects", root.join("h")).unwrap();
    std::os::unix::fs::symlink(format!(".horace/objects/{}/{checksum}", &checksum[..2]), root.join("o.bin")).unwrap();
    for path in [format!("h/{}/{checksum}", &checksum[..2]), "o.bin".to_owned(), format!("{}/o.bin", root.display())] {
        let text = fails_with(&f.client, "horace_register_file", register_args(&path), "PATH_RESERVED").await;
        assert!(text.contains(".horace/"), "{text}");
    }

    // A cataloged file swapped for a link to the object: a check refuses to
    // read it; a restore replaces the link and leaves the object alone.
    f.write("x.txt", b"x v1");
    let x: Registration = ok(&f.client, "horace_register_file", register_args("x.txt")).await;
    std::fs::remove_file(root.join("x.txt")).unwrap();
    std::os::unix::fs::symlink(format!(".horace/objects/{}/{checksum}", &checksum[..2]), root.join("x.txt")).unwrap();
    let check = json!({"file_id": x.file_id, "check_for_changes": true});
    fails_with(&f.client, "horace_update_file", check, "PATH_RESERVED").await;
    let restored: Restored = ok(&f.client, "horace_restore_version", json!({"file_id": x.file_id, "version": 1})).await;
    assert_eq!((restored.new_version, restored.saved_version), (2, None));
    assert!(std::fs::symlink_metadata(root.join("x.txt")).unwrap().file_type().is_file(), "the link was replaced");
    assert_eq!(std::fs::read(root.join("x.txt")).unwrap(), b"x v1");

    // The cataloged folder swapped for a (relative) link to the object's
    // folder: a restore would write there; refused before anything is.
    let shard = root.join(".horace/objects").join(&checksum[..2]);
    std::fs::rename(root.join("work"), root.join("work.moved")).unwrap();
    std::os::unix::fs::symlink(format!(".horace/objects/{}", &checksum[..2]), root.join("work")).unwrap();
    let id = reg.file_id.clone();
    fails_with(&f.client, "horace_restore_version", json!({"file_id": id, "version": 1}), "PATH_RESERVED").await;
    let leftovers: Vec<_> = std::fs::read_dir(&shard).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from(&checksum)], "nothing was written into the store's folder");
    assert_eq!(common::sha256_file(&object), checksum, "the stored object is intact");
    let all: SearchResults = ok(&f.client, "horace_search_files", json!({})).await;
    assert_eq!(all.total, 2, "only work/big.bin and x.txt were cataloged");
    let info: Value = ok(&f.client, "horace_get_file_info", json!({"file_id": id})).await;
    assert_eq!(info["version"].as_i64(), Some(1), "nothing recorded");
}
