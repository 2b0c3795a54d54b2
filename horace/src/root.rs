//! The storage root: every file Horace reads or writes is reached through a
//! directory handle held on the root, never through a path string given to
//! the kernel from `/`.
//!
//! A caller's `file_path` is first checked lexically ([`StorageRoot::resolve`]:
//! no NUL, no `..`, an absolute path must start with the root). That check
//! alone would be a check-then-use race, so it is not what keeps Horace
//! inside: each open goes through `cap-std`, which asks the kernel to resolve
//! the path *beneath* the root handle (`openat2` with `RESOLVE_BENEATH` on
//! Linux 5.6+, a component-by-component `openat` walk with `O_NOFOLLOW`
//! elsewhere). A symlink that leads out, whether it was there all along or
//! swapped in while Horace resolves the path, makes the open fail; nothing
//! outside the root is ever opened. Writes go through a handle on the
//! target's parent directory, so the temp file and the rename happen in the
//! directory that was opened, whatever happens to the path meanwhile.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, Metadata, OpenOptions, OpenOptionsExt};
use rustix::fs::OFlags;

use crate::error::{ErrorCode, HoraceError, Result};

/// Horace's own folder inside the root (the version store). Paths in it
/// cannot be registered, so no tool can read or overwrite stored versions.
pub const RESERVED_DIR: &str = ".horace";

/// Longest `file_path` accepted (Linux's PATH_MAX), and longest name.
const MAX_PATH_BYTES: usize = 4096;
const MAX_NAME_BYTES: usize = 255;

/// A path inside the root, lexically clean: relative, `/`-separated, no
/// empty, `.` or `..` components, not under [`RESERVED_DIR`]. The catalog
/// keys files by it, so `a/./b` and `/root/a/b` are one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelPath(String);

