use regulars_core::access::Denied;
use regulars_core::DomainError;
use regulars_store::StoreError;
use thiserror::Error;

/// Why a use case did not happen. The HTTP layer maps each variant to a
/// status and a stable `code` in one place (`http::error`).
#[derive(Debug, Error)]
pub enum AppError {
    /// The input broke a domain rule (bad phone, bad date, bad field).
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// Well-formed, but refers to something that makes it impossible.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// A signed link (a table's QR code) that is forged or past its date.
    #[error("{message}")]
    BadLink { expired: bool, message: String },
    /// A segment expression that does not parse or type-check.
    #[error(transparent)]
    BadSegment(#[from] regulars_core::segment::ParseError),
    #[error("too many attempts; try again later")]
    TooManyRequests,
    #[error("storage failure")]
    Store(#[from] StoreError),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::Unprocessable {
            code,
            message: message.into(),
        }
    }
}
