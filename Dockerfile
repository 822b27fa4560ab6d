# The SigmaSight backend image: one static musl binary on distroless, running as non-root.
#
# Stages: chef (toolchain and build tools) -> planner (dependency recipe) -> builder (cook the
# dependencies, then build the binary) -> runtime (the binary alone on distroless/static).
#
# Base images are build arguments whose defaults are the real public images, pinned by tag and
# digest. Where no registry is reachable, scripts/base-images.sh builds stand-ins from Debian
# packages and the build takes them through these arguments (see README, "Offline builds").
ARG RUST_IMAGE=rust:1.95.0-slim-trixie@sha256:e14e87345b4d5964ddcc3491d27ee046a0f23820f340c3c1e24da6880141f7c0
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian13:nonroot@sha256:f7f8f729987ad0fdf6b05eeeae94b26e6a0f613bdf46feea7fc40f7bd72953e6

FROM ${RUST_IMAGE} AS chef
ARG CARGO_CHEF_VERSION=0.1.78
ARG CARGO_AUDITABLE_VERSION=0.7.7
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# musl-gcc builds the C parts (ring, mimalloc) for the static target. The Debian package is not
# version-pinned: the base image's digest already fixes the Debian release it comes from.
# hadolint ignore=DL3008
RUN if ! command -v musl-gcc >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends musl-tools \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && rustup target add x86_64-unknown-linux-musl \
    && cargo install --locked "cargo-chef@${CARGO_CHEF_VERSION}" "cargo-auditable@${CARGO_AUDITABLE_VERSION}" \
    && rm -rf "${CARGO_HOME}/registry" "${CARGO_HOME}/git"
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# The cook and the build must see the same target, profile and environment; any difference
# makes cargo rebuild every dependency and silently throws the cached layer away.
ENV CARGO_BUILD_TARGET=x86_64-unknown-linux-musl \
    CARGO_INCREMENTAL=0 \
    SQLX_OFFLINE=true
COPY --from=planner /app/recipe.json recipe.json
# Build settings the dependencies need when they are cooked: .cargo/config.toml empties Swagger
# UI's unused assets as utoipa-swagger-ui is built (9 MB off the binary).
COPY .cargo .cargo
RUN cargo chef cook --release --locked --target x86_64-unknown-linux-musl --recipe-path recipe.json
COPY . .
# Declared after the cook so a new commit never invalidates the dependency layer. build.rs
# records GIT_COMMIT if given, else Railway's RAILWAY_GIT_COMMIT_SHA (Railway passes its build
# variables only to the ARGs a Dockerfile declares), else the commit named by the context's
# .git/HEAD and refs (.dockerignore), so `docker compose up --build` records it too.
ARG GIT_COMMIT=unknown
ARG RAILWAY_GIT_COMMIT_SHA=""
# `cargo auditable` embeds the dependency list in the binary, so image scanners (trivy, grype)
# see the Rust crates inside a static binary; without it they see none and pass for the
# wrong reason. The release profile strips symbols (Cargo.toml).
RUN GIT_COMMIT="${GIT_COMMIT}" cargo auditable build --release --locked \
        --target x86_64-unknown-linux-musl --bin sigmasight \
    && install -D -m 0755 target/x86_64-unknown-linux-musl/release/sigmasight /out/sigmasight

FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.0.0-dev
ARG GIT_COMMIT=unknown
ARG BUILD_DATE=1970-01-01T00:00:00Z
ARG SOURCE_URL=https://github.com/sigmasight/sigmasight-backend
LABEL org.opencontainers.image.title="sigmasight-backend" \
      org.opencontainers.image.description="SigmaSight portfolio-analytics API and market-data ETL" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /out/sigmasight /usr/local/bin/sigmasight
USER 65532:65532
ENV PORT=8000 \
    LOG_FORMAT=json
EXPOSE 8000
# No shell and no curl in this image: the binary probes its own /health. The first probe runs
# one interval after start, so the interval is what `docker run` to `healthy` takes (the
# process is ready in milliseconds: docs/benchmarks.md); a probe costs a few milliseconds of CPU.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/sigmasight", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/sigmasight"]
CMD ["serve"]
