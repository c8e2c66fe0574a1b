//! One way to run SQL on either backend: SQLite (rusqlite, embedded, the default) or PostgreSQL
//! (rust-postgres' `tokio_postgres` client, for several nodes).
//!
//! Store functions are written once against [`Conn`] and [`Tx`], in the SQL both engines accept:
//! `?N` placeholders (turned into `$N` for PostgreSQL), `ON CONFLICT … DO …`, `RETURNING`, row
//! values, `CAST(SUM(…) AS BIGINT)`. Values cross as [`Value`]: integers (booleans are 0/1 on both
//! sides, so every integer column is `BIGINT` on PostgreSQL), reals, text, bytes, NULL. The few
//! places where the engines differ (full-text search, planner hints) ask [`Conn::backend`].

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Result, StoreError};

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A driver failure (either engine), or a row that is not what the code expected.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool in time.
    #[error("postgres pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A query expected one row and found none.
    #[error("query returned no rows")]
    NoRows,
    /// A column held a value of another type than the code reads.
    #[error("column {column}: {reason}")]
    Type {
        /// Column index.
        column: usize,
        /// What was found.
        reason: String,
    },
}

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// Any integer, and booleans as 0/1.
    Int(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(std::borrow::Cow<'a, str>),
    /// Bytes.
    Blob(std::borrow::Cow<'a, [u8]>),
}

/// Something that can be bound as a parameter.
pub trait ToValue {
    /// This value as a [`Value`].
    fn to_value(&self) -> Value<'_>;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_to_value!(i64, i32, u32, u16, u8, usize);

impl ToValue for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}
impl ToValue for f32 {
    fn to_value(&self) -> Value<'_> {
        Value::Real(f64::from(*self))
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self.into())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self.as_str().into())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self.into())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self.as_slice().into())
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self.as_slice().into())
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}
impl ToValue for Value<'_> {
    fn to_value(&self) -> Value<'_> {
        self.clone()
    }
}

/// Parameters of one statement, in `?1…?N` order.
pub type Params<'p> = &'p [&'p dyn ToValue];

/// `params![a, b, c]`: a statement's parameters.
#[macro_export]
macro_rules! sql_params {
    () => { &[] as &[&dyn $crate::store::sql::ToValue] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::sql::ToValue),+] as &[&dyn $crate::store::sql::ToValue] };
}
pub use crate::sql_params as params;

/// Something that can be read from a column.
pub trait FromValue: Sized {
    /// Converts the column's value, or says why not.
    fn from_value(v: Value<'_>) -> std::result::Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(v: Value<'_>) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}
macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value<'_>) -> std::result::Result<Self, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range"))
            }
        }
    )*};
}
int_from_value!(i32, u32, u16, u8, u64, usize);

impl FromValue for bool {
    fn from_value(v: Value<'_>) -> std::result::Result<Self, String> {
        Ok(i64::from_value(v)? != 0)
    }
}
impl FromValue for f64 {
    fn from_value(v: Value<'_>) -> std::result::Result<Self, String> {
        match v {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a real, found {other:?}")),
        }
    }
}
impl FromValue for f32 {
    fn from_value(v: Value<'_>) -> std::result::Result<Self, String> {
        Ok(f64::from_value(v)? as f32)
    }
}
impl FromValue for String {
    fn from_value(v: Value<'_>) -> std::result::Result<Self, String> {
        match v {
            Value::Text(t) => Ok(t.into_owned()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: Value<'_>) -> std::result::Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.into_owned()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value<'_>) -> std::result::Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result.
pub enum Row<'r> {
    /// A SQLite row.
    Sqlite(&'r rusqlite::Row<'r>),
    /// A PostgreSQL row.
    Postgres(&'r tokio_postgres::Row),
}

impl Row<'_> {
    /// The value of column `idx` (from 0).
    pub fn get<T: FromValue>(&self, idx: usize) -> Result<T> {
        let value = match self {
            Row::Sqlite(r) => match r.get_ref(idx).map_err(DbError::from)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                rusqlite::types::ValueRef::Real(f) => Value::Real(f),
                rusqlite::types::ValueRef::Text(t) => Value::Text(
                    std::str::from_utf8(t)
                        .map_err(|e| type_error(idx, e.to_string()))?
                        .into(),
                ),
                rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.into()),
            },
            Row::Postgres(r) => r
                .try_get::<_, PgValue>(idx)
                .map_err(DbError::from)?
                .0
                .clone(),
        };
        T::from_value(value).map_err(|reason| type_error(idx, reason))
    }
}

fn type_error(column: usize, reason: String) -> StoreError {
    StoreError::Db(DbError::Type { column, reason })
}

/// `.optional()` on a single-row query: no row is `None`.
pub trait Optional<T> {
    /// `Ok(None)` when the query found no row.
    fn optional(self) -> Result<Option<T>>;
}

