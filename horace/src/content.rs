//! File content: SHA-256 with type detection, the content-addressed version
//! store, and atomic writes.
//!
//! Every version's content is kept once per distinct content, in one of two
//! places. Small content ([`INLINE_MAX`] bytes at most) goes into the
//! catalog, in the very transaction that records the version: a small file
//! costs no file, inode or fsync of its own, and its content is exactly as
//! durable as the row naming it. Larger content is a file in the version
//! store, `<root>/.horace/objects/<ab>/<sha256 hex>` (`<ab>` being the
//! checksum's first two hex digits, so that no folder grows to millions of
//! entries and concurrent writers rarely share one), durable before the
//! catalog row that names it is committed.
//!
//! A small file is read in one piece. A larger one is never held whole in
//! memory: it moves in [`CHUNK`]-sized pieces, hashed as it goes, so a 1 GiB
//! file costs a few chunks of memory. Every write becomes visible whole or
//! not at all: it goes to a temp file (in `objects/` for a new object,
//! beside the target for a restore), which is fsynced, renamed into place,
//! and its new folder fsynced.

use std::collections::BTreeSet;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::OnceLock;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, SystemTime};

use cap_std::fs::{Dir, File, OpenOptions, OpenOptionsExt};
use chrono::{DateTime, Utc};
use rustix::fs::OFlags;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{ErrorCode, HoraceError, Result};
use crate::model::{Observed, micros};
use crate::root::{RESERVED_DIR, RelPath, StorageRoot};

/// How much is read, hashed and written at a time when streaming.
pub const CHUNK: usize = 1 << 20;

/// Content up to this size is read whole and kept in the catalog; larger
/// content is streamed into a file of the version store.
pub const INLINE_MAX: u64 = 64 << 10;

/// How much of the start of a file type detection looks at (enough for
/// every signature `infer` knows, ISO 9660's at 32 KiB included).
const SNIFF_BYTES: usize = 64 * 1024;

/// Names of temp files. Object temp files a crash left are removed at
/// start-up (once stale, see [`STALE_TEMP_AGE`]); restore leftovers stay
/// beside the target (see the README).
const OBJECT_TEMP_PREFIX: &str = ".tmp-";
const RESTORE_TEMP_PREFIX: &str = ".horace-restore-";

/// A named object temp file untouched for this long belongs to a crashed
/// writer (a live one writes to it continuously), here or on another
/// replica sharing the root, and is removed at start-up.
const STALE_TEMP_AGE: Duration = Duration::from_secs(15 * 60);

/// Fan-out folders: one per first byte of the checksum.
const SHARDS: usize = 256;

/// The content-addressed store of every version's content.
#[derive(Debug)]
pub struct VersionStore {
    /// `.horace/objects`, held readable so that it can be fsynced.
    objects: Dir,
    /// `objects/00` to `objects/ff`, each opened (and created) on first use.
    shards: Box<[OnceLock<Dir>]>,
}

/// What one pass over some content found.
#[derive(Debug)]
struct Pass {
    checksum: String,
    size: u64,
    head: Vec<u8>,
}

impl VersionStore {
    pub const OBJECTS_DIR: &str = "objects";

