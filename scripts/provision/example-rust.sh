# The Rust example (examples/rust-axum): a Cargo project of its own, built into its own
# target/ (its faultline.toml starts target/debug/askbot). Cargo skips the build when nothing
# changed; a fresh build takes about a minute on a 2-core machine.
note "cargo build in examples/rust-axum"
cargo build --quiet --manifest-path examples/rust-axum/Cargo.toml