impl<T> Optional<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Db(DbError::NoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A PostgreSQL connection with its prepared statements (named by their SQLite text).
///
/// The connection's I/O runs as a task on the store's own runtime; calls here wait for their
/// answer with `futures_executor::block_on`, which (unlike a tokio runtime's) may be used on any
/// thread — a blocking-pool thread, the CLI's, or the server's start-up inside actix.
pub struct PgConn {
    pub(super) client: tokio_postgres::Client,
    statements: HashMap<String, tokio_postgres::Statement>,
}

impl PgConn {
    pub(super) fn new(client: tokio_postgres::Client) -> PgConn {
        PgConn {
            client,
            statements: HashMap::new(),
        }
    }

    /// Runs statements without parameters (simple query protocol).
    pub(super) fn batch_execute(&mut self, sql: &str) -> Result<()> {
        Ok(futures_executor::block_on(self.client.batch_execute(sql)).map_err(DbError::from)?)
    }

    fn statement(&mut self, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let prepared =
            futures_executor::block_on(self.client.prepare(&placeholders_for_postgres(sql)))
                .map_err(DbError::from)?;
        if self.statements.len() >= 512 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), prepared.clone());
        Ok(prepared)
    }

    fn run(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<tokio_postgres::Row>> {
        let stmt = self.statement(sql)?;
        let client = &self.client;
        Ok(with_pg_params(params, |refs| {
            futures_executor::block_on(client.query(&stmt, refs))
        })
        .map_err(DbError::from)?)
    }

    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<usize> {
        let stmt = self.statement(sql)?;
        let client = &self.client;
        let n = with_pg_params(params, |refs| {
            futures_executor::block_on(client.execute(&stmt, refs))
        })
        .map_err(DbError::from)?;
        Ok(n as usize)
    }
}

/// Calls `f` with `params` as PostgreSQL parameters.
fn with_pg_params<T>(
    params: Params<'_>,
    f: impl FnOnce(&[&(dyn tokio_postgres::types::ToSql + Sync)]) -> T,
) -> T {
    let values: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.to_value())).collect();
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
        .iter()
        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    f(&refs)
}

/// `?12` → `$12`, outside string literals.
pub fn placeholders_for_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_string = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '?' if !in_string => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// A connection (or the transaction running on it) that store functions read through.
pub struct Conn<'c> {
    inner: Inner<'c>,
}

enum Inner<'c> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(RefCell<&'c mut PgConn>),
}

impl<'c> Conn<'c> {
    pub(super) fn sqlite(conn: &'c rusqlite::Connection) -> Conn<'c> {
        Conn {
            inner: Inner::Sqlite(conn),
        }
    }

    pub(super) fn postgres(conn: &'c mut PgConn) -> Conn<'c> {
        Conn {
            inner: Inner::Postgres(RefCell::new(conn)),
        }
    }

    /// The engine behind this connection.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: Params<'_>) -> Result<usize> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(sqlite_params(params)))
                .map_err(DbError::from)?),
            Inner::Postgres(c) => c.borrow_mut().execute(sql, params),
        }
    }

    /// Runs several statements without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql).map_err(DbError::from)?),
            Inner::Postgres(c) => c.borrow_mut().batch_execute(sql),
        }
    }

    /// The first row, mapped by `f`; [`DbError::NoRows`] when there is none (see [`Optional`]).
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        match &self.inner {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql).map_err(DbError::from)?;
                let mut rows = stmt.query(sqlite_params(params)).map_err(DbError::from)?;
                match rows.next().map_err(DbError::from)? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(DbError::NoRows.into()),
                }
            }
            Inner::Postgres(c) => {
                let rows = c.borrow_mut().run(sql, params)?;
                match rows.first() {
                    Some(r) => f(&Row::Postgres(r)),
                    None => Err(DbError::NoRows.into()),
                }
            }
        }
    }

    /// Every row, mapped by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.for_each_row(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` on each row in turn (SQLite streams them; PostgreSQL's arrive together).
    pub fn for_each_row(
        &self,
        sql: &str,
        params: Params<'_>,
        mut f: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql).map_err(DbError::from)?;
                let mut rows = stmt.query(sqlite_params(params)).map_err(DbError::from)?;
                while let Some(r) = rows.next().map_err(DbError::from)? {
                    f(&Row::Sqlite(r))?;
                }
                Ok(())
            }
            Inner::Postgres(c) => {
                let rows = c.borrow_mut().run(sql, params)?;
                for r in &rows {
                    f(&Row::Postgres(r))?;
                }
                Ok(())
            }
        }
    }
}

/// A write transaction: everything a [`Conn`] does, inside `Store::write`.
pub struct Tx<'c>(pub(super) Conn<'c>);

impl<'c> std::ops::Deref for Tx<'c> {
    type Target = Conn<'c>;
    fn deref(&self) -> &Conn<'c> {
        &self.0
    }
}

fn sqlite_params<'p>(
    params: Params<'p>,
) -> rusqlite::ParamsFromIter<impl Iterator<Item = SqliteValue<'p>>> {
    rusqlite::params_from_iter(params.iter().map(|p| SqliteValue(p.to_value())))
}

struct SqliteValue<'a>(Value<'a>);

impl rusqlite::ToSql for SqliteValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match &self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A parameter encoded as the type PostgreSQL inferred for its placeholder.
#[derive(Debug)]
struct PgParam<'a>(Value<'a>);

impl tokio_postgres::types::ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use tokio_postgres::types::Type;
        match (&self.0, ty) {
            (Value::Null, _) => Ok(tokio_postgres::types::IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::TEXT | &Type::VARCHAR) => i.to_string().to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (Value::Text(t), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
                t.as_ref().to_sql(ty, out)
            }
            (Value::Text(t), &Type::UNKNOWN) => t.as_ref().to_sql(&Type::TEXT, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_ref().to_sql(ty, out),
            (v, ty) => Err(format!("cannot bind {v:?} as {ty}").into()),
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A column read from PostgreSQL, whatever its type.
struct PgValue(Value<'static>);

impl<'a> tokio_postgres::types::FromSql<'a> for PgValue {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::Type;
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                Value::Text(String::from_sql(ty, raw)?.into())
            }
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?.into()),
            ref other => return Err(format!("unsupported column type {other}").into()),
        }))
    }

    fn from_sql_null(
        _: &tokio_postgres::types::Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_outside_literals() {
        assert_eq!(
            placeholders_for_postgres("SELECT a FROM t WHERE b = ?1 AND c = '?' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $12"
        );
    }
}
