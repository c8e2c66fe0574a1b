//! The PostgreSQL connection pool: r2d2 over rust-postgres' async client, whose connections run
//! on a small runtime the pool owns (see [`PgConn`] for how calls wait on them).

use std::sync::Arc;
use std::time::Duration;

use super::sql::PgConn;
use super::{DbError, Result, StoreError};
use crate::io_runtime::IoRuntime;

/// The key of the session advisory lock held while migrations run.
pub const MIGRATION_LOCK: i64 = 0x6b79_6364_6d69;
/// How a write transaction starts: with the transaction-scoped advisory lock 1803117412 ("kycd"
/// in ASCII), so writers are serialised across every node as SQLite serialises them on one file.
pub const BEGIN_WRITE: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(1803117412)";
/// Longest wait for a pooled connection before the caller is told the server is busy.
const CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// A pool of PostgreSQL connections.
pub type Pool = r2d2::Pool<Manager>;

/// Opens connections from a URL, on the pool's runtime.
pub struct Manager {
    config: tokio_postgres::Config,
    runtime: Arc<IoRuntime>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl Manager {
    fn connect_now(&self) -> std::result::Result<PgConn, tokio_postgres::Error> {
        let config = self.config.clone();
        let handle = self.runtime.handle().clone();
        let client = self.runtime.run(async move {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            handle.spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "PostgreSQL connection ended");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        Ok(PgConn::new(client))
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = tokio_postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, tokio_postgres::Error> {
        self.connect_now()
    }

    fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), tokio_postgres::Error> {
        futures_executor::block_on(conn.client.simple_query("")).map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// Connects (one connection must open now, so a wrong URL or password fails at start-up with
/// the server's own words rather than as a pool timeout).
pub fn open(url: &str, max_connections: u32) -> Result<Pool> {
    let mut config: tokio_postgres::Config = url.parse().map_err(DbError::Postgres)?;
    if config.get_application_name().is_none() {
        config.application_name("kycd");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    let manager = Manager {
        config,
        // Two threads drive every connection's socket.
        runtime: IoRuntime::new("kycd-postgres", 2)?,
    };
    drop(manager.connect_now().map_err(DbError::Postgres)?);
    Ok(r2d2::Pool::builder()
        .max_size(max_connections.max(1))
        .min_idle(Some(1))
        .connection_timeout(CONNECTION_WAIT)
        // A round trip per checkout otherwise; a closed connection is caught by `has_broken`.
        .test_on_check_out(false)
        .error_handler(Box::new(r2d2::LoggingErrorHandler))
        .build(manager)
        .map_err(DbError::Pool)?)
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        // The pool's only error is its wait running out.
        tracing::warn!(error = %e, "no PostgreSQL connection within the wait");
        StoreError::Busy
    }
}
