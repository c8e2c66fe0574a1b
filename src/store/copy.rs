//! Copies a single node's SQLite database into a PostgreSQL store (`kycd store migrate`): every
//! table, row for row, with ids, hashes and sealed values unchanged — sealed values stay sealed,
//! so the nodes that serve the copy need the same master key.
//!
//! Restartable: rows go in batches in SQLite's rowid order, and each batch commits together with
//! the table's progress (`kycd_copy_progress`), so an interrupted copy resumes after the last
//! batch it committed and no row is copied twice. The source is read in one read transaction, a
//! consistent snapshot even while its node runs; rows that node writes afterwards are not in it,
//! so the final run is made with the node stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::sql::Value;
use super::{params, Backend, Store, StoreError};

/// Rows per destination transaction.
const BATCH: i64 = 500;

/// One table's outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCount {
    /// The table.
    pub table: String,
    /// Rows in the source snapshot.
    pub source: i64,
    /// Rows in the destination afterwards.
    pub destination: i64,
}

/// What a step of the copy reports, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Starting a table of `rows` rows, `done` of them copied by an earlier run.
    Table {
        /// The table.
        name: &'a str,
        /// Rows in the source.
        rows: u64,
        /// Rows already copied.
        done: u64,
    },
    /// `n` more rows of the current table copied.
    Rows(u64),
}

/// Why the copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source database could not be read.
    #[error("the source database: {0}")]
    Source(#[from] rusqlite::Error),
    /// The destination failed.
    #[error("the destination: {0}")]
    Destination(#[from] StoreError),
    /// The destination is not PostgreSQL.
    #[error("the destination must be a PostgreSQL database")]
    NotPostgres,
    /// The destination holds data this copy did not put there.
    #[error("the destination already holds data ({table} has rows) that no earlier `kycd store migrate` copied; use an empty database")]
    NotEmpty {
        /// A table with rows.
        table: String,
    },
}

/// Tables that are not data: SQLite's own and the FTS5 index (PostgreSQL indexes the audit log
/// itself).
fn copied(table: &str) -> bool {
    !table.starts_with("sqlite_") && !table.starts_with("audit_fts")
}

/// The source's tables, parents before children (by their foreign keys).
fn tables_in_order(src: &Connection) -> Result<Vec<(String, Vec<String>)>, rusqlite::Error> {
    let names: Vec<String> = src
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?
        .into_iter()
        .filter(|n| copied(n))
        .collect();
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in &names {
        let refs: Vec<String> = src
            .prepare(&format!(
                "SELECT \"table\" FROM pragma_foreign_key_list('{n}')"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        parents.insert(
            n.clone(),
            refs.into_iter()
                .filter(|p| p != n && names.contains(p))
                .collect(),
        );
    }
    let mut ordered: Vec<String> = Vec::new();
    while ordered.len() < names.len() {
        let before = ordered.len();
        for n in &names {
            if !ordered.contains(n) && parents[n].iter().all(|p| ordered.contains(p)) {
                ordered.push(n.clone());
            }
        }
        assert!(ordered.len() > before, "foreign keys form a cycle");
    }
    ordered
        .into_iter()
        .map(|t| {
            let columns = src
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{t}') ORDER BY cid"
                ))?
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok((t, columns))
        })
        .collect()
}

fn owned(v: rusqlite::types::Value) -> Value<'static> {
    use rusqlite::types::Value as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) => Value::Int(i),
        V::Real(f) => Value::Real(f),
        V::Text(t) => Value::Text(t.into()),
        V::Blob(b) => Value::Blob(b.into()),
    }
}

/// Copies the SQLite database at `source` (already migrated to this binary's schema) into
/// `dest`, reporting progress; returns each table's counts.
pub fn copy_database(
    source: &Path,
    dest: &Store,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<TableCount>, CopyError> {
    if dest.backend() != Backend::Postgres {
        return Err(CopyError::NotPostgres);
    }
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    let tables = tables_in_order(&src)?;
    dest.write(|tx| {
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS kycd_copy_progress (tbl TEXT PRIMARY KEY, last_rowid BIGINT NOT NULL)",
        )
    })?;
    let resumed: i64 = dest.read(|c| {
        c.query_row("SELECT COUNT(*) FROM kycd_copy_progress", params![], |r| {
            r.get(0)
        })
    })?;
    if resumed == 0 {
        for (t, _) in &tables {
            let any: i64 = dest.read(|c| {
                c.query_row(
                    &format!("SELECT COUNT(*) FROM (SELECT 1 FROM {t} LIMIT 1) AS any_row"),
                    params![],
                    |r| r.get(0),
                )
            })?;
            if any > 0 {
                return Err(CopyError::NotEmpty { table: t.clone() });
            }
        }
    }
    // One snapshot of the source for every table.
    src.execute_batch("BEGIN DEFERRED")?;
    let mut counts = Vec::with_capacity(tables.len());
    for (table, columns) in &tables {
        let rows: i64 =
            src.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        let mut last: i64 = dest
            .read(|c| {
                super::Optional::optional(c.query_row(
                    "SELECT last_rowid FROM kycd_copy_progress WHERE tbl = ?1",
                    params![table],
                    |r| r.get(0),
                ))
            })?
            .unwrap_or(0);
        let done: i64 = src.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE rowid <= ?1"),
            [last],
            |r| r.get(0),
        )?;
        progress(Progress::Table {
            name: table,
            rows: rows as u64,
            done: done as u64,
        });
        let list = columns.join(", ");
        let select = format!(
            "SELECT rowid, {list} FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT {BATCH}"
        );
        let holes: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let insert = format!("INSERT INTO {table} ({list}) VALUES ({})", holes.join(", "));
        loop {
            let batch: Vec<(i64, Vec<Value<'static>>)> = src
                .prepare_cached(&select)?
                .query_map([last], |r| {
                    let rowid: i64 = r.get(0)?;
                    let values = (1..=columns.len())
                        .map(|i| r.get::<_, rusqlite::types::Value>(i).map(owned))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((rowid, values))
                })?
                .collect::<Result<_, _>>()?;
            let Some(&(upto, _)) = batch.last() else {
                break;
            };
            dest.write(|tx| {
                for (_, values) in &batch {
                    let refs: Vec<&dyn super::sql::ToValue> = values
                        .iter()
                        .map(|v| v as &dyn super::sql::ToValue)
                        .collect();
                    tx.execute(&insert, &refs)?;
                }
                tx.execute(
                    "INSERT INTO kycd_copy_progress (tbl, last_rowid) VALUES (?1, ?2) \
                     ON CONFLICT (tbl) DO UPDATE SET last_rowid = ?2",
                    params![table, upto],
                )?;
                Ok(())
            })?;
            last = upto;
            progress(Progress::Rows(batch.len() as u64));
        }
        let destination: i64 = dest.read(|c| {
            c.query_row(&format!("SELECT COUNT(*) FROM {table}"), params![], |r| {
                r.get(0)
            })
        })?;
        counts.push(TableCount {
            table: table.clone(),
            source: rows,
            destination,
        });
    }
    src.execute_batch("COMMIT")?;
    // Identity columns continue after the copied ids.
    dest.write(|tx| {
        let identities: Vec<(String, String)> = tx.query_map(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE is_identity = 'YES' AND table_schema = current_schema()",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        for (t, c) in identities {
            tx.execute_batch(&format!(
                "SELECT setval(pg_get_serial_sequence('{t}', '{c}'), COALESCE((SELECT MAX({c}) FROM {t}), 0) + 1, false)"
            ))?;
        }
        Ok(())
    })?;
    Ok(counts)
}