    /// Opens `<root>/.horace/objects`, creating it; moves objects of the
    /// flat layout of earlier builds (`objects/<sha256 hex>`) into their
    /// folders and removes object temp files a crash left there (a temp
    /// object is never referenced by the catalog).
    pub fn open(root: &StorageRoot) -> io::Result<VersionStore> {
        let path = format!("{RESERVED_DIR}/{}", Self::OBJECTS_DIR);
        root.dir().create_dir_all(&path)?;
        let objects = open_readable_dir(root.dir(), &path)?;
        let store = VersionStore { objects, shards: (0..SHARDS).map(|_| OnceLock::new()).collect() };
        // Folders that received objects of the flat layout, fsynced once at
        // the end: until then an object is under its old name, its new one,
        // or (on a crash) still under the old one and moved at the next start.
        let mut moved_into = BTreeSet::new();
        for entry in store.objects.entries()? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if name.starts_with(OBJECT_TEMP_PREFIX) {
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| SystemTime::now().duration_since(t.into_std()).unwrap_or_default() > STALE_TEMP_AGE)
                    .unwrap_or(false);
                if stale {
                    let _ = store.objects.remove_file(&name);
                }
            } else if is_checksum(&name) && entry.file_type()?.is_file() {
                store.objects.rename(&name, store.shard(&name)?, &name)?;
                moved_into.insert(name[..2].to_owned());
            }
        }
        for shard in moved_into {
            fsync(store.shard(&shard)?)?;
        }
        Ok(store)
    }

    /// The fan-out folder of `checksum` (a checked checksum), created if
    /// missing. The first use in a process fsyncs `objects/`, so the folder's
    /// own entry is durable before any object in it counts as stored, even
    /// when another process has just created it.
    fn shard(&self, checksum: &str) -> io::Result<&Dir> {
        let name = checksum.get(..2).ok_or_else(|| io::Error::other("not a checksum"))?;
        let index = usize::from_str_radix(name, 16).map_err(|_| io::Error::other("not a checksum"))?;
        if let Some(dir) = self.shards[index].get() {
            return Ok(dir);
        }
        let dir = match open_readable_dir(&self.objects, name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match self.objects.create_dir(name) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
                open_readable_dir(&self.objects, name)?
            }
            opened => opened?,
        };
        fsync(&self.objects)?;
        Ok(self.shards[index].get_or_init(|| dir))
    }

    /// Whether content with this checksum is stored.
    pub fn contains(&self, checksum: &str) -> bool {
        is_checksum(checksum) && self.shard(checksum).is_ok_and(|shard| shard.is_file(checksum))
    }

    /// Reads the file at `rel`, hashing it, and makes sure its content is
    /// stored: small content comes back in [`Observed::content`] for the
    /// catalog to keep, larger content is copied into the store's files.
    /// `known` is the checksum the catalog holds for the path: when a large
    /// file still has it, the file is only hashed, not copied.
    pub fn ingest(&self, root: &StorageRoot, rel: &RelPath, known: Option<&str>) -> Result<Observed> {
        let (mut file, metadata) = root.open_regular(rel)?;
        let modified_at = modified(&metadata);
        let read_error = |e: io::Error| {
            HoraceError::new(ErrorCode::IoError, format!("reading {} failed: {e}", root.absolute(rel.as_str())))
                .with_source(e)
        };
        let store_error = |e: io::Error| {
            HoraceError::new(
                ErrorCode::IoError,
                format!("cannot keep a copy of {} in the version store: {e}", root.absolute(rel.as_str())),
            )
            .with_source(e)
        };
        if metadata.len() <= INLINE_MAX {
            if let Some(content) = read_whole(&mut file, metadata.len()).map_err(read_error)? {
                let mut digest = Digesting::new();
                digest.update(&content);
                let pass = digest.finish();
                // Handed to the catalog even when `known` matches: it
                // stores it (once per checksum) only with a new version.
                return Ok(Observed { content: Some(content.into()), ..observed(pass, rel, modified_at) });
            }
            // It grew past the limit while being read: stream it instead.
            file.seek(SeekFrom::Start(0)).map_err(read_error)?;
        }
        if let Some(known) = known {
            let pass = pump(&mut file, None, metadata.len()).map_err(|e| e.into_read_error(read_error))?;
            // Unchanged, and its content is stored (if someone removed the
            // object, the copy below puts it back).
            if pass.checksum == known && self.contains(known) {
                return Ok(observed(pass, rel, modified_at));
            }
            file.seek(SeekFrom::Start(0)).map_err(read_error)?;
        }
        let temp_name = format!("{OBJECT_TEMP_PREFIX}{}", Uuid::new_v4());
        let mut temp = self.objects.open_with(&temp_name, &new_file(0o444)).map_err(store_error)?;
        let stored = match pump(&mut file, Some(&mut temp), metadata.len()) {
            Ok(pass) => self.commit(temp, &temp_name, &pass.checksum).map(|()| pass).map_err(store_error),
            Err(e) => Err(e.into_error(read_error, store_error)),
        };
        // After a rename the temp name is gone already.
        let _ = self.objects.remove_file(&temp_name);
        Ok(observed(stored?, rel, modified_at))
    }

    /// Makes the completely written temp object `temp_name` durable as
    /// `checksum`: fsync it, rename it into its folder, fsync the folder.
    /// When identical content is stored already (another call got there
    /// first), this copy is left to be removed and the stored one synced: it
    /// may have been renamed in a moment ago, and the catalog must not name
    /// it before its folder is synced.
    fn commit(&self, temp: File, temp_name: &str, checksum: &str) -> io::Result<()> {
        let shard = self.shard(checksum)?;
        if !shard.is_file(checksum) {
            temp.sync_all()?;
            // A rename over an object that appeared meanwhile replaces it
            // with the same content.
            self.objects.rename(temp_name, shard, checksum)?;
        }
        fsync(shard)
    }

    /// Writes the stored content `checksum` to `rel` atomically (creating
    /// missing folders): [`VersionStore::stage`], then
    /// [`StagedRestore::commit`].
    pub fn restore(
        &self,
        root: &StorageRoot,
        rel: &RelPath,
        checksum: &str,
        inline: Option<&[u8]>,
    ) -> Result<Observed> {
        self.stage(root, rel, checksum, inline)?.commit(root, rel)
    }

    /// Prepares a restore of the stored content `checksum` to `rel`: checks
    /// it against its checksum while writing it to a temp file beside `rel`
    /// (creating missing folders), with the target's permission bits, and
    /// syncs it. Nothing at `rel` changes until [`StagedRestore::commit`];
    /// a staged restore dropped uncommitted removes its temp file. A corrupt
    /// object is refused. `inline` is the content when the catalog keeps it;
    /// otherwise it is read from the store's file.
    pub fn stage(
        &self,
        root: &StorageRoot,
        rel: &RelPath,
        checksum: &str,
        inline: Option<&[u8]>,
    ) -> Result<StagedRestore> {
        let unavailable = |why: &str| {
            HoraceError::new(
                ErrorCode::VersionContentUnavailable,
                format!("the stored content {checksum} {why}; {} was not changed", root.absolute(rel.as_str())),
            )
        };
        let corrupt = |found: &str| unavailable(&format!("is corrupt (its content hashes to {found})"));
        if !is_checksum(checksum) {
            return Err(unavailable("is not a SHA-256 checksum"));
        }
        let source = match inline {
            Some(content) => {
                let mut digest = Digesting::new();
                digest.update(content);
                let pass = digest.finish();
                if pass.checksum != checksum {
                    return Err(corrupt(&pass.checksum));
                }
                Source::Checked(pass, content)
            }
            None => match self.shard(checksum).and_then(|shard| shard.open(checksum)) {
                Ok(file) => Source::Object(file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(unavailable("is missing from the version store (.horace/objects)"));
                }
                Err(e) => return Err(unavailable(&format!("cannot be read: {e}"))),
            },
        };
        let parent = root.open_parent(rel, true)?;
        let name = rel.file_name();
        let permissions = match parent.symlink_metadata(name) {
            Ok(m) if m.is_dir() => {
                return Err(HoraceError::new(
                    ErrorCode::NotARegularFile,
                    format!("{} is a directory; Horace will not replace it with a file", root.absolute(rel.as_str())),
                ));
            }
            Ok(m) if m.is_file() => Some(m.permissions()),
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(root.path_error(e, rel)),
        };
        let write_error = |e: io::Error| {
            HoraceError::new(ErrorCode::IoError, format!("writing {} failed: {e}", root.absolute(rel.as_str())))
                .with_source(e)
        };
        let temp_name = format!("{RESTORE_TEMP_PREFIX}{}.tmp", Uuid::new_v4());
        let mut temp = parent.open_with(&temp_name, &new_file(0o644)).map_err(|e| root.path_error(e, rel))?;
        // From here on, dropping `staged` removes the temp file.
        let mut staged = StagedRestore { parent, temp_name, pass: None, modified_at: Utc::now() };
        let pass = match source {
            Source::Checked(pass, content) => {
                temp.write_all(content).map_err(write_error)?;
                pass
            }
            Source::Object(mut file) => {
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                let pass = pump(&mut file, Some(&mut temp), size)
                    .map_err(|e| e.into_error(|e| unavailable(&format!("cannot be read: {e}")), write_error))?;
                if pass.checksum != checksum {
                    return Err(corrupt(&pass.checksum));
                }
                pass
            }
        };
        let sync = || -> io::Result<DateTime<Utc>> {
            if let Some(permissions) = permissions {
                temp.set_permissions(permissions)?;
            }
            temp.sync_all()?;
            Ok(modified(&temp.metadata()?))
        };
        staged.modified_at = sync().map_err(write_error)?;
        staged.pass = Some(pass);
        Ok(staged)
    }
}

