//! Configuration: `regulars.toml` (optional) then the environment; the
//! environment wins. Secrets never appear in `Debug` output.

use regulars_core::privacy::MasterKey;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/regulars.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_TZ: &str = "Asia/Shanghai";

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: String,
    pub master_key: Option<MasterKey>,
    /// IANA name of the chain's time zone (business days, birthdays, windows).
    pub timezone: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field("master_key", &self.master_key.as_ref().map(|_| "(set)"))
            .field("timezone", &self.timezone)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://app:s3cret@db:5432/regulars"),
            "postgres://app:***@db:5432/regulars"
        );
        assert_eq!(
            super::redact_url("sqlite://data/regulars.db"),
            "sqlite://data/regulars.db"
        );
    }
}
