//! Organisation → brands → regions → stores. Codes are what POS systems and
//! scripts use to name a store, so they are short, stable and ASCII.

use crate::{DomainError, Result};

/// Check a brand, region or store code: 1–32 of `A-Z a-z 0-9 _ -`.
pub fn parse_code(field: &'static str, code: &str) -> Result<String> {
    let code = code.trim();
    if code.is_empty() || code.len() > 32 {
        return Err(DomainError::invalid(field, "must be 1 to 32 characters"));
    }
    if !code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(DomainError::invalid(
            field,
            "may contain only letters, digits, `_` and `-`",
        ));
    }
    Ok(code.to_string())
}

/// Check a display name (store, brand, region, city): 1–100 characters.
pub fn parse_name(field: &'static str, name: &str) -> Result<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > 100 {
        return Err(DomainError::invalid(field, "must be 1 to 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// The brand stores belong to when none is named.
pub const DEFAULT_BRAND: &str = "default";

/// Region codes are derived from their names when a store names a region that
/// does not exist yet, so `华西` and `west` both work.
pub fn region_code(brand: &str, region_name: &str) -> String {
    format!("{brand}:{region_name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(parse_code("code", " CD-01 ").unwrap(), "CD-01");
        assert!(parse_code("code", "").is_err());
        assert!(parse_code("code", "成都01").is_err());
        assert!(parse_code("code", "a b").is_err());
        assert!(parse_code("code", &"x".repeat(33)).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("name", "春熙路店").unwrap(), "春熙路店");
        assert!(parse_name("name", "  ").is_err());
        assert!(parse_name("name", "a\u{0}b").is_err());
    }
}
