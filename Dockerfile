# syntax=docker/dockerfile:1
# faultline's container image: the one binary, run as a non-root user, with `faultline` as the
# entrypoint (so `docker run IMAGE scenario outage --quick`, and the Kubernetes manifests in
# deploy/kubernetes/ pass `coordinate …` or `worker …` as args).
#
#   docker build -t faultline .
#
# Stage 1 builds a release binary; stage 2 copies only that binary onto a slim Debian of the
# same release (bookworm), so the glibc it was linked against is the one it runs on.

# rust:*-bookworm (not -slim): jemalloc (tikv-jemalloc-sys) is built from C with configure and
# make, which the slim image lacks.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Only what the build reads: the manifest and lock, the sources, the files compiled in with
# include_str! (scenarios/, mocks/), and benches/ (Cargo.toml declares the bench targets, and
# cargo refuses a manifest whose targets are missing). .dockerignore keeps target/ out.
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY scenarios scenarios
COPY mocks mocks
# The cache mounts keep the registry and target/ between builds of the image; the binary is
# copied out of target/ because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin faultline \
    && cp target/release/faultline /usr/local/bin/faultline

FROM debian:bookworm-slim
# No packages: faultline speaks plain HTTP and RESP (reqwest without TLS), so not even
# ca-certificates. A numeric user, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
COPY --from=builder /usr/local/bin/faultline /usr/local/bin/faultline
# Runs write reports/ under the working directory unless --out says otherwise; the directory
# belongs to the runtime user so a plain `docker run` can write there.
WORKDIR /work
RUN chown 10001:10001 /work
USER 10001:10001
ENTRYPOINT ["faultline"]
CMD ["--help"]
