//! The `faultline` binary: parse, dispatch, exit code. Everything else lives in the library.

fn main() {
    std::process::exit(faultline::cli::main());
}
