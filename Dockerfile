# syntax=docker/dockerfile:1.7
#
# The platform as a container image: the one `rsp` binary on distroless (glibc, CA certificates, no shell,
# no package manager), running as a non-root user, made for a read-only root filesystem: everything the
# server writes goes to /var/lib/rsp (a volume) and nowhere else.
#
#   docker build -t rsp:dev .
#   docker run --read-only -p 8080:8080 -p 9090:9090 -v rsp-data:/var/lib/rsp rsp:dev
#
# deploy/README.md says more (BuildKit is needed for the cache mounts). CI lints this file with hadolint.

# The toolchain the workspace is built and tested with.
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The registry and target caches survive between builds, so a code change rebuilds only the workspace.
# The binary is copied out of the cached target directory, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --package rsp --bin rsp \
    && install -D -m 0755 target/release/rsp /out/rsp \
    && install -d -m 0700 /out/data

# A static wget (busybox, musl) for the HEALTHCHECK: distroless has no HTTP client of its own.
FROM docker.io/library/busybox:1.37-musl AS probe

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/rsp /usr/local/bin/rsp
COPY --from=probe /bin/wget /usr/local/bin/wget
# Owned by the image's non-root user so a fresh named volume inherits a directory the server may write.
COPY --from=build --chown=65532:65532 /out/data /var/lib/rsp
# Listen on every interface inside the container; logs as JSON for log pipelines. The data directory is
# a subdirectory of the volume because the server creates it and restricts it to mode 0700, which only
# its owner may do, and a mounted volume's root often belongs to root (Kubernetes volumes with fsGroup).
ENV RSP_LISTEN=0.0.0.0:8080 \
    RSP_OPS_LISTEN=0.0.0.0:9090 \
    RSP_DATA_DIR=/var/lib/rsp/data \
    RSP_LOG_FORMAT=json
USER 65532:65532
VOLUME ["/var/lib/rsp"]
# 8080: the public API (OAuth, decisions, admin). 9090: operations (/metrics, /health/live, /health/ready).
EXPOSE 8080 9090
# Ready means "not draining and the database answers"; Kubernetes uses its own probes on the same port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/wget", "-q", "-O", "/dev/null", "-T", "2", "http://127.0.0.1:9090/health/ready"]
# Flags and roles append to `serve` (e.g. `--role auth`); other commands replace the entry point
# (`docker run --entrypoint /usr/local/bin/rsp rsp:dev migrate`).
ENTRYPOINT ["/usr/local/bin/rsp", "serve"]
