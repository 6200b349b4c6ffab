//! The `faultline` binary: parse, dispatch, exit code. Everything else lives in the library.

/// jemalloc rather than glibc's malloc: the fakes allocate a little per request and per
/// streamed chunk. In `cargo bench --bench fake_llm` (which runs every server on this same
/// allocator) jemalloc served the fake LLM's 1M-request run fastest (98k req/s, against 78k
/// with glibc and 82–90k with mimalloc) and held the least memory per open stream (16 KiB,
/// against 20 and 27–30).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(faultline::cli::main());
}
