//! The `kycd` command: parses the command line and hands over to [`kycd::cli`].

fn main() -> std::process::ExitCode {
    kycd::cli::main()
}
