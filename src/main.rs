//! Composition root of the `updraft` binary: parses the command line and hands over to [`cli`].

fn main() -> std::process::ExitCode {
    updraft::cli::main()
}