impl RelPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder part, `None` for a file directly in the root.
    pub fn parent(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(dir, _)| dir)
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, name)| name)
    }

    /// Lowercase extension without the dot; none for `.bashrc` or `README`.
    pub fn extension(&self) -> Option<String> {
        let name = self.file_name();
        let (stem, ext) = name.rsplit_once('.')?;
        (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
    }

    /// Wraps a path read back from the catalog, which only holds paths that
    /// passed [`StorageRoot::resolve`]. Opening it still resolves beneath the
    /// root, so even a tampered catalog cannot lead outside.
    pub fn from_catalog(path: String) -> RelPath {
        RelPath(path)
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The root folder, held open.
#[derive(Debug)]
pub struct StorageRoot {
    dir: Dir,
    /// The root as configured, made absolute: how answers spell paths.
    shown: PathBuf,
    /// The root with symlinks resolved: also accepted as a prefix.
    canonical: PathBuf,
    /// `<canonical>/.horace`: where no opened file or folder may lie.
    reserved: PathBuf,
}

impl StorageRoot {
    /// Opens (creating it if missing) the root and Horace's folder in it.
    pub fn open(path: &Path) -> io::Result<StorageRoot> {
        std::fs::create_dir_all(path)?;
        let shown = std::path::absolute(path)?;
        let canonical = std::fs::canonicalize(path)?;
        let dir = Dir::open_ambient_dir(&canonical, ambient_authority())?;
        dir.create_dir_all(RESERVED_DIR)?;
        let reserved = canonical.join(RESERVED_DIR);
        Ok(StorageRoot { dir, shown: lexically_clean(&shown), canonical, reserved })
    }

    /// The root as answers show it.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// The root with symlinks resolved.
    pub fn canonical(&self) -> &Path {
        &self.canonical
    }

    pub(crate) fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The absolute path of `rel` as this server shows it.
    pub fn absolute(&self, rel: &str) -> String {
        let base = self.shown.display().to_string();
        if base.ends_with('/') { format!("{base}{rel}") } else { format!("{base}/{rel}") }
    }

    /// Checks a caller's `file_path` and turns it into a path from the root.
    /// Touches no file: whether the path really stays inside is decided by
    /// the kernel when it is opened.
    pub fn resolve(&self, file_path: &str) -> Result<RelPath> {
        if file_path.contains('\0') {
            return Err(HoraceError::new(
                ErrorCode::InvalidPath,
                "file_path contains a NUL character, which no file name can; remove it",
            ));
        }
        if file_path.trim().is_empty() {
            return Err(HoraceError::new(
                ErrorCode::InvalidPath,
                format!("file_path is empty; give a path inside {} or relative to it", self.shown.display()),
            ));
        }
        if file_path.len() > MAX_PATH_BYTES {
            return Err(HoraceError::new(
                ErrorCode::InvalidPath,
                format!("file_path is {} bytes long; at most {MAX_PATH_BYTES} are allowed", file_path.len()),
            ));
        }
        let relative = if file_path.starts_with('/') {
            let given = Path::new(file_path);
            match given.strip_prefix(&self.shown).or_else(|_| given.strip_prefix(&self.canonical)) {
                Ok(rest) => rest.to_str().expect("a suffix of a str"),
                Err(_) => {
                    return Err(HoraceError::new(
                        ErrorCode::PathOutsideRoot,
                        format!(
                            "{file_path:?} is outside the storage root {}; give a path under it or relative to it",
                            self.shown.display()
                        ),
                    ));
                }
            }
        } else {
            file_path
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in relative.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(HoraceError::new(
                        ErrorCode::PathOutsideRoot,
                        format!(
                            "{file_path:?} contains `..`; Horace resolves paths only downwards from the storage root \
                             {}: give the path without `..`",
                            self.shown.display()
                        ),
                    ));
                }
                name if name.len() > MAX_NAME_BYTES => {
                    return Err(HoraceError::new(
                        ErrorCode::InvalidPath,
                        format!(
                            "a name in {file_path:?} is {} bytes; at most {MAX_NAME_BYTES} are allowed",
                            name.len()
                        ),
                    ));
                }
                name => parts.push(name),
            }
        }
        match parts.first() {
            None => Err(HoraceError::new(
                ErrorCode::NotARegularFile,
                format!("{file_path:?} is the storage root itself, a directory; give the path of a file in it"),
            )),
            Some(&RESERVED_DIR) => Err(HoraceError::new(
                ErrorCode::PathReserved,
                format!(
                    "{file_path:?} is inside {RESERVED_DIR}/, where Horace keeps stored versions; choose another path"
                ),
            )),
            Some(_) => Ok(RelPath(parts.join("/"))),
        }
    }

    /// Opens a regular file for reading, beneath the root. Returns the open
    /// file with the metadata of that very file (fstat, not a second lookup).
    pub fn open_regular(&self, rel: &RelPath) -> Result<(File, Metadata)> {
        let mut options = OpenOptions::new();
        options.read(true);
        // A FIFO would block the open until a writer comes; O_NONBLOCK makes
        // it return so it can be refused below. No effect on regular files.
        options.custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32);
        let file = self.dir.open_with(rel.as_str(), &options).map_err(|e| self.path_error(e, rel))?;
        self.refuse_reserved(&file, rel)?;
        let metadata = file.metadata().map_err(|e| self.path_error(e, rel))?;
        if !metadata.is_file() {
            let what = if metadata.is_dir() { "a directory" } else { "not a regular file (a FIFO, socket or device)" };
            return Err(HoraceError::new(
                ErrorCode::NotARegularFile,
                format!("{} is {what}; give the path of a regular file", self.absolute(rel.as_str())),
            ));
        }
        Ok((file, metadata))
    }

    /// Opens (creating the folders when `create`) the directory that holds
    /// `rel`, beneath the root, for an atomic write into it.
    pub fn open_parent(&self, rel: &RelPath, create: bool) -> Result<Dir> {
        let Some(parent) = rel.parent() else {
            return self.dir.try_clone().map_err(|e| self.path_error(e, rel));
        };
        let dir = match self.dir.open_dir(parent) {
            // Create only what is really missing: a symlink that leads out
            // must be reported as such, not as "exists".
            Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                self.dir.create_dir_all(parent).map_err(|e| self.path_error(e, rel))?;
                self.dir.open_dir(parent).map_err(|e| self.path_error(e, rel))?
            }
            opened => opened.map_err(|e| self.path_error(e, rel))?,
        };
        self.refuse_reserved(&dir, rel)?;
        Ok(dir)
    }

    /// Refuses a file or folder opened for `rel` that really lies in
    /// [`RESERVED_DIR`]: `rel` passed the lexical check, but a symlink on
    /// the way (`h -> .horace/objects`) can still lead there. The kernel
    /// says where the open handle is (`/proc/self/fd`), so this holds
    /// whatever the path's symlinks were when it was opened.
    fn refuse_reserved(&self, opened: &impl AsFd, rel: &RelPath) -> Result<()> {
        let link = format!("/proc/self/fd/{}", opened.as_fd().as_raw_fd());
        let real = std::fs::read_link(&link).map_err(|e| {
            HoraceError::new(
                ErrorCode::IoError,
                format!(
                    "cannot tell where {} really is ({link}: {e}); Horace needs /proc mounted to keep {RESERVED_DIR}/ \
                     out of reach",
                    self.absolute(rel.as_str())
                ),
            )
            .with_source(e)
        })?;
        if real.starts_with(&self.reserved) {
            return Err(HoraceError::new(
                ErrorCode::PathReserved,
                format!(
                    "{} leads through a symlink into {RESERVED_DIR}/, where Horace keeps stored versions; choose \
                     another path",
                    self.absolute(rel.as_str())
                ),
            ));
        }
        Ok(())
    }

    /// Turns a failed open of `rel` into an error a caller can act on.
    pub fn path_error(&self, e: io::Error, rel: &RelPath) -> HoraceError {
        let shown = self.absolute(rel.as_str());
        if is_escape(&e) {
            return HoraceError::new(
                ErrorCode::PathOutsideRoot,
                format!(
                    "{shown} resolves outside the storage root {} through a symlink (an absolute symlink counts as \
                     leaving); Horace reads and writes only inside the root",
                    self.shown.display()
                ),
            )
            .with_source(e);
        }
        let (code, what) = match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
            _ if e.kind() == io::ErrorKind::NotFound => (ErrorCode::PathNotFound, "does not exist"),
            Some(rustix::io::Errno::NOTDIR) => (ErrorCode::PathNotFound, "does not exist (a folder in it is a file)"),
            Some(rustix::io::Errno::LOOP) => (ErrorCode::InvalidPath, "has a symlink loop"),
            Some(rustix::io::Errno::NAMETOOLONG) => (ErrorCode::InvalidPath, "is too long for the filesystem"),
            Some(rustix::io::Errno::NXIO) => (ErrorCode::NotARegularFile, "is a socket or device, not a regular file"),
            Some(rustix::io::Errno::ISDIR) => (ErrorCode::NotARegularFile, "is a directory"),
            _ if e.kind() == io::ErrorKind::PermissionDenied => {
                (ErrorCode::PermissionDenied, "cannot be accessed: permission denied")
            }
            _ => (ErrorCode::IoError, "could not be accessed"),
        };
        HoraceError::new(code, format!("{shown} {what} ({e})")).with_source(e)
    }
}

