//! Dewey's one error type: every tool failure a caller can see, each saying
//! what to fix.

use std::fmt;

/// What went wrong, in words a model can act on. The `Display` text is what
/// the caller gets as the `isError` result.
#[derive(Debug, thiserror::Error)]
pub enum DeweyError {
    /// The arguments were well-formed JSON but not acceptable (bad UUID,
    /// limit out of range, unparsable timestamp, ...). Nothing was written.
    #[error("{0}")]
    InvalidInput(String),
    /// The thing named by the arguments does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The write would break an invariant (a turn number already taken,
    /// deleting the active startup context without `force`).
    #[error("{0}")]
    Conflict(String),
    /// `messages_file` could not be used: outside the allowed directory,
    /// missing, unreadable or malformed.
    #[error("{0}")]
    File(String),
    /// The database failed. Not the caller's fault; the cause is kept.
    #[error("storage error: {message}")]
    Storage {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl DeweyError {
    pub fn invalid(message: impl fmt::Display) -> Self {
        DeweyError::InvalidInput(message.to_string())
    }

    pub fn not_found(message: impl fmt::Display) -> Self {
        DeweyError::NotFound(message.to_string())
    }

    pub fn storage(message: impl fmt::Display) -> Self {
        DeweyError::Storage { message: message.to_string(), source: None }
    }

    pub fn is_invalid_input(&self) -> bool {
        matches!(self, DeweyError::InvalidInput(_))
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, DeweyError::NotFound(_))
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, DeweyError::Conflict(_))
    }

    pub fn is_file(&self) -> bool {
        matches!(self, DeweyError::File(_))
    }

    pub fn is_storage(&self) -> bool {
        matches!(self, DeweyError::Storage { .. })
    }
}

pub type Result<T, E = DeweyError> = std::result::Result<T, E>;
