//! Opening the store: the engine from the URL, each engine's connection settings, and the
//! schema brought up to date (`migrations/` for SQLite, `migrations/postgres/` for Postgres: the
//! same versions, each in its engine's dialect).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, PgPool, SqlitePool};

use super::writer::Writer;
use super::{Durability, Engine, StoreError};

/// Connections each node keeps to Postgres: enough for a node's concurrent appends and reads,
/// few enough that several nodes stay well under Postgres' default `max_connections` (100).
const POSTGRES_CONNECTIONS: u32 = 16;

/// How long a statement waits for a free connection before the store reports an error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which engine a store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Sqlite,
    Postgres,
}

/// The engine `url` names, or why it names none.
pub(super) fn kind(url: &str) -> Result<Kind, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Kind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Kind::Postgres)
    } else {
        Err(StoreError::UnsupportedUrl(redact(url)))
    }
}

/// Opens the pool `url` names and migrates it; for SQLite also starts the writer that commits
/// appends in groups.
pub(super) async fn open(
    url: &str,
    durability: Durability,
) -> Result<(Engine<SqlitePool, PgPool>, Option<Writer>), StoreError> {
    Ok(match kind(url)? {
        Kind::Sqlite => {
            let (pool, writer) = open_sqlite(url, durability).await?;
            (Engine::Sqlite(pool), Some(writer))
        }
        Kind::Postgres => (
            Engine::Postgres(open_postgres(url, durability).await?),
            None,
        ),
    })
}

async fn open_sqlite(
    url: &str,
    durability: Durability,
) -> Result<(SqlitePool, Writer), StoreError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_default();
    if let Some(parent) = std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        if !path.starts_with(':') {
            std::fs::create_dir_all(parent).map_err(StoreError::Folder)?;
        }
    }
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        // Checkpoints run beside the writers, not inside their commits (`checkpoint.rs`).
        .pragma("wal_autocheckpoint", "0");
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    let writer = Writer::start(&options).await?;
    Ok((pool, writer))
}

async fn open_postgres(url: &str, durability: Durability) -> Result<PgPool, StoreError> {
    let unreachable = |source| StoreError::Unreachable {
        url: redact(url),
        source,
    };
    let options = PgConnectOptions::from_str(url).map_err(unreachable)?;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if durability == Durability::Normal {
                    conn.execute("SET synchronous_commit = off").await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(unreachable)?;
    // Several nodes starting at once: sqlx holds an advisory lock while it migrates, so one
    // migrates and the others find the schema up to date.
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}

/// `url` without its password, for messages and logs.
pub(super) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_comes_from_the_url_and_an_unknown_one_says_what_to_write() {
        assert_eq!(kind("sqlite://data/x.db").unwrap(), Kind::Sqlite);
        assert_eq!(kind("sqlite::memory:").unwrap(), Kind::Sqlite);
        assert_eq!(kind("postgres://u@h/db").unwrap(), Kind::Postgres);
        assert_eq!(kind("postgresql://u@h/db").unwrap(), Kind::Postgres);
        let refused = kind("mysql://root:hunter2@h/db").unwrap_err().to_string();
        assert!(refused.contains("postgres://"), "{refused}");
        assert!(
            !refused.contains("hunter2"),
            "the password is printed: {refused}"
        );
    }

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/frontdesk"),
            "postgres://app:***@db:5432/frontdesk"
        );
        assert_eq!(redact("postgres://db/frontdesk"), "postgres://db/frontdesk");
    }

    /// Every SQLite migration has its Postgres twin (same version and name), and no Postgres
    /// migration is missing its SQLite one: a schema change made for one engine only fails here.
    #[test]
    fn both_dialects_have_the_same_migrations() {
        let names = |dir: &str| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            names.sort();
            names
        };
        let root = env!("CARGO_MANIFEST_DIR");
        let sqlite = names(&format!("{root}/migrations"));
        let postgres = names(&format!("{root}/migrations/postgres"));
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite, postgres,
            "add the Postgres dialect of each migration to migrations/postgres/ under the same name"
        );
    }
}
