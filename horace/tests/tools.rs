//! Every Horace tool end to end over WebSocket through the runtime's client,
//! on real files in a temporary storage root. The scenarios are written once
//! and run on SQLite and on a private PostgreSQL.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::{Fixture, code_of, fails, fails_with, noise, ok, sha256_file, sha256_hex};
use horace::model::{FileRecord, FileStatus, VersionReason};
use horace::tools::collections::{CollectionList, CollectionResult};
use horace::tools::files::{
    ContentState, FileInfo, FileUpdate, Registration, RegistrationStatus, Restored, SearchResults,
};
use serde_json::{Value, json};

scenarios!(
    catalog_matches_the_seed,
    register_records_the_facts,
    duplicates_and_change_detection,
    eight_concurrent_registrations_give_one_file_id,
    search_filters_order_and_totals,
    restore_round_trip_byte_for_byte,
    restore_keeps_an_uncataloged_edit,
    collections_refuse_unknown_ids,
    bad_inputs_are_refused_and_change_nothing,
    small_content_lives_in_the_catalog,
    older_stores_and_crash_leftovers,
);

async fn register(f: &Fixture, path: &str, metadata: Value) -> Registration {
    ok(&f.client, "horace_register_file", json!({"file_path": path, "metadata": metadata})).await
}

async fn search(f: &Fixture, args: Value) -> SearchResults {
    ok(&f.client, "horace_search_files", args).await
}

async fn info(f: &Fixture, id: &str) -> FileInfo {
    ok(&f.client, "horace_get_file_info", json!({"file_id": id, "include_versions": true})).await
}

async fn catalog_matches_the_seed(f: Fixture) {
    let tools = f.client.list_tools().await.unwrap();
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "horace_create_collection",
            "horace_get_file_info",
            "horace_list_collections",
            "horace_register_file",
            "horace_restore_version",
            "horace_search_files",
            "horace_update_file",
        ])
    );
    let tool = |name: &str| tools.iter().find(|t| t.name == name).unwrap();
    let required = |name: &str| {
        let mut r: Vec<String> =
            serde_json::from_value(tool(name).input_schema["required"].clone()).unwrap_or_default();
        r.sort();
        r
    };
    // Seed 004's required lists and descriptions.
    assert_eq!(required("horace_register_file"), ["file_path", "metadata"]);
    assert_eq!(required("horace_get_file_info"), ["file_id"]);
    assert_eq!(required("horace_create_collection"), ["name"]);
    assert_eq!(required("horace_update_file"), ["file_id"]);
    assert_eq!(required("horace_restore_version"), ["file_id", "version"]);
    assert!(required("horace_search_files").is_empty());
    assert!(required("horace_list_collections").is_empty());
    for (name, description) in [
        ("horace_register_file", "Register a file with Horace catalog"),
        ("horace_search_files", "Search file catalog by metadata"),
        ("horace_get_file_info", "Get detailed metadata for specific file"),
        ("horace_create_collection", "Create or update a file collection"),
        ("horace_list_collections", "List all collections"),
        ("horace_update_file", "Update file metadata or trigger re-versioning"),
        ("horace_restore_version", "Restore a file to a previous version"),
    ] {
        let text = tool(name).description.clone().unwrap_or_default();
        assert!(text.starts_with(description), "{name}: {text:?}");
    }
    let search = &tool("horace_search_files").input_schema["properties"];
    for p in [
        "tags",
        "owner",
        "created_after",
        "created_before",
        "file_type",
        "min_size",
        "max_size",
        "collection",
        "status",
        "limit",
        "offset",
    ] {
        assert!(search.get(p).is_some(), "horace_search_files lacks {p}");
    }
    assert_eq!(search["limit"]["default"], 20);
    assert_eq!(search["status"]["enum"], json!(["active", "missing"]));
    let metadata = &tool("horace_register_file").input_schema["properties"]["metadata"]["properties"];
    let keys: BTreeSet<&str> = metadata.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["collection", "correlation_id", "owner", "purpose", "tags"]));
    assert_eq!(tool("horace_get_file_info").input_schema["properties"]["include_versions"]["default"], false);
    assert_eq!(tool("horace_restore_version").annotations.as_ref().unwrap()["destructiveHint"], true);
    // Where absolute paths point: the seeds' root by name, this server's in
    // its instructions.
    let file_path = tool("horace_register_file").input_schema["properties"]["file_path"]["description"].clone();
    let file_path = file_path.as_str().unwrap_or_default();
    assert!(file_path.contains("inside the storage root (the seeds' /mnt/irina_storage"), "{file_path}");
    let info = f.client.server_info().unwrap();
    let instructions = info.instructions.unwrap_or_default();
    assert!(instructions.contains(&format!("the storage root, {}", f.root().display())), "{instructions}");
}

