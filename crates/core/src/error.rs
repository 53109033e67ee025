use thiserror::Error;

/// A rule of the domain was broken by the input. Every variant says which
/// field was wrong and why, in words a POS integrator can act on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    #[error("invalid phone number: {0}")]
    InvalidPhone(String),
    #[error("invalid date {field}: {reason}")]
    InvalidDate { field: &'static str, reason: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("personal data could not be decrypted (wrong master key or moved ciphertext)")]
    Decrypt,
    #[error("invalid master key: {0}")]
    MasterKey(String),
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;
