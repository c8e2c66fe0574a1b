//! A small tokio runtime that drives network clients (PostgreSQL sockets, S3 requests) for code
//! that is otherwise synchronous: callers wait on [`IoRuntime::run`] from any thread, an actix
//! worker included, because the wait is `futures_executor::block_on` and not a tokio runtime's.

use std::future::Future;
use std::sync::Arc;

/// A runtime shut down without blocking when its last owner goes (a tokio runtime may not be
/// dropped on a thread that drives another).
pub struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    /// `threads` workers named `name`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Arc<IoRuntime>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(Arc::new(IoRuntime(Some(runtime))))
    }

    /// The runtime's handle, to spawn tasks that outlive one call (a connection's driver).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("runtime lives until drop").handle()
    }

    /// Runs `future` on the runtime and waits for its output; a panic inside is resumed here.
    pub fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match futures_executor::block_on(self.handle().spawn(future)) {
            Ok(output) => output,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
