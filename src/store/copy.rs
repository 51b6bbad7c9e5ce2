//! Copying a whole store into another (`frontdesk store migrate --to postgres://…`): a single
//! node's SQLite file moved into the Postgres that several nodes will share. Every table, every
//! row, the ids kept, in one transaction on the target, which must be empty.

use sqlx::Row;

use super::{Engine, Store, StoreError};

/// How a column is read from one engine and written to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TEXT, perhaps NULL.
    Text,
    /// BIGINT (or SQLite INTEGER), perhaps NULL.
    Int,
    /// A double.
    Real,
    /// BOOLEAN.
    Bool,
}

/// One value on its way.
#[derive(Debug, Clone)]
enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Real(f64),
    Bool(bool),
}

/// A table, its key order (so the copy reads in pages and keeps the order), and its columns.
struct Table {
    name: &'static str,
    order: &'static str,
    columns: &'static [(&'static str, Kind)],
}

use Kind::{Bool, Int, Real, Text};

/// Every table of the schema (both dialects' migrations), parents before the tables that refer to
/// them. A test checks this list against the migrated schema, so a new column cannot be forgotten.
const TABLES: &[Table] = &[
    Table {
        name: "conversations",
        order: "id",
        columns: &[
            ("id", Text),
            ("session_hash", Text),
            ("state", Text),
            ("visitor", Text),
            ("last_seq", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("customer_key", Text),
        ],
    },
    Table {
        name: "events",
        order: "conversation_id, seq",
        columns: &[
            ("conversation_id", Text),
            ("seq", Int),
            ("sender", Text),
            ("client_id", Text),
            ("text", Text),
            ("body", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "bot_turns",
        order: "conversation_id, seq",
        columns: &[
            ("conversation_id", Text),
            ("seq", Int),
            ("question", Text),
            ("outcome", Text),
            ("confidence", Real),
            ("article", Text),
            ("created_at", Int),
            ("handed_off", Bool),
        ],
    },
    Table {
        name: "feedback",
        order: "conversation_id, seq",
        columns: &[
            ("conversation_id", Text),
            ("seq", Int),
            ("helpful", Bool),
            ("created_at", Int),
        ],
    },
    Table {
        name: "agents",
        order: "id",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("email", Text),
            ("password_hash", Text),
            ("role", Text),
            ("teams", Text),
            ("max_chats", Int),
            ("created_at", Int),
            ("disabled_at", Int),
            ("demo", Bool),
            ("tokens_revoked_at", Int),
        ],
    },
    Table {
        name: "agent_tokens",
        order: "token_hash",
        columns: &[
            ("token_hash", Text),
            ("agent_id", Text),
            ("expires_at", Int),
            ("created_at", Int),
        ],
    },
    Table {
        name: "handoffs",
        order: "id",
        columns: &[
            ("id", Int),
            ("conversation_id", Text),
            ("reasons", Text),
            ("team", Text),
            ("priority", Int),
            ("agent_id", Text),
            ("escalated_at", Int),
            ("claimed_at", Int),
            ("first_response_at", Int),
            ("resolved_at", Int),
            ("csat_score", Int),
            ("csat_comment", Text),
            ("abandoned_at", Int),
        ],
    },
    Table {
        name: "notes",
        order: "id",
        columns: &[
            ("id", Int),
            ("conversation_id", Text),
            ("agent_id", Text),
            ("agent_name", Text),
            ("text", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "turn_signals",
        order: "conversation_id, seq",
        columns: &[
            ("conversation_id", Text),
            ("seq", Int),
            ("understanding", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "tickets",
        order: "id",
        columns: &[
            ("id", Int),
            ("conversation_id", Text),
            ("email", Text),
            ("message", Text),
            ("team", Text),
            ("status", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "choices",
        order: "conversation_id, seq",
        columns: &[
            ("conversation_id", Text),
            ("seq", Int),
            ("question", Text),
            ("options", Text),
            ("picked", Text),
            ("picked_at", Int),
            ("picks", Int),
            ("created_at", Int),
        ],
    },
    Table {
        name: "session_tokens",
        order: "token_hash",
        columns: &[
            ("token_hash", Text),
            ("conversation_id", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "leases",
        order: "name",
        columns: &[("name", Text), ("holder", Text), ("expires_at", Int)],
    },
];

/// Tables whose `id` the database gives out (identity columns in Postgres): after a copy with
/// explicit ids, Postgres is told to go on after the highest.
const GENERATED_IDS: &[&str] = &["handoffs", "notes", "tickets"];

/// Rows read and written per statement.
const PAGE: i64 = 500;

/// What a copy moved: rows per table, in the order copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// `(table, rows)`.
    pub tables: Vec<(&'static str, u64)>,
}

impl Copied {
    /// Rows copied in all.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

impl Store {
    /// Copies every row of this store into `target` (another engine, or the same), in one
    /// transaction on the target; the target must hold no conversations and no accounts. Ids,
    /// sequence numbers and times are kept, so sessions, tokens and links go on working against
    /// the target. Stop the servers writing to this store first: rows written during the copy may
    /// be missed.
    pub async fn copy_to(&self, target: &Store) -> Result<Copied, StoreError> {
        let held = target.count("conversations").await? + target.count("agents").await?;
        if held > 0 {
            return Err(StoreError::TargetNotEmpty(held));
        }
        let mut copied = Vec::with_capacity(TABLES.len());
        on!(&target.pool, pool => {
            let mut tx = pool.begin().await?;
            for table in TABLES {
                let mut rows = 0u64;
                loop {
                    let page = self.page(table, rows as i64).await?;
                    if page.is_empty() {
                        break;
                    }
                    let sql = insert_statement(table, page.len());
                    let mut insert = sqlx::query(&sql);
                    for cell in page.iter().flatten() {
                        insert = match cell {
                            Cell::Text(v) => insert.bind(v.clone()),
                            Cell::Int(v) => insert.bind(*v),
                            Cell::Real(v) => insert.bind(*v),
                            Cell::Bool(v) => insert.bind(*v),
                        };
                    }
                    insert.execute(&mut *tx).await?;
                    rows += page.len() as u64;
                }
                copied.push((table.name, rows));
            }
            tx.commit().await?;
        });
        if let Engine::Postgres(pool) = &target.pool {
            for table in GENERATED_IDS {
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                ))
                .execute(pool)
                .await?;
            }
        }
        if let Engine::Sqlite(pool) = &target.pool {
            // Automatic checkpoints are off (`checkpoint.rs`) and the command exits next: the
            // copy goes into the database file itself, not only its write-ahead log.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await?;
        }
        Ok(Copied { tables: copied })
    }

    /// Rows in `table` (one of the schema's).
    async fn count(&self, table: &str) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        on!(&self.pool, pool => {
            Ok(sqlx::query(&sql).fetch_one(pool).await?.get::<i64, _>(0))
        })
    }

    /// Up to [`PAGE`] rows of `table` from the `offset`th, in key order.
    async fn page(&self, table: &Table, offset: i64) -> Result<Vec<Vec<Cell>>, StoreError> {
        let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {} LIMIT $1 OFFSET $2",
            names.join(", "),
            table.name,
            table.order
        );
        on!(&self.pool, pool => {
            let rows = sqlx::query(&sql).bind(PAGE).bind(offset).fetch_all(pool).await?;
            let mut page = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut cells = Vec::with_capacity(table.columns.len());
                for (i, (_, kind)) in table.columns.iter().enumerate() {
                    cells.push(match kind {
                        Kind::Text => Cell::Text(row.try_get(i)?),
                        Kind::Int => Cell::Int(row.try_get(i)?),
                        Kind::Real => Cell::Real(row.try_get(i)?),
                        Kind::Bool => Cell::Bool(row.try_get(i)?),
                    });
                }
                page.push(cells);
            }
            Ok(page)
        })
    }
}

/// `INSERT INTO table (columns) VALUES ($1, …), (…)` for `rows` rows.
fn insert_statement(table: &Table, rows: usize) -> String {
    let width = table.columns.len();
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        names.join(", "),
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copy knows every table and column of the migrated schema, with the right kind: a
    /// migration that adds one must add it here too, or this fails.
    #[tokio::test]
    async fn the_copy_knows_every_column_of_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await
            .unwrap();
        let Engine::Sqlite(pool) = &store.pool else {
            unreachable!()
        };
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut known: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        known.sort();
        assert_eq!(
            tables, known,
            "add the table to TABLES in src/store/copy.rs"
        );
        for table in TABLES {
            let columns: Vec<(String, String)> = sqlx::query(&format!(
                "SELECT name, type FROM pragma_table_info('{}')",
                table.name
            ))
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
            let mut schema: Vec<(String, Kind)> = columns
                .into_iter()
                .map(|(name, ty)| {
                    let kind = match ty.as_str() {
                        "TEXT" => Kind::Text,
                        "BIGINT" | "INTEGER" => Kind::Int,
                        "REAL" => Kind::Real,
                        "BOOLEAN" => Kind::Bool,
                        other => panic!(
                            "{}.{name}: a column type the copy does not know: {other}",
                            table.name
                        ),
                    };
                    (name, kind)
                })
                .collect();
            let mut listed: Vec<(String, Kind)> = table
                .columns
                .iter()
                .map(|(name, kind)| (name.to_string(), *kind))
                .collect();
            schema.sort_by(|a, b| a.0.cmp(&b.0));
            listed.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(
                listed, schema,
                "the columns of {} in src/store/copy.rs",
                table.name
            );
        }
    }

    /// A copy into SQLite ends in the database file itself: automatic checkpoints are off and
    /// `frontdesk store migrate` exits right after, so the copy empties the write-ahead log.
    #[tokio::test]
    async fn a_copy_into_sqlite_is_in_the_database_file_not_only_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
        let source = Store::connect(&url("from.db")).await.unwrap();
        source
            .create_conversation("c1", "s1", "{}", 1)
            .await
            .unwrap();
        let target = Store::connect(&url("to.db")).await.unwrap();
        source.copy_to(&target).await.unwrap();
        let log = std::fs::metadata(dir.path().join("to.db-wal")).map_or(0, |m| m.len());
        assert_eq!(log, 0, "the copy is checkpointed and the log emptied");
        // Read without the log: the database file alone holds the copy.
        let conversations: i64 = sqlx::query("SELECT COUNT(*) FROM conversations")
            .fetch_one(
                &mut <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                    "sqlite://{}?mode=ro&immutable=1",
                    dir.path().join("to.db").display()
                ))
                .await
                .unwrap(),
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(conversations, 1);
    }

    #[test]
    fn the_insert_numbers_every_value_of_every_row() {
        let table = &TABLES[3];
        assert_eq!(
            insert_statement(table, 2),
            "INSERT INTO feedback (conversation_id, seq, helpful, created_at) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)"
        );
    }
}
