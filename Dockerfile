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

# The builder stages run on the build machine's own platform ($BUILDPLATFORM) and cross-compile
# for the image's ($TARGETARCH): nothing is emulated, and an arm64 image builds as fast on an
# x86_64 runner as an x86_64 one. `docker build .` builds the host's architecture;
# `--platform linux/arm64` (or buildx's `--platform linux/amd64,linux/arm64`) picks others.
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS chef
ARG CARGO_CHEF_VERSION=0.1.78
ARG CARGO_AUDITABLE_VERSION=0.7.7
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The C parts (ring, mimalloc) are compiled for the target by zig (`zig cc`), through
# cargo-zigbuild. Why zig and not a musl cross gcc: one toolchain targets both architectures
# from either build platform (Debian ships musl-gcc for the host only, and no
# aarch64<->x86_64 musl cross compiler), and both tools are prebuilt wheels on PyPI, so pip
# installs them pinned by version and sha256 (both platforms' wheels listed) with no compiler
# run and no download from outside a package registry. pip comes from Debian (python3-pip),
# unpinned: the base image's digest already fixes the Debian release; the stand-in builder of
# scripts/base-images.sh has it already. `--target` keeps the tools out of Debian's Python.
# hadolint ignore=DL3008
RUN if ! command -v pip3 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3-pip \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && printf '%s\n' \
        'ziglang==0.15.2 --hash=sha256:806316453d1ede7174ed3fefb8e5348154629089c3bb5fe812dfd0e172fac130 --hash=sha256:edc0aa60ec964a4cf462d40f68d7de242ddf37fd9a80f2afaee6397059463230' \
        'cargo-zigbuild==0.24.1 --hash=sha256:238a1ab54a95053a4eadc34775c81f795a8ad75f80bfed63f3f445f518102375 --hash=sha256:07c5e3dcddf208500462ec927c556bb306cca2b533b0abe29446bffb63767b85' \
        >/tmp/zig-tools.txt \
    && python3 -m pip install --no-cache-dir --disable-pip-version-check --no-deps --only-binary=:all: \
        --require-hashes --target /opt/zig-tools -r /tmp/zig-tools.txt \
    && rm /tmp/zig-tools.txt \
    && ln -s /opt/zig-tools/ziglang/zig /usr/local/bin/zig \
    && ln -s /opt/zig-tools/bin/cargo-zigbuild /usr/local/bin/cargo-zigbuild \
    && zig version && cargo-zigbuild --version \
    && rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
    && cargo install --locked "cargo-chef@${CARGO_CHEF_VERSION}" "cargo-auditable@${CARGO_AUDITABLE_VERSION}" \
    && rm -rf "${CARGO_HOME}/registry" "${CARGO_HOME}/git"
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG TARGETARCH
# Unset in every normal build. check-reproducible.sh --keep-tools gives each of its builds a
# new value, so the cook and the build run from nothing while the tools' layers are reused.
ARG REPRO_BUILD
# The cook and the build must see the same target, profile, flags and environment; any
# difference makes cargo rebuild every dependency and silently throws the cached layer away.
# A reproducible binary (check-reproducible.sh): --remap-path-prefix leaves no path of the
# build machine (cargo's registry, this directory) in the panic messages; SOURCE_DATE_EPOCH
# makes zig's clang expand __DATE__ and __TIME__ to that time instead of the clock's (mimalloc
# embeds them). It is a constant, not the commit's time: the C code is compiled in the cook,
# whose layer must not change with each commit. The image's timestamps and its `created`
# label come from the commit (the BUILD_DATE and SOURCE_DATE_EPOCH build arguments).
ENV CARGO_INCREMENTAL=0 \
    SQLX_OFFLINE=true \
    SOURCE_DATE_EPOCH=0 \
    RUSTFLAGS="--remap-path-prefix=${CARGO_HOME}=/cargo --remap-path-prefix=/app=/build"
RUN case "${TARGETARCH}" in \
        amd64) echo x86_64-unknown-linux-musl ;; \
        arm64) echo aarch64-unknown-linux-musl ;; \
        *) echo "unsupported TARGETARCH \"${TARGETARCH}\" (amd64 or arm64)" >&2; exit 1 ;; \
    esac >/target-triple
COPY --from=planner /app/recipe.json recipe.json
# Build settings the dependencies need when they are cooked: .cargo/config.toml empties Swagger
# UI's unused assets as utoipa-swagger-ui is built (9 MB off the binary).
COPY .cargo .cargo
RUN cargo chef cook --release --locked --zigbuild --target "$(cat /target-triple)" --recipe-path recipe.json
COPY . .
# Declared after the cook so a new commit never invalidates the dependency layer. build.rs
# records GIT_COMMIT if given, else Railway's RAILWAY_GIT_COMMIT_SHA (Railway passes its build
# variables only to the ARGs a Dockerfile declares), else the commit named by the context's
# .git/HEAD and refs (.dockerignore), so `docker compose up --build` records it too.
# The SOURCE_DATE_EPOCH build argument is not declared on purpose: BuildKit reads it itself (the
# image's timestamps, with buildx), and as an ARG here it would replace the constant above
# in the build but not in the cook, so cargo would recompile ring, mimalloc and what depends on
# them instead of reusing the cooked layer (seen with check-reproducible.sh).
ARG GIT_COMMIT=unknown
ARG RAILWAY_GIT_COMMIT_SHA=""
# `cargo auditable` embeds the dependency list in the binary, so image scanners (trivy, grype)
# see the Rust crates inside a static binary; without it they see none and pass for the
# wrong reason. It wraps cargo-zigbuild as it wraps `cargo build`: it runs `cargo zigbuild`
# with itself as rustc's workspace wrapper. The release profile strips symbols (Cargo.toml).
RUN target="$(cat /target-triple)" \
    && GIT_COMMIT="${GIT_COMMIT}" cargo auditable zigbuild --release --locked \
        --target "${target}" --bin sigmasight \
    && install -D -m 0755 "target/${target}/release/sigmasight" /out/sigmasight

# The binary alone, for check-reproducible.sh (`--target binary --output type=local,...`).
FROM scratch AS binary
COPY --from=builder /out/sigmasight /sigmasight

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
