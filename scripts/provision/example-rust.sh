# The Rust example (examples/rust-axum): a Cargo project of its own, built into its own
# target/ (its faultline.toml starts target/debug/askbot). Cargo skips the build when nothing
# changed. A fresh build compiles 163 crates: about 1.6 min of CPU, 1-5 min on a shared 2-core
# machine. Building into faultline's target/ instead still compiled 96 of them (features differ:
# reqwest, hyper, tracing-subscriber…) for about 20% less CPU; not worth tying the example's
# binary path and build lock to faultline's.
note "cargo build in examples/rust-axum"
cargo build --quiet --manifest-path examples/rust-axum/Cargo.toml