/// A restore written and synced beside its target, not yet renamed over it
/// (see [`VersionStore::stage`]).
#[derive(Debug)]
pub struct StagedRestore {
    parent: Dir,
    temp_name: String,
    /// `None` until the content is completely written and checked.
    pass: Option<Pass>,
    modified_at: DateTime<Utc>,
}

impl StagedRestore {
    /// Renames the temp file over `rel` (the path it was staged for) and
    /// syncs the folder: the restore is visible whole, and durable.
    pub fn commit(mut self, root: &StorageRoot, rel: &RelPath) -> Result<Observed> {
        let pass = self.pass.take().expect("only a completely staged restore is handed out");
        let renamed = self.parent.rename(&self.temp_name, &self.parent, rel.file_name());
        renamed.and_then(|()| sync_dir(&self.parent)).map_err(|e| {
            HoraceError::new(ErrorCode::IoError, format!("writing {} failed: {e}", root.absolute(rel.as_str())))
                .with_source(e)
        })?;
        Ok(observed(pass, rel, self.modified_at))
    }
}

impl Drop for StagedRestore {
    fn drop(&mut self) {
        // After a rename the temp name is gone already.
        let _ = self.parent.remove_file(&self.temp_name);
    }
}

/// Where a restore's content comes from: checked already (the catalog's),
/// or a file of the store, checked as it is copied.
enum Source<'a> {
    Checked(Pass, &'a [u8]),
    Object(File),
}