async fn register_records_the_facts(f: Fixture) {
    // PNG bytes under a .txt name: the type comes from the content.
    let png = [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".as_slice(), &noise(3000, 1)].concat();
    f.write("images/shot.txt", &png);
    let json_text = br#"{"answer": 42}"#;
    f.write("data/answer.json", json_text);
    let before = chrono::Utc::now();
    let reg = register(
        &f,
        &f.abs("images/shot.txt"),
        json!({"owner": "fiedler", "purpose": "screenshot", "tags": ["ui", " test ", "ui"], "correlation_id": "c-1"}),
    )
    .await;
    assert_eq!(reg.status, RegistrationStatus::Registered);
    let file = &reg.file;
    assert_eq!(file.file_id, reg.file_id);
    assert_eq!(file.file_path, f.abs("images/shot.txt"));
    assert_eq!(file.relative_path, "images/shot.txt");
    assert_eq!(file.file_name, "shot.txt");
    assert_eq!(file.file_type.as_deref(), Some("txt"));
    assert_eq!(file.mime_type, "image/png");
    assert_eq!(file.size, png.len() as i64);
    assert_eq!(file.checksum, sha256_hex(&png));
    assert_eq!(file.version, 1);
    assert_eq!(file.status, FileStatus::Active);
    assert_eq!(file.owner.as_deref(), Some("fiedler"));
    assert_eq!(file.purpose.as_deref(), Some("screenshot"));
    assert_eq!(file.tags, ["ui", "test"], "tags are trimmed and deduplicated");
    assert_eq!(file.correlation_id.as_deref(), Some("c-1"));
    let created: chrono::DateTime<chrono::Utc> = file.created_at.parse().unwrap();
    assert!(created >= before - chrono::Duration::seconds(1), "created_at {created} is a real timestamp");
    // Small content is kept in the catalog under its checksum, not as a file.
    assert_eq!(f.stored().await, std::slice::from_ref(&file.checksum));
    assert!(f.stored_objects().is_empty(), "no file for small content: {:?}", f.stored_objects());
    assert_eq!(f.horace.catalog().inline_content(&file.checksum).await.unwrap().as_deref(), Some(&png[..]));

    // Relative, and MIME from the extension when the content has no signature.
    let reg = register(&f, "data/answer.json", json!({})).await;
    assert_eq!(reg.file.mime_type, "application/json");
    assert_eq!(reg.file.owner, None);
    assert!(reg.file.tags.is_empty());

    // The same content at another path is another file, stored once.
    f.write("copy/answer.json", json_text);
    let copy = register(&f, "copy/answer.json", json!({})).await;
    assert_ne!(copy.file_id, reg.file_id);
    assert_eq!(f.stored().await.len(), 2, "identical content is stored once");

    let details = info(&f, &reg.file_id).await;
    assert_eq!(details.file, reg.file);
    assert_eq!(details.version_count, 1);
    let versions = details.versions.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].reason, VersionReason::Registered);
    assert_eq!(versions[0].checksum, sha256_hex(json_text));
    let brief: FileInfo = ok(&f.client, "horace_get_file_info", json!({"file_id": reg.file_id})).await;
    assert!(brief.versions.is_none(), "versions only when asked for");

    // A file inside a symlinked folder that stays inside the root is fine.
    std::os::unix::fs::symlink("data", f.root().join("data-link")).unwrap();
    let linked = register(&f, "data-link/answer.json", json!({})).await;
    assert_eq!(linked.file.checksum, sha256_hex(json_text));

    // An empty file.
    f.write("empty", b"");
    let empty = register(&f, "empty", json!({})).await;
    assert_eq!((empty.file.size, empty.file.mime_type.as_str()), (0, "application/x-empty"));
}

