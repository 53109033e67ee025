//! Where the settings come from: flag, then environment, then
//! `regulars.toml`, then the default. The master key comes from
//! `REGULARS_MASTER_KEY` or, on SQLite only, a key file beside the database
//! (created with mode 0600 on first use).

use anyhow::{bail, Context};
use regulars_core::privacy::MasterKey;
use regulars_server::config::{Config, DEFAULT_DATABASE_URL, DEFAULT_LISTEN, DEFAULT_TZ};
use regulars_store::Backend;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `regulars.toml`; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub timezone: Option<String>,
    /// Path of a file holding the base64 master key.
    pub master_key_file: Option<PathBuf>,
}

pub fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    if !path.exists() {
        return Ok(FileSettings::default());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

pub struct Overrides {
    pub database_url: Option<String>,
    pub listen: Option<String>,
}

pub fn resolve(file: &FileSettings, flags: Overrides) -> anyhow::Result<Config> {
    let database_url = flags
        .database_url
        .or_else(|| file.database_url.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
    let listen = flags
        .listen
        .or_else(|| std::env::var("REGULARS_LISTEN").ok())
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let timezone = std::env::var("REGULARS_TZ")
        .ok()
        .or_else(|| file.timezone.clone())
        .unwrap_or_else(|| DEFAULT_TZ.to_string());
    timezone
        .parse::<chrono_tz::Tz>()
        .map_err(|_| anyhow::anyhow!("REGULARS_TZ `{timezone}` is not an IANA time zone"))?;
    let master_key = match std::env::var("REGULARS_MASTER_KEY") {
        Ok(text) => Some(MasterKey::from_base64(&text).context("REGULARS_MASTER_KEY")?),
        Err(_) => match &file.master_key_file {
            Some(path) => Some(read_key_file(path)?),
            None => None,
        },
    };
    Ok(Config {
        database_url,
        listen,
        master_key,
        timezone,
    })
}

fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the master key file {}", path.display()))?;
    MasterKey::from_base64(&text).with_context(|| format!("master key file {}", path.display()))
}

/// The master key to use: configured, or on SQLite the key file beside the
/// database (made on first use). PostgreSQL without a key is refused.
pub fn master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(key) = &config.master_key {
        return Ok(key.clone());
    }
    match Backend::from_url(&config.database_url) {
        Some(Backend::Sqlite) => {
            let db_path = regulars_store::db::sqlite_path(&config.database_url);
            let dir = Path::new(&db_path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let key_path = dir.join("master.key");
            if key_path.exists() {
                return read_key_file(&key_path);
            }
            std::fs::create_dir_all(dir)?;
            let key = MasterKey::generate();
            write_private(&key_path, &key.to_base64())?;
            eprintln!(
                "created master key file {} (mode 0600); keep it out of backups of the database",
                key_path.display()
            );
            Ok(key)
        }
        Some(Backend::Postgres) => bail!(
            "no master key: set REGULARS_MASTER_KEY (base64 of 32 random bytes, e.g. `openssl rand -base64 32`); \
             on PostgreSQL Regulars will not make one up"
        ),
        None => bail!("database URL must start with sqlite:// or postgres://"),
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text)?;
    }
    Ok(())
}
