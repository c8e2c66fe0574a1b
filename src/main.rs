//! The `kycd` command: parses the command line and hands over to [`kycd::cli`].

// The static build (x86_64-unknown-linux-musl) allocates with mimalloc: musl's own allocator
// serialises every thread on one lock, which inference and the HTTP workers feel (see
// ARCHITECTURE.md, "Static build"). The glibc build keeps glibc's.
#[cfg(all(target_env = "musl", not(feature = "system-allocator")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kycd::cli::main()
}