async fn duplicates_and_change_detection(f: Fixture) {
    f.write("notes/plan.md", b"version one");
    let first = register(&f, "notes/plan.md", json!({"owner": "a", "tags": ["x"]})).await;

    // Same content, any spelling of the path: the existing file, unchanged.
    for spelling in ["notes/plan.md", "./notes//plan.md", &f.abs("notes/plan.md")] {
        let again = register(&f, spelling, json!({"owner": "someone else"})).await;
        assert_eq!(again.status, RegistrationStatus::Duplicate, "{spelling}");
        assert_eq!(again.file_id, first.file_id);
        assert!(again.message.contains("already cataloged"), "{}", again.message);
        assert_eq!(again.file, first.file, "a duplicate changes nothing");
    }

    // Changed content at the registered path: version 2, metadata merged.
    f.write("notes/plan.md", b"version two");
    let second = register(&f, "notes/plan.md", json!({"purpose": "roadmap"})).await;
    assert_eq!(second.status, RegistrationStatus::NewVersion);
    assert_eq!((second.file_id.as_str(), second.file.version), (first.file_id.as_str(), 2));
    assert_eq!(second.file.checksum, sha256_hex(b"version two"));
    assert_eq!((second.file.owner.as_deref(), second.file.purpose.as_deref()), (Some("a"), Some("roadmap")));

    let update = |args: Value| {
        let mut args = args;
        args["file_id"] = json!(first.file_id);
        args
    };
    // Unchanged content.
    let checked: FileUpdate = ok(&f.client, "horace_update_file", update(json!({"check_for_changes": true}))).await;
    assert_eq!(
        (checked.content, checked.new_version, checked.metadata_updated),
        (ContentState::Unchanged, None, false)
    );
    assert_eq!(checked.file.version, 2);

    // Changed content, and metadata in the same call: present fields
    // replace, an empty string clears, absent fields stay.
    f.write("notes/plan.md", b"version three, longer");
    let changed: FileUpdate = ok(
        &f.client,
        "horace_update_file",
        update(json!({"check_for_changes": true, "metadata": {"owner": "", "tags": ["y", "z"]}})),
    )
    .await;
    assert_eq!((changed.content, changed.new_version), (ContentState::Changed, Some(3)));
    assert!(changed.metadata_updated);
    assert_eq!(changed.file.owner, None);
    assert_eq!(changed.file.purpose.as_deref(), Some("roadmap"));
    assert_eq!(changed.file.tags, ["y", "z"]);
    assert_eq!(changed.file.size, 21);

    // Metadata only.
    let meta: FileUpdate =
        ok(&f.client, "horace_update_file", update(json!({"metadata": {"collection": "plans"}}))).await;
    assert_eq!((meta.content, meta.metadata_updated), (ContentState::NotChecked, true));
    let details = info(&f, &first.file_id).await;
    assert_eq!(details.collections, ["plans"]);

    // The file is gone: marked missing, found by status, and back to active
    // when it reappears.
    std::fs::remove_file(f.root().join("notes/plan.md")).unwrap();
    let gone: FileUpdate = ok(&f.client, "horace_update_file", update(json!({"check_for_changes": true}))).await;
    assert_eq!((gone.content, gone.file.status), (ContentState::Missing, FileStatus::Missing));
    let missing = search(&f, json!({"status": "missing"})).await;
    assert_eq!(missing.total, 1);
    assert_eq!(missing.files[0].file_id, first.file_id);
    f.write("notes/plan.md", b"version three, longer");
    let back: FileUpdate = ok(&f.client, "horace_update_file", update(json!({"check_for_changes": true}))).await;
    assert_eq!((back.content, back.file.status, back.file.version), (ContentState::Unchanged, FileStatus::Active, 3));

    let versions = info(&f, &first.file_id).await.versions.unwrap();
    let summary: Vec<(i64, VersionReason)> = versions.iter().map(|v| (v.version, v.reason)).collect();
    assert_eq!(summary, [(1, VersionReason::Registered), (2, VersionReason::Changed), (3, VersionReason::Changed)]);
}

