//! Horace's one error type. Every failure a caller can see has a stable
//! `error_code` (the seed's `HoraceError.error_code`) and a message that says
//! what to fix. The text a tool call returns is `CODE: message`, so a model
//! reads the advice and a program can match the code before the first `:`.

use std::fmt;

/// The stable codes, one per thing the caller can do something about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// An argument is out of range or malformed (limit, timestamp, tag, name).
    InvalidInput,
    /// An id is not a UUID.
    InvalidId,
    /// The path is not usable as written: empty, NUL byte, too long.
    InvalidPath,
    /// The path leads outside the storage root (`..`, an absolute path
    /// elsewhere, a symlink that escapes, whether there all along or swapped
    /// in while Horace was resolving it).
    PathOutsideRoot,
    /// The path is inside Horace's own `.horace` folder (the version store).
    PathReserved,
    /// Nothing exists at the path.
    PathNotFound,
    /// Something exists at the path but it is not a regular file (a
    /// directory, a FIFO, a socket, a device).
    NotARegularFile,
    /// The operating system refused access to the file.
    PermissionDenied,
    /// No cataloged file has this `file_id`.
    FileNotFound,
    /// The file has no such version.
    VersionNotFound,
    /// A collection was given `file_ids` that are not cataloged.
    UnknownFileIds,
    /// The stored content of a version is missing or does not match its
    /// checksum; nothing was written.
    VersionContentUnavailable,
    /// Reading or writing a file failed (disk full, I/O error).
    IoError,
    /// The catalog database failed. Not the caller's fault.
    CatalogError,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::InvalidInput,
        ErrorCode::InvalidId,
        ErrorCode::InvalidPath,
        ErrorCode::PathOutsideRoot,
        ErrorCode::PathReserved,
        ErrorCode::PathNotFound,
        ErrorCode::NotARegularFile,
        ErrorCode::PermissionDenied,
        ErrorCode::FileNotFound,
        ErrorCode::VersionNotFound,
        ErrorCode::UnknownFileIds,
        ErrorCode::VersionContentUnavailable,
        ErrorCode::IoError,
        ErrorCode::CatalogError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::InvalidId => "INVALID_ID",
            ErrorCode::InvalidPath => "INVALID_PATH",
            ErrorCode::PathOutsideRoot => "PATH_OUTSIDE_ROOT",
            ErrorCode::PathReserved => "PATH_RESERVED",
            ErrorCode::PathNotFound => "PATH_NOT_FOUND",
            ErrorCode::NotARegularFile => "NOT_A_REGULAR_FILE",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::FileNotFound => "FILE_NOT_FOUND",
            ErrorCode::VersionNotFound => "VERSION_NOT_FOUND",
            ErrorCode::UnknownFileIds => "UNKNOWN_FILE_IDS",
            ErrorCode::VersionContentUnavailable => "VERSION_CONTENT_UNAVAILABLE",
            ErrorCode::IoError => "IO_ERROR",
            ErrorCode::CatalogError => "CATALOG_ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure with its code. `Display` is what the caller sees.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HoraceError {
    code: ErrorCode,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl HoraceError {
    pub fn new(code: ErrorCode, message: impl fmt::Display) -> Self {
        HoraceError { code, message: message.to_string(), source: None }
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn invalid(message: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn catalog(message: impl fmt::Display) -> Self {
        Self::new(ErrorCode::CatalogError, message)
    }

    pub fn file_not_found(file_id: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::FileNotFound,
            format!("no cataloged file has file_id {file_id}; find ids with horace_search_files"),
        )
    }
}

impl From<tokio_postgres::Error> for HoraceError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The bare Display of a server error is only "db error".
        let message = match e.as_db_error() {
            Some(db) => format!("PostgreSQL {}: {}", db.severity(), db.message()),
            None => format!("PostgreSQL: {e}"),
        };
        HoraceError::catalog(message).with_source(e)
    }
}

impl From<deadpool_postgres::PoolError> for HoraceError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        HoraceError::catalog(format!("no PostgreSQL connection: {e}")).with_source(e)
    }
}

impl From<rusqlite::Error> for HoraceError {
    fn from(e: rusqlite::Error) -> Self {
        HoraceError::catalog(format!("SQLite: {e}")).with_source(e)
    }
}

pub type Result<T, E = HoraceError> = std::result::Result<T, E>;