/// cap-std reports a path that would leave the root as PermissionDenied
/// with no OS error number (openat2's EXDEV, or its own walk's refusal).
fn is_escape(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied && e.raw_os_error().is_none()
}

/// Removes `.` components and trailing slashes without touching the disk.
fn lexically_clean(path: &Path) -> PathBuf {
    path.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, StorageRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = StorageRoot::open(&dir.path().join("files")).unwrap();
        (dir, root)
    }

    #[test]
    fn relative_and_absolute_paths_name_one_file() {
        let (_dir, root) = root();
        let abs = format!("{}/a/b.txt", root.path().display());
        assert_eq!(root.resolve("a/b.txt").unwrap().as_str(), "a/b.txt");
        assert_eq!(root.resolve("./a//./b.txt").unwrap().as_str(), "a/b.txt");
        assert_eq!(root.resolve(&abs).unwrap().as_str(), "a/b.txt");
        assert_eq!(root.resolve("a/b.txt").unwrap().extension().as_deref(), Some("txt"));
        assert_eq!(root.resolve(".bashrc").unwrap().extension(), None);
    }

    #[test]
    fn lexical_escapes_and_bad_paths_are_refused() {
        let (_dir, root) = root();
        let code = |p: &str| root.resolve(p).unwrap_err().code();
        assert_eq!(code("../x"), ErrorCode::PathOutsideRoot);
        assert_eq!(code("a/../../x"), ErrorCode::PathOutsideRoot);
        assert_eq!(code("a/../b"), ErrorCode::PathOutsideRoot);
        assert_eq!(code("/etc/passwd"), ErrorCode::PathOutsideRoot);
        let sibling = format!("{}-other/x", root.path().display());
        assert_eq!(code(&sibling), ErrorCode::PathOutsideRoot);
        assert_eq!(code("a\0b"), ErrorCode::InvalidPath);
        assert_eq!(code(""), ErrorCode::InvalidPath);
        assert_eq!(code(&"x".repeat(300)), ErrorCode::InvalidPath);
        assert_eq!(code(".horace/objects/x"), ErrorCode::PathReserved);
        assert_eq!(code("."), ErrorCode::NotARegularFile);
    }
}