async fn eight_concurrent_registrations_give_one_file_id(f: Fixture) {
    // Eight clients on eight connections, released together.
    let content = noise(2 << 20, 8);
    f.write("shared/big.bin", &content);
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(mcp_runtime::client::Client::connect(&f.url).await.unwrap());
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for client in clients {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            ok::<Registration>(
                &client,
                "horace_register_file",
                json!({"file_path": "shared/big.bin", "metadata": {"owner": "race"}}),
            )
            .await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let ids: BTreeSet<&str> = results.iter().map(|r| r.file_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "one path, one file id: {ids:?}");
    let registered = results.iter().filter(|r| r.status == RegistrationStatus::Registered).count();
    let duplicates = results.iter().filter(|r| r.status == RegistrationStatus::Duplicate).count();
    assert_eq!((registered, duplicates), (1, 7));
    let details = info(&f, results[0].file_id.as_str()).await;
    assert_eq!(details.version_count, 1);
    assert_eq!(details.file.checksum, sha256_hex(&content));
    assert_eq!(search(&f, json!({})).await.total, 1);
    assert_eq!(f.stored_objects(), [sha256_hex(&content)], "one object, no temp files left");
}

async fn search_filters_order_and_totals(f: Fixture) {
    let mut ids = Vec::new();
    for i in 0..12 {
        let (name, body): (String, Vec<u8>) = match i % 3 {
            0 => (format!("docs/r{i}.pdf"), [b"%PDF-1.4\n".as_slice(), &noise(100 * (i + 1), i as u64)].concat()),
            1 => (format!("img/p{i}.png"), [b"\x89PNG\r\n\x1a\n".as_slice(), &noise(100 * (i + 1), i as u64)].concat()),
            _ => (format!("txt/n{i}.txt"), vec![b'a'; 100 * (i + 1)]),
        };
        f.write(&name, &body);
        let tags: Vec<&str> = if i % 2 == 0 { vec!["even", "all"] } else { vec!["odd", "all"] };
        let owner = if i < 6 { "alice" } else { "bob" };
        let reg = register(&f, &name, json!({"owner": owner, "tags": tags})).await;
        ids.push(reg.file_id);
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let all = search(&f, json!({"limit": 100})).await;
    assert_eq!(all.total, 12);
    assert_eq!(all.files.iter().map(|x| x.file_id.clone()).collect::<Vec<_>>(), newest_first);
    assert!(!all.has_more);

    // Pages follow the same order, with the total beside each.
    let p1 = search(&f, json!({"limit": 5})).await;
    let p2 = search(&f, json!({"limit": 5, "offset": 5})).await;
    let p3 = search(&f, json!({"limit": 5, "offset": 10})).await;
    let paged: Vec<String> = [p1.files, p2.files, p3.files].concat().into_iter().map(|x| x.file_id).collect();
    assert_eq!(paged, newest_first);
    assert!(p1.has_more && p2.has_more && !p3.has_more);
    assert_eq!((p1.total, p3.total), (12, 12));

    let count = |args: Value| {
        let f = &f;
        async move { search(f, args).await.total }
    };
    assert_eq!(count(json!({"tags": ["even"]})).await, 6);
    assert_eq!(count(json!({"tags": ["even", "all"]})).await, 6);
    assert_eq!(count(json!({"tags": ["even", "odd"]})).await, 0, "all tags must match");
    assert_eq!(count(json!({"owner": "alice"})).await, 6);
    assert_eq!(count(json!({"owner": "alice", "tags": ["odd"]})).await, 3);
    assert_eq!(count(json!({"file_type": "pdf"})).await, 4);
    assert_eq!(count(json!({"file_type": ".PDF"})).await, 4);
    assert_eq!(count(json!({"file_type": "application/pdf"})).await, 4);
    assert_eq!(count(json!({"file_type": "image/*"})).await, 4);
    assert_eq!(count(json!({"file_type": "text/plain"})).await, 4);
    assert_eq!(count(json!({"min_size": 600})).await, 7);
    assert_eq!(count(json!({"min_size": 300, "max_size": 508})).await, 3);
    assert_eq!(count(json!({"status": "active"})).await, 12);
    assert_eq!(count(json!({"status": "missing"})).await, 0);
    let middle = info(&f, &ids[5]).await.file.created_at;
    assert_eq!(count(json!({"created_before": middle})).await, 5);
    assert_eq!(count(json!({"created_after": middle})).await, 6);
    assert_eq!(count(json!({"created_after": "2000-01-01"})).await, 12);
    assert_eq!(count(json!({"created_before": "2000-01-01T00:00:00Z"})).await, 0);
    let _: CollectionResult =
        ok(&f.client, "horace_create_collection", json!({"name": "firsts", "file_ids": [ids[0], ids[1], ids[2]]}))
            .await;
    assert_eq!(count(json!({"collection": "firsts"})).await, 3);
    assert_eq!(count(json!({"collection": "firsts", "tags": ["odd"]})).await, 1);
    assert_eq!(count(json!({"collection": "nobody"})).await, 0);
    // Values that look like SQL are only ever values.
    assert_eq!(count(json!({"owner": "alice' OR '1'='1"})).await, 0);
    assert_eq!(count(json!({"tags": ["x'); DROP TABLE files; --"]})).await, 0);
    assert_eq!(count(json!({})).await, 12);
}

async fn restore_round_trip_byte_for_byte(f: Fixture) {
    // Three versions, each larger than one read chunk.
    let v1 = noise(3 << 20, 11);
    let v2 = noise((5 << 20) + 17, 12);
    let v3 = b"short".to_vec();
    let path = f.write("work/model.bin", &v1);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let reg = register(&f, "work/model.bin", json!({"owner": "trainer"})).await;
    let id = reg.file_id.clone();
    std::fs::write(&path, &v2).unwrap();
    let _: FileUpdate = ok(&f.client, "horace_update_file", json!({"file_id": id, "check_for_changes": true})).await;
    std::fs::write(&path, &v3).unwrap();
    let _: Registration = register(&f, "work/model.bin", json!({})).await;

    let restored: Restored = ok(&f.client, "horace_restore_version", json!({"file_id": id, "version": 1})).await;
    assert_eq!((restored.restored_version, restored.new_version), (1, 4));
    assert!(std::fs::read(&path).unwrap() == v1, "version 1 comes back byte for byte");
    assert_eq!(restored.file.checksum, sha256_hex(&v1));
    assert_eq!(restored.file.size, v1.len() as i64);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the file keeps its permissions");

    let restored: Restored = ok(&f.client, "horace_restore_version", json!({"file_id": id, "version": 2})).await;
    assert_eq!(restored.new_version, 5);
    assert!(std::fs::read(&path).unwrap() == v2);
    assert_eq!(sha256_file(&path), sha256_hex(&v2));

    // History is appended to, never rewritten.
    let versions = info(&f, &id).await.versions.unwrap();
    let summary: Vec<(i64, VersionReason, Option<i64>, String)> =
        versions.iter().map(|v| (v.version, v.reason, v.restored_from, v.checksum.clone())).collect();
    assert_eq!(
        summary,
        [
            (1, VersionReason::Registered, None, sha256_hex(&v1)),
            (2, VersionReason::Changed, None, sha256_hex(&v2)),
            (3, VersionReason::Changed, None, sha256_hex(&v3)),
            (4, VersionReason::Restored, Some(1), sha256_hex(&v1)),
            (5, VersionReason::Restored, Some(2), sha256_hex(&v2)),
        ]
    );
    // A check right after a restore finds the restored content.
    let check: FileUpdate =
        ok(&f.client, "horace_update_file", json!({"file_id": id, "check_for_changes": true})).await;
    assert_eq!(check.content, ContentState::Unchanged);

    // A deleted file, folder and all, is written back.
    std::fs::remove_dir_all(f.root().join("work")).unwrap();
    let back: Restored = ok(&f.client, "horace_restore_version", json!({"file_id": id, "version": 3})).await;
    assert_eq!(std::fs::read(&path).unwrap(), v3);
    assert_eq!(back.file.status, FileStatus::Active);

    // No temp files are left beside the target or in the store.
    let leftovers: Vec<_> = std::fs::read_dir(f.root().join("work")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["model.bin"]);
    let mut expected = vec![sha256_hex(&v1), sha256_hex(&v2)];
    expected.sort();
    assert_eq!(f.stored_objects(), expected, "large content as files, nothing else");
    assert_eq!(f.horace.catalog().inline_checksums().await.unwrap(), [sha256_hex(&v3)], "small content inline");

    // A directory where the file was: refused, the directory left alone.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep"), b"keep").unwrap();
    let text =
        fails_with(&f.client, "horace_restore_version", json!({"file_id": id, "version": 1}), "NOT_A_REGULAR_FILE")
            .await;
    assert!(text.contains("directory"), "{text}");
    assert_eq!(std::fs::read(path.join("keep")).unwrap(), b"keep");
    assert_eq!(info(&f, &id).await.version_count, 6, "the failed restore recorded nothing");

    // A corrupt stored object is refused and nothing is written.
    std::fs::remove_dir_all(&path).unwrap();
    std::fs::write(&path, b"current").unwrap();
    let object = f.object_path(&sha256_hex(&v2));
    std::fs::set_permissions(&object, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&object, b"bit rot").unwrap();
    let text = fails_with(
        &f.client,
        "horace_restore_version",
        json!({"file_id": id, "version": 2}),
        "VERSION_CONTENT_UNAVAILABLE",
    )
    .await;
    assert!(text.contains("corrupt"), "{text}");
    assert_eq!(std::fs::read(&path).unwrap(), b"current");
    assert_eq!(info(&f, &id).await.version_count, 6, "the refused restore recorded nothing, not even the edit");
}

async fn restore_keeps_an_uncataloged_edit(f: Fixture) {
    // Large and small content: kept in the store's files and in the catalog.
    for (name, v1, edit) in [
        ("big.bin", noise(3 << 20, 31), noise((2 << 20) + 5, 32)),
        ("small.txt", b"first draft".to_vec(), b"an edit nobody registered".to_vec()),
    ] {
        let path = f.write(name, &v1);
        let id = register(&f, name, json!({"owner": "writer"})).await.file_id;
        std::fs::write(&path, &edit).unwrap();

        let restored: Restored = ok(&f.client, "horace_restore_version", json!({"file_id": id, "version": 1})).await;
        assert_eq!((restored.saved_version, restored.new_version), (Some(2), 3), "{name}");
        assert!(restored.message.contains("kept it as version 2"), "{}", restored.message);
        assert!(std::fs::read(&path).unwrap() == v1, "{name}: version 1 is back");
        let versions = info(&f, &id).await.versions.unwrap();
        let summary: Vec<(i64, VersionReason, Option<i64>, String)> =
            versions.iter().map(|v| (v.version, v.reason, v.restored_from, v.checksum.clone())).collect();
        assert_eq!(
            summary,
            [
                (1, VersionReason::Registered, None, sha256_hex(&v1)),
                (2, VersionReason::Changed, None, sha256_hex(&edit)),
                (3, VersionReason::Restored, Some(1), sha256_hex(&v1)),
            ],
            "{name}"
        );

        // The edit itself comes back byte for byte.
        let back: Restored = ok(&f.client, "horace_restore_version", json!({"file_id": id, "version": 2})).await;
        assert_eq!((back.saved_version, back.new_version), (None, 4), "{name}: nothing new to keep");
        assert!(!back.message.contains("kept it"), "{}", back.message);
        assert!(std::fs::read(&path).unwrap() == edit, "{name}: the edit is restored byte for byte");
    }
}

async fn collections_refuse_unknown_ids(f: Fixture) {
    f.write("a.txt", b"a");
    f.write("b.txt", b"b");
    let a = register(&f, "a.txt", json!({})).await.file_id;
    let b = register(&f, "b.txt", json!({"collection": "letters"})).await.file_id;

    let created: CollectionResult = ok(
        &f.client,
        "horace_create_collection",
        json!({"name": "first", "description": "the first", "file_ids": [a], "metadata": {"team": "core"}}),
    )
    .await;
    assert!(created.created);
    assert_eq!((created.added, created.collection.file_count), (1, 1));
    assert_eq!(created.collection.description.as_deref(), Some("the first"));

    // Unknown ids: refused, each named, nothing changed.
    let ghost1 = "01937000-0000-7000-8000-000000000001";
    let ghost2 = "01937000-0000-7000-8000-000000000002";
    let text = fails_with(
        &f.client,
        "horace_create_collection",
        json!({"name": "first", "description": "changed", "file_ids": [b, ghost1, ghost2], "metadata": {"x": 1}}),
        "UNKNOWN_FILE_IDS",
    )
    .await;
    assert!(text.contains(ghost1) && text.contains(ghost2) && !text.contains(&b), "{text}");
    let text = fails_with(
        &f.client,
        "horace_create_collection",
        json!({"name": "never", "file_ids": [ghost1]}),
        "UNKNOWN_FILE_IDS",
    )
    .await;
    assert!(text.contains("nothing was changed"), "{text}");
    fails_with(&f.client, "horace_create_collection", json!({"name": "never", "file_ids": ["nope"]}), "INVALID_ID")
        .await;
    let list: CollectionList = ok(&f.client, "horace_list_collections", json!({})).await;
    let names: Vec<&str> = list.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["first", "letters"], "by name; the refused calls created nothing");
    let first = &list.collections[0];
    assert_eq!(first.file_count, 1);
    assert_eq!(first.description.as_deref(), Some("the first"));
    assert_eq!(first.metadata, json!({"team": "core"}).as_object().unwrap().clone());

    // Update by name: files added, description replaced, metadata merged.
    let updated: CollectionResult = ok(
        &f.client,
        "horace_create_collection",
        json!({"name": "first", "description": "both", "file_ids": [a, b, b], "metadata": {"x": 1}}),
    )
    .await;
    assert!(!updated.created);
    assert_eq!((updated.added, updated.collection.file_count), (1, 2));
    assert_eq!(updated.collection.metadata, json!({"team": "core", "x": 1}).as_object().unwrap().clone());
    assert_eq!(updated.collection.collection_id, created.collection.collection_id);

    let page: CollectionList = ok(&f.client, "horace_list_collections", json!({"limit": 1, "offset": 1})).await;
    assert_eq!((page.total, page.collections.len(), page.has_more), (2, 1, false));
    assert_eq!(page.collections[0].name, "letters");
    assert_eq!(info(&f, &b).await.collections, ["first", "letters"]);
}

async fn bad_inputs_are_refused_and_change_nothing(f: Fixture) {
    f.write("x.txt", b"x");
    let id = register(&f, "x.txt", json!({})).await.file_id;
    let unknown = "01937000-0000-7000-8000-0000000000ff";
    let c = &f.client;
    fails_with(c, "horace_get_file_info", json!({"file_id": "42"}), "INVALID_ID").await;
    fails_with(c, "horace_get_file_info", json!({"file_id": "x' OR 1=1 --"}), "INVALID_ID").await;
    fails_with(c, "horace_get_file_info", json!({"file_id": unknown}), "FILE_NOT_FOUND").await;
    fails_with(c, "horace_restore_version", json!({"file_id": unknown, "version": 1}), "FILE_NOT_FOUND").await;
    fails_with(c, "horace_restore_version", json!({"file_id": id, "version": 0}), "INVALID_INPUT").await;
    let text = fails_with(c, "horace_restore_version", json!({"file_id": id, "version": 9}), "VERSION_NOT_FOUND").await;
    assert!(text.contains("versions 1 to 1"), "{text}");
    fails_with(c, "horace_update_file", json!({"file_id": id}), "INVALID_INPUT").await;
    fails_with(c, "horace_update_file", json!({"file_id": unknown, "metadata": {"owner": "o"}}), "FILE_NOT_FOUND")
        .await;
    fails_with(c, "horace_search_files", json!({"limit": 0}), "INVALID_INPUT").await;
    fails_with(c, "horace_search_files", json!({"limit": 1001}), "INVALID_INPUT").await;
    fails_with(c, "horace_search_files", json!({"offset": -1}), "INVALID_INPUT").await;
    fails_with(c, "horace_search_files", json!({"created_after": "yesterday"}), "INVALID_INPUT").await;
    fails_with(c, "horace_search_files", json!({"min_size": 10, "max_size": 5}), "INVALID_INPUT").await;
    fails_with(c, "horace_search_files", json!({"file_type": "no such/type%"}), "INVALID_INPUT").await;
    fails_with(c, "horace_search_files", json!({"tags": [""]}), "INVALID_INPUT").await;
    fails_with(c, "horace_list_collections", json!({"limit": -5}), "INVALID_INPUT").await;
    fails_with(c, "horace_create_collection", json!({"name": "  "}), "INVALID_INPUT").await;
    // What PostgreSQL cannot store is refused on both backends as the
    // caller's mistake, not passed on as a catalog failure.
    for metadata in [
        json!({"note": "a\0b"}),
        json!({"a\0": 1}),
        json!({"deep": [{"x": ["ok", "\0"]}]}),
        json!({"big": "x".repeat(70_000)}),
    ] {
        let args = json!({"name": "meta", "metadata": metadata});
        let text = fails_with(c, "horace_create_collection", args, "INVALID_INPUT").await;
        assert!(text.contains("`metadata`"), "{text}");
    }
    for filter in ["owner", "collection"] {
        let with = |value: String| {
            let mut args = json!({});
            args[filter] = Value::String(value);
            args
        };
        let text = fails_with(c, "horace_search_files", with("a\0b".into()), "INVALID_INPUT").await;
        assert!(text.contains("NUL"), "{text}");
        fails_with(c, "horace_search_files", with("x".repeat(2000)), "INVALID_INPUT").await;
    }
    let listed: CollectionList = ok(c, "horace_list_collections", json!({})).await;
    assert_eq!(listed.total, 0, "no refused collection was created");
    fails_with(
        c,
        "horace_register_file",
        json!({"file_path": "x.txt", "metadata": {"tags": ["ok", " "]}}),
        "INVALID_INPUT",
    )
    .await;
    fails_with(
        c,
        "horace_register_file",
        json!({"file_path": "x.txt", "metadata": {"collection": ""}}),
        "INVALID_INPUT",
    )
    .await;
    fails_with(c, "horace_register_file", json!({"file_path": "nope.txt", "metadata": {}}), "PATH_NOT_FOUND").await;
    // Argument shapes the schema refuses are refused by the runtime, naming the field.
    let text = fails(c, "horace_register_file", json!({"file_path": "x.txt", "metadata": {"ownr": "typo"}})).await;
    assert!(text.contains("ownr"), "{text}");
    let text = fails(c, "horace_register_file", json!({"file_path": "x.txt"})).await;
    assert!(text.contains("metadata"), "{text}");

    // None of it changed anything.
    let all = search(&f, json!({})).await;
    assert_eq!(all.total, 1);
    let file: FileRecord = all.files.into_iter().next().unwrap();
    assert_eq!((file.version, file.owner), (1, None));
    let list: CollectionList = ok(c, "horace_list_collections", json!({})).await;
    assert_eq!(list.total, 0);
    assert!(code_of("PATH_OUTSIDE_ROOT: x") == "PATH_OUTSIDE_ROOT");
}

async fn small_content_lives_in_the_catalog(f: Fixture) {
    use horace::content::INLINE_MAX;
    let limit = INLINE_MAX as usize;
    // The boundary: INLINE_MAX bytes go to the catalog, one more to a file.
    let (at_limit, over) = (noise(limit, 21), noise(limit + 1, 22));
    f.write("edge/at-limit.bin", &at_limit);
    f.write("edge/over.bin", &over);
    let _ = register(&f, "edge/at-limit.bin", json!({})).await;
    let _ = register(&f, "edge/over.bin", json!({})).await;
    assert_eq!(f.stored_objects(), [sha256_hex(&over)], "only the larger content is a file");
    assert_eq!(f.horace.catalog().inline_checksums().await.unwrap(), [sha256_hex(&at_limit)]);

    // Versions of a small file: registered, changed by registration and by
    // a check, then every version restored byte for byte.
    let v1 = noise(4096, 23);
    let v2 = b"{\"second\": true}".to_vec();
    let v3 = Vec::new();
    let path = f.write("notes/n.json", &v1);
    let id = register(&f, "notes/n.json", json!({"owner": "ops"})).await.file_id;
    std::fs::write(&path, &v2).unwrap();
    assert_eq!(register(&f, "notes/n.json", json!({})).await.status, RegistrationStatus::NewVersion);
    std::fs::write(&path, &v3).unwrap();
    let check: FileUpdate =
        ok(&f.client, "horace_update_file", json!({"file_id": id, "check_for_changes": true})).await;
    assert_eq!(check.content, ContentState::Changed);
    // The same small content at another path is kept once.
    f.write("notes/copy.json", &v2);
    let _ = register(&f, "notes/copy.json", json!({})).await;

    let details = info(&f, &id).await;
    assert_eq!((details.file.version, details.file.size, details.file.checksum.clone()), (3, 0, sha256_hex(&v3)));
    let versions = details.versions.unwrap();
    let summary: Vec<(i64, String, i64)> = versions.iter().map(|v| (v.version, v.checksum.clone(), v.size)).collect();
    assert_eq!(
        summary,
        [(1, sha256_hex(&v1), v1.len() as i64), (2, sha256_hex(&v2), v2.len() as i64), (3, sha256_hex(&v3), 0),]
    );
    for (version, content) in [(1, &v1), (2, &v2), (3, &v3), (1, &v1)] {
        let restored: Restored =
            ok(&f.client, "horace_restore_version", json!({"file_id": id, "version": version})).await;
        assert!(std::fs::read(&path).unwrap() == *content, "version {version} comes back byte for byte");
        assert_eq!(restored.file.checksum, sha256_hex(content));
    }
    assert_eq!(info(&f, &id).await.version_count, 7);
    let mut inline = vec![sha256_hex(&at_limit), sha256_hex(&v1), sha256_hex(&v2), sha256_hex(&v3)];
    inline.sort();
    assert_eq!(f.horace.catalog().inline_checksums().await.unwrap(), inline, "each small content once");
    assert_eq!(f.stored_objects(), [sha256_hex(&over)], "restores of small content add no file");
    let leftovers: Vec<_> =
        std::fs::read_dir(f.root().join("notes")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temp file beside the target: {leftovers:?}");
}

/// A store written by an older build (every object flat in `objects/`) and
/// what a crash leaves behind, met by a restart.
async fn older_stores_and_crash_leftovers(f: Fixture) {
    let large = noise(300 << 10, 31);
    let path = f.write("old/big.bin", &large);
    let id = register(&f, "old/big.bin", json!({})).await.file_id;
    std::fs::write(&path, b"changed").unwrap();
    let _ = register(&f, "old/big.bin", json!({})).await;
    // The flat layout: the object directly in objects/, no folder.
    let checksum = sha256_hex(&large);
    let objects = f.root().join(".horace/objects");
    std::fs::rename(f.object_path(&checksum), objects.join(&checksum)).unwrap();
    std::fs::remove_dir(objects.join(&checksum[..2])).unwrap();
    // A crash mid-copy: a temp file from long ago, and one another replica
    // may be writing right now.
    let stale = objects.join(".tmp-crashed");
    std::fs::write(&stale, b"half an object").unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(hour_ago).unwrap();
    let fresh = objects.join(".tmp-in-progress");
    std::fs::write(&fresh, b"being written").unwrap();
    // A crash after an object was stored but before its catalog row was
    // committed: an object nothing names yet.
    let orphan = noise(200 << 10, 32);
    let orphan_sum = sha256_hex(&orphan);
    std::fs::create_dir(objects.join(&orphan_sum[..2])).unwrap();
    std::fs::write(objects.join(&orphan_sum[..2]).join(&orphan_sum), &orphan).unwrap();
    // A crash mid-restore: the temp file beside the target.
    std::fs::write(f.root().join("old/.horace-restore-0.tmp"), b"partial").unwrap();

    let (_horace, client, shutdown) = f.reopen().await;
    assert!(f.object_path(&checksum).is_file(), "the flat object moved into its folder");
    assert!(!objects.join(&checksum).exists());
    assert!(!stale.exists(), "a stale temp object is removed at start");
    assert!(fresh.exists(), "a recent temp object is left to its writer");
    std::fs::remove_file(&fresh).unwrap();

    let restored: Restored = ok(&client, "horace_restore_version", json!({"file_id": id, "version": 1})).await;
    assert_eq!(restored.new_version, 3);
    assert!(std::fs::read(&path).unwrap() == large, "the older store's object is restored byte for byte");
    // The orphan's content registers normally and is still stored once.
    f.write("old/orphan.bin", &orphan);
    let reg: Registration =
        ok(&client, "horace_register_file", json!({"file_path": "old/orphan.bin", "metadata": {}})).await;
    assert_eq!(reg.file.checksum, orphan_sum);
    let mut files = vec![checksum, orphan_sum];
    files.sort();
    assert_eq!(f.stored_objects(), files, "nothing else in the store");
    let restored: Restored = ok(&client, "horace_restore_version", json!({"file_id": reg.file_id, "version": 1})).await;
    assert_eq!(restored.file.checksum, sha256_hex(&orphan));
    shutdown.shutdown();
}

/// A collection's stored metadata that is not JSON (a damaged or hand-edited
/// SQLite file) is reported, not read as `{}` and written back as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_stored_metadata_is_an_error() {
    let db = tempfile::tempdir().unwrap();
    let f = Fixture::on_sqlite(db.path()).await;
    let _: CollectionResult =
        ok(&f.client, "horace_create_collection", json!({"name": "kept", "metadata": {"team": "core"}})).await;
    let conn = rusqlite::Connection::open(db.path().join("horace.sqlite3")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    conn.execute("UPDATE collections SET metadata = 'not json' WHERE name = 'kept'", []).unwrap();
    drop(conn);
    let args = json!({"name": "kept", "metadata": {"x": 1}});
    let text = fails_with(&f.client, "horace_create_collection", args, "CATALOG_ERROR").await;
    assert!(text.contains("collections.metadata"), "{text}");
    fails_with(&f.client, "horace_list_collections", json!({}), "CATALOG_ERROR").await;
}