/// Where a pump failed: reading the source or writing the copy.
enum PumpError {
    Read(io::Error),
    Write(io::Error),
}

impl PumpError {
    fn into_error(
        self,
        read: impl FnOnce(io::Error) -> HoraceError,
        write: impl FnOnce(io::Error) -> HoraceError,
    ) -> HoraceError {
        match self {
            PumpError::Read(e) => read(e),
            PumpError::Write(e) => write(e),
        }
    }

    fn into_read_error(self, read: impl FnOnce(io::Error) -> HoraceError) -> HoraceError {
        match self {
            PumpError::Read(e) | PumpError::Write(e) => read(e),
        }
    }
}

/// Files at least this large are pumped by three threads (read, hash,
/// write) so that copying from the page cache, hashing and writing overlap;
/// smaller ones on the calling thread, where two threads would cost more
/// than they save.
const PIPELINE_FROM: u64 = 1 << 20;

/// Chunks in flight between the pipeline's threads: its whole memory.
const PIPELINE_BUFFERS: usize = 4;

/// The copy is flushed to disk every this many bytes while it is written,
/// so the disk works while the rest is still being hashed instead of all at
/// the final fsync.
const FLUSH_EVERY: u64 = 16 << 20;

/// Streams `source` to its end through SHA-256 (and into `copy`), keeping
/// only the first [`SNIFF_BYTES`] for type detection. `size_hint` is the
/// size fstat reported; the content read decides the result.
fn pump(source: &mut File, copy: Option<&mut File>, size_hint: u64) -> Result<Pass, PumpError> {
    let mut digest = Digesting::new();
    if size_hint < PIPELINE_FROM {
        // Below the pipeline's threshold: one buffer the size of the file.
        let mut buf = vec![0u8; CHUNK.min(size_hint as usize + 1)];
        let mut copy = copy;
        loop {
            let n = read_some(source, &mut buf).map_err(PumpError::Read)?;
            if n == 0 {
                break;
            }
            digest.update(&buf[..n]);
            if let Some(copy) = copy.as_deref_mut() {
                copy.write_all(&buf[..n]).map_err(PumpError::Write)?;
            }
        }
        return Ok(digest.finish());
    }
    let _ = rustix::fs::fadvise(&*source, 0, None, rustix::fs::Advice::Sequential);
    // Buffers circle reader -> hasher -> writer (or the hasher alone) ->
    // reader. Exactly one thread returns them, and it holds the only sender
    // of `empty`: when it stops (the writer after a failed write, the hasher
    // after a failed hand-over), the reader's wait for a buffer ends, the
    // reader drops `filled`, and the hasher's loop ends. No thread can wait
    // for one that has gone.
    std::thread::scope(|scope| {
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(PIPELINE_BUFFERS);
        let (filled_tx, filled_rx) = sync_channel::<(Vec<u8>, usize)>(PIPELINE_BUFFERS);
        for _ in 0..PIPELINE_BUFFERS {
            empty_tx.send(vec![0u8; CHUNK]).expect("the channel holds every buffer");
        }
        let reader = scope.spawn(move || -> io::Result<()> {
            while let Ok(mut buf) = empty_rx.recv() {
                let n = read_some(source, &mut buf)?;
                if n == 0 || filled_tx.send((buf, n)).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let (write_tx, write_rx) = sync_channel::<(Vec<u8>, usize)>(PIPELINE_BUFFERS);
        let (writer, hasher_returns) = match copy {
            Some(copy) => {
                let writer = scope.spawn(move || -> io::Result<()> {
                    let mut unflushed = 0u64;
                    for (buf, n) in write_rx {
                        copy.write_all(&buf[..n])?;
                        unflushed += n as u64;
                        if unflushed >= FLUSH_EVERY {
                            copy.sync_data()?;
                            unflushed = 0;
                        }
                        let _ = empty_tx.send(buf);
                    }
                    Ok(())
                });
                (Some(writer), None)
            }
            None => (None, Some(empty_tx)),
        };
        for (buf, n) in filled_rx.iter() {
            digest.update(&buf[..n]);
            match &hasher_returns {
                Some(empty_tx) => {
                    let _ = empty_tx.send(buf);
                }
                None => {
                    if write_tx.send((buf, n)).is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
            }
        }
        // Whoever is still waiting (the reader to hand over a chunk, the
        // writer for one) sees its channel close and ends.
        drop((write_tx, hasher_returns, filled_rx));
        if let Some(writer) = writer {
            writer.join().expect("the writer thread does not panic").map_err(PumpError::Write)?;
        }
        reader.join().expect("the reader thread does not panic").map_err(PumpError::Read)?;
        Ok(digest.finish())
    })
}

fn read_some(source: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match source.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// SHA-256, size and the head kept for type detection, as content streams by.
struct Digesting {
    hasher: Sha256,
    head: Vec<u8>,
    size: u64,
}

impl Digesting {
    fn new() -> Digesting {
        Digesting { hasher: Sha256::new(), head: Vec::new(), size: 0 }
    }

    fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        if self.head.len() < SNIFF_BYTES {
            let keep = chunk.len().min(SNIFF_BYTES - self.head.len());
            self.head.extend_from_slice(&chunk[..keep]);
        }
        self.size += chunk.len() as u64;
    }

    fn finish(self) -> Pass {
        Pass { checksum: hex(&self.hasher.finalize()), size: self.size, head: self.head }
    }
}

fn observed(pass: Pass, rel: &RelPath, modified_at: DateTime<Utc>) -> Observed {
    Observed {
        mime_type: detect_mime(&pass.head, pass.size, rel),
        checksum: pass.checksum,
        size: i64::try_from(pass.size).unwrap_or(i64::MAX),
        modified_at,
        content: None,
    }
}

/// The MIME type from the content's signature; for content without one
/// (text, JSON, CSV ...), from the extension; then plain text if it decodes
/// as UTF-8; else `application/octet-stream`.
pub fn detect_mime(head: &[u8], size: u64, rel: &RelPath) -> String {
    if size > 0
        && let Some(kind) = infer::get(head)
    {
        return kind.mime_type().to_owned();
    }
    if let Some(guess) = rel.extension().and_then(|ext| mime_guess::from_ext(&ext).first()) {
        return guess.essence_str().to_owned();
    }
    if size == 0 {
        return "application/x-empty".to_owned();
    }
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        // Cut mid-character at the end of the sniffed bytes is still text.
        Err(e) => e.error_len().is_none(),
    };
    if text && !head.contains(&0) { "text/plain".to_owned() } else { "application/octet-stream".to_owned() }
}

fn new_file(mode: u32) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(mode);
    options
}

/// Makes a rename in `dir` durable. cap-std holds directories as `O_PATH`
/// handles, which cannot be fsynced: sync a readable handle on it instead.
fn sync_dir(dir: &Dir) -> io::Result<()> {
    dir.open(".")?.sync_all()
}

/// fsync of a directory opened by [`open_readable_dir`].
fn fsync(dir: &Dir) -> io::Result<()> {
    Ok(rustix::fs::fsync(dir)?)
}

/// Opens a folder beneath `parent` (not through a symlink at its end) as a
/// readable handle: usable as a `Dir` and fsyncable, where cap-std's own
/// `open_dir` gives an `O_PATH` handle that is not.
fn open_readable_dir(parent: &Dir, path: &str) -> io::Result<Dir> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags((OFlags::DIRECTORY | OFlags::NOFOLLOW).bits() as i32);
    Ok(Dir::from_std_file(parent.open_with(path, &options)?.into_std()))
}

/// Reads a file of `size_hint` bytes (fstat's figure) whole, one byte more
/// being asked for so that the end shows in the first read. `None` when it
/// holds more than [`INLINE_MAX`] bytes (it grew while being read).
fn read_whole(file: &mut File, size_hint: u64) -> io::Result<Option<Vec<u8>>> {
    let mut content = Vec::with_capacity(size_hint.min(INLINE_MAX) as usize + 1);
    file.take(INLINE_MAX + 1).read_to_end(&mut content)?;
    Ok((content.len() as u64 <= INLINE_MAX).then_some(content))
}

fn modified(metadata: &cap_std::fs::Metadata) -> DateTime<Utc> {
    metadata.modified().map(|t| micros(DateTime::<Utc>::from(t.into_std()))).unwrap_or_else(|_| micros(Utc::now()))
}

fn is_checksum(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_sha256() {
        assert_eq!(hex(&Sha256::digest(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn mime_from_content_then_extension_then_text() {
        let rel = |p: &str| RelPath::from_catalog(p.to_owned());
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(detect_mime(png, 16, &rel("photo.txt")), "image/png");
        assert_eq!(detect_mime(b"{\"a\":1}", 7, &rel("a.json")), "application/json");
        assert_eq!(detect_mime(b"hello", 5, &rel("README")), "text/plain");
        assert_eq!(detect_mime(b"\x00\x01\x02", 3, &rel("blob")), "application/octet-stream");
        assert_eq!(detect_mime(b"", 0, &rel("empty")), "application/x-empty");
    }
}
