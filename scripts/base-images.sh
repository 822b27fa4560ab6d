#!/usr/bin/env bash
# Builds local stand-ins of the public base images that the Dockerfile and the
# compose file name, from Debian packages alone, for machines that reach a
# Debian mirror and the Rust dist server but no container registry:
#
#   sigmasight/rust-builder:<rust>      ~ rust:<rust>-slim-trixie (+ python3-pip, both
#                                          musl targets), for the host's architecture
#   sigmasight/distroless-static:nonroot-amd64, :nonroot-arm64
#                                       ~ gcr.io/distroless/static-debian13:nonroot, one per
#                                         architecture; :nonroot is the host's
#   sigmasight/postgres:15              ~ postgres:15 (the entrypoint subset we use)
#   sigmasight/haproxy:2.6              ~ haproxy:2.6 (Debian's package, the official layout)
#
# Each root file system starts from a debootstrap --variant=minbase tarball that
# is made once per Debian suite and cached; the finished tree goes into Docker
# with `docker import`. Images that already exist are skipped unless --force.
#
# The builder runs on the build machine's platform and cross-compiles (Dockerfile), so it is
# needed for the host only; the runtime image is needed for each target. Distroless is data
# only (passwd, CA bundle, tzdata, /tmp), the same files for every architecture, so the
# arm64 one is that tree labelled arm64: a BuildKit build `FROM scratch` + COPY with
# --platform (`docker import --platform` is ignored by Docker 20.10).
#
# Behind a TLS-intercepting proxy, pass its CA bundle with --ca-bundle (or
# EXTRA_CA_BUNDLE): the certificates not already in Debian's bundle are
# installed in every image (/usr/local/share/ca-certificates/extra-ca-*.crt and
# appended to /etc/ssl/certs/ca-certificates.crt), so cargo and curl inside
# `docker build` trust it. Such images are for that machine only: never push them.
set -Eeuo pipefail

# docker-compose 1.29 and this script want the distribution's docker client
# (BuildKit built in) ahead of any newer client without buildx.
PATH="/usr/bin:/usr/sbin:${PATH}"
export PATH

readonly PROG="${0##*/}"

usage() {
    cat <<EOF
Usage: ${PROG} [options] [IMAGE...]

Builds local stand-ins of the project's base images from Debian packages.
IMAGE is one or more of: rust-builder, distroless-static, postgres, haproxy (default: all).
Must run as root (debootstrap, chroot) with a running Docker engine.

Options:
  --force              rebuild images that already exist
  --refresh            re-run debootstrap instead of reusing the cached minbase tarballs
  --verify             after building, smoke-test the selected images
  --ca-bundle FILE     PEM bundle of extra CAs to trust in the images (env EXTRA_CA_BUNDLE),
                       e.g. the host's /etc/ssl/certs/ca-certificates.crt behind a TLS proxy
  --rust-version VER   Rust toolchain of the builder image (env RUST_VERSION, default ${DEFAULT_RUST_VERSION})
  --prefix NAME        image repository prefix (env IMAGE_PREFIX, default ${DEFAULT_PREFIX})
  --mirror URL         Debian mirror (env DEBIAN_MIRROR, default ${DEFAULT_MIRROR})
  --security-mirror URL  Debian security mirror (env DEBIAN_SECURITY_MIRROR,
                       default ${DEFAULT_SECURITY_MIRROR})
  --cache-dir DIR      where the minbase tarballs are kept (env BASE_IMAGES_CACHE,
                       default \${XDG_CACHE_HOME:-\$HOME/.cache}/sigmasight-base-images)
  -h, --help           show this help

The Dockerfile takes the images through its build arguments, e.g.
  docker build --build-arg RUST_IMAGE=${DEFAULT_PREFIX}/rust-builder:${DEFAULT_RUST_VERSION} \\
               --build-arg RUNTIME_IMAGE=${DEFAULT_PREFIX}/distroless-static:nonroot .
EOF
}

readonly DEFAULT_RUST_VERSION=1.95.0
readonly DEFAULT_PREFIX=sigmasight
readonly DEFAULT_MIRROR=http://deb.debian.org/debian
readonly DEFAULT_SECURITY_MIRROR=http://deb.debian.org/debian-security
# trixie matches the official rust and distroless debian13 images; Debian ships
# PostgreSQL 15 only in bookworm.
readonly BUILDER_SUITE=trixie
readonly DISTROLESS_SUITE=trixie
readonly POSTGRES_SUITE=bookworm
readonly PG_MAJOR=15
# The official postgres image's uid/gid, so a data volume moves between the two.
readonly PG_UID=999
# bookworm ships HAProxy 2.6 (a long-term-support branch), the compose file's haproxy:2.6.
readonly HAPROXY_SUITE=bookworm
readonly HAPROXY_VERSION=2.6
# The official haproxy image's uid/gid.
readonly HAPROXY_UID=99
readonly CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '%s: %s\n' "${PROG}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- options -----------------------------------------------------------------

force=false
refresh=false
verify=false
ca_bundle="${EXTRA_CA_BUNDLE:-}"
rust_version="${RUST_VERSION:-${DEFAULT_RUST_VERSION}}"
prefix="${IMAGE_PREFIX:-${DEFAULT_PREFIX}}"
mirror="${DEBIAN_MIRROR:-${DEFAULT_MIRROR}}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-${DEFAULT_SECURITY_MIRROR}}"
cache_dir="${BASE_IMAGES_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/sigmasight-base-images}"
selected=()

while (($#)); do
    case "$1" in
        --force) force=true ;;
        --refresh) refresh=true ;;
        --verify) verify=true ;;
        --ca-bundle | --rust-version | --prefix | --mirror | --security-mirror | --cache-dir)
            (($# >= 2)) || die "$1 needs a value"
            case "$1" in
                --ca-bundle) ca_bundle="$2" ;;
                --rust-version) rust_version="$2" ;;
                --prefix) prefix="$2" ;;
                --mirror) mirror="$2" ;;
                --security-mirror) security_mirror="$2" ;;
                --cache-dir) cache_dir="$2" ;;
            esac
            shift
            ;;
        -h | --help) usage; exit 0 ;;
        rust-builder | distroless-static | postgres | haproxy) selected+=("$1") ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
((${#selected[@]})) || selected=(rust-builder distroless-static postgres haproxy)

[[ ${rust_version} =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "--rust-version: expected a version like ${DEFAULT_RUST_VERSION}, got \"${rust_version}\""
if [[ -n ${ca_bundle} ]]; then
    [[ -r ${ca_bundle} ]] || die "--ca-bundle: cannot read \"${ca_bundle}\""
    grep -q -- '-----BEGIN CERTIFICATE-----' "${ca_bundle}" ||
        die "--ca-bundle: \"${ca_bundle}\" holds no PEM certificate"
fi

readonly rust_image="${prefix}/rust-builder:${rust_version}"
readonly distroless_image="${prefix}/distroless-static:nonroot"
readonly postgres_image="${prefix}/postgres:${PG_MAJOR}"
readonly haproxy_image="${prefix}/haproxy:${HAPROXY_VERSION}"

# --- preconditions -----------------------------------------------------------

((EUID == 0)) || die "must run as root (debootstrap and chroot need it)"
for cmd in debootstrap chroot docker tar awk mount umount findmnt dpkg; do
    command -v "${cmd}" >/dev/null || die "missing command: ${cmd} (apt-get install debootstrap docker.io)"
done
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running?)"

arch="$(dpkg --print-architecture)"
case "${arch}" in
    amd64) rust_arch=x86_64 ;;
    arm64) rust_arch=aarch64 ;;
    *) die "unsupported architecture: ${arch}" ;;
esac
readonly arch rust_arch

# --- scratch space and cleanup -----------------------------------------------

work="$(mktemp -d "${TMPDIR:-/tmp}/base-images.XXXXXX")"
readonly work

unmount_under() {
    local target
    # Deepest first.
    findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r |
        while read -r target; do umount -l "${target}" || true; done
}

cleanup() {
    unmount_under "${work}"
    if findmnt -rn -o TARGET | grep -q "^${work}/"; then
        log "warning: mounts remain under ${work}; leaving it in place"
        return
    fi
    rm -rf --one-file-system "${work}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# Runs a command inside a root file system with a clean environment.
in_root() {
    local root="$1"
    shift
    chroot "${root}" /usr/bin/env -i PATH="${CHROOT_PATH}" HOME=/root LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# --- the cached minbase tarball ------------------------------------------------

write_sources() {
    local root="$1" suite="$2"
    rm -f "${root}/etc/apt/sources.list"
    cat >"${root}/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${mirror}
Suites: ${suite} ${suite}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${security_mirror}
Suites: ${suite}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # The same trimming as Debian's official container images.
    cat >"${root}/etc/apt/apt.conf.d/90base-images" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
        'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
        >"${root}/etc/dpkg/dpkg.cfg.d/90base-images"
}

# Prints the path of the minbase tarball for a suite, bootstrapping it first if
# it is missing (or --refresh). Package lists stay in it, so later `apt-get
# update` runs only fetch what changed.
minbase_tarball() {
    local suite="$1"
    local tarball="${cache_dir}/debian-${suite}-minbase-${arch}.tar"
    if [[ -s ${tarball} ]] && ! ${refresh}; then
        printf '%s\n' "${tarball}"
        return
    fi
    local root="${work}/bootstrap-${suite}" started=${SECONDS}
    log "debootstrap ${suite} (minbase, ${arch}) from ${mirror}"
    mkdir -p "${cache_dir}"
    debootstrap --variant=minbase --arch="${arch}" "${suite}" "${root}" "${mirror}" >&2 ||
        die "debootstrap ${suite} failed (see ${root}/debootstrap/debootstrap.log)"
    write_sources "${root}" "${suite}"
    cp /etc/resolv.conf "${root}/etc/resolv.conf"
    in_root "${root}" apt-get update -qq >&2
    in_root "${root}" apt-get -y -qq -o Dpkg::Use-Pty=0 upgrade >&2
    in_root "${root}" apt-get clean
    tar --numeric-owner -C "${root}" -cf "${tarball}.tmp" .
    mv "${tarball}.tmp" "${tarball}"
    rm -rf --one-file-system "${root}"
    log "cached ${tarball} ($((SECONDS - started)) s)"
    printf '%s\n' "${tarball}"
}

# Unpacks a fresh copy of a suite's minbase into $2, ready for apt-get.
new_root() {
    local suite="$1" root="$2" tarball
    tarball="$(minbase_tarball "${suite}")"
    mkdir -p "${root}"
    tar --numeric-owner -C "${root}" -xpf "${tarball}"
    cp /etc/resolv.conf "${root}/etc/resolv.conf"
    # No daemon starts inside the chroot, and dpkg needs no terminal.
    printf '#!/bin/sh\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
    chmod 755 "${root}/usr/sbin/policy-rc.d"
    echo 'Dpkg::Use-Pty "0";' >"${root}/etc/apt/apt.conf.d/00base-images-build"
    mount -t proc proc "${root}/proc"
    in_root "${root}" apt-get update -qq
    in_root "${root}" apt-get -y -qq upgrade
}

apt_install() {
    local root="$1"
    shift
    in_root "${root}" apt-get install -y -qq "$@" >/dev/null
}

# Leaves only what an image should carry; unmounts /proc.
finish_root() {
    local root="$1"
    umount "${root}/proc"
    rm -f "${root}/usr/sbin/policy-rc.d" "${root}/etc/apt/apt.conf.d/00base-images-build"
    rm -rf "${root}"/var/lib/apt/lists/* "${root}"/var/cache/apt/* "${root}"/var/cache/debconf/*-old \
        "${root}"/var/log/apt/* "${root}"/var/log/*.log "${root}"/tmp/* "${root}"/var/tmp/* \
        "${root}"/root/.cache "${root}/debootstrap"
    : >"${root}/etc/resolv.conf"
    : >"${root}/etc/hostname"
}

# Imports a root file system as an image; the remaining arguments are
# `docker import --change` instructions. /dev is left empty: the engine mounts it.
import_root() {
    local root="$1" image="$2"
    shift 2
    local changes=() change
    for change in "$@"; do changes+=(--change "${change}"); done
    tar --numeric-owner -C "${root}" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . |
        docker import "${changes[@]}" \
            --change 'LABEL org.opencontainers.image.description="Local stand-in built by scripts/base-images.sh"' \
            - "${image}" >/dev/null
}

# --- extra CA certificates ---------------------------------------------------

# Writes the certificates of the --ca-bundle that are missing from the root's
# bundle to /usr/local/share/ca-certificates/extra-ca-N.crt, one per file as
# update-ca-certificates wants; prints how many.
stage_extra_cas() {
    local root="$1"
    local bundle="${root}/etc/ssl/certs/ca-certificates.crt"
    local dir="${root}/usr/local/share/ca-certificates"
    mkdir -p "${dir}"
    [[ -s ${bundle} ]] || bundle=/dev/null
    awk -v dir="${dir}" '
        { sub(/\r$/, "") }
        /^-----BEGIN CERTIFICATE-----$/ { pem = ""; inside = 1 }
        inside { pem = pem $0 "\n" }
        /^-----END CERTIFICATE-----$/ && inside {
            inside = 0
            if (FILENAME == ARGV[1]) { known[pem] = 1; next }
            if (pem in known) next
            known[pem] = 1
            out = sprintf("%s/extra-ca-%03d.crt", dir, ++n)
            printf "%s", pem > out
            close(out)
        }
        END { print n + 0 }
    ' "${bundle}" "${ca_bundle}"
}

# Trusts the --ca-bundle inside a root that has the ca-certificates package.
trust_extra_cas() {
    local root="$1" count
    [[ -n ${ca_bundle} ]] || return 0
    count="$(stage_extra_cas "${root}")"
    in_root "${root}" update-ca-certificates >/dev/null
    log "trusting ${count} extra CA certificate(s) from ${ca_bundle}"
}

# --- rust-builder ------------------------------------------------------------

build_rust_builder() {
    local root="${work}/rust-builder"
    new_root "${BUILDER_SUITE}" "${root}"
    # gcc links the host's build scripts; pip installs zig and cargo-zigbuild (Dockerfile).
    apt_install "${root}" ca-certificates curl gcc libc6-dev python3-pip
    trust_extra_cas "${root}"

    # The official rust image's layout: rustup in /usr/local, world-writable so
    # any user can add targets and fill the registry cache.
    local host="${rust_arch}-unknown-linux-gnu"
    local url="https://static.rust-lang.org/rustup/dist/${host}/rustup-init"
    # shellcheck disable=SC2016 # expanded by the shell inside the root
    in_root "${root}" /bin/sh -eu -c '
        cd /tmp
        curl --proto "=https" --tlsv1.2 -fsSLO "$1"
        sum="$(curl --proto "=https" --tlsv1.2 -fsSL "$1.sha256")"
        echo "${sum%% *}  rustup-init" | sha256sum -c -
        chmod +x rustup-init
        RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo ./rustup-init -y -q --no-modify-path \
            --profile minimal --default-toolchain "$2" --default-host "$3"
        rm rustup-init
        export RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH="/usr/local/cargo/bin:$PATH"
        rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
        chmod -R a+w "$RUSTUP_HOME" "$CARGO_HOME"
        rustc --version && cargo --version
    ' sh "${url}" "${rust_version}" "${host}" >&2

    finish_root "${root}"
    import_root "${root}" "${rust_image}" \
        "ENV RUSTUP_HOME=/usr/local/rustup" \
        "ENV CARGO_HOME=/usr/local/cargo" \
        "ENV PATH=/usr/local/cargo/bin:${CHROOT_PATH}" \
        "ENV RUST_VERSION=${rust_version}" \
        'CMD ["bash"]'
}

# --- distroless-static -------------------------------------------------------

# Copies a package's dpkg status stanza to status.d, where distroless keeps it
# for image scanners (there is no dpkg to read /var/lib/dpkg/status).
record_package() {
    local root="$1" stage="$2" pkg="$3"
    in_root "${root}" dpkg-query -s "${pkg}" >"${stage}/var/lib/dpkg/status.d/${pkg}"
    if [[ -f ${root}/usr/share/doc/${pkg}/copyright ]]; then
        install -D -m 644 "${root}/usr/share/doc/${pkg}/copyright" "${stage}/usr/share/doc/${pkg}/copyright"
    fi
}

build_distroless_static() {
    local root="${work}/distroless-source" stage="${work}/distroless"
    new_root "${DISTROLESS_SUITE}" "${root}"
    apt_install "${root}" ca-certificates tzdata netbase
    trust_extra_cas "${root}"

    # Only data files are copied: no shell, no libc, no package manager.
    install -d -m 755 "${stage}"/{etc/ssl/certs,home,usr/share,var/lib/dpkg/status.d,proc,sys,dev}
    install -d -m 700 "${stage}/root"
    install -d -m 700 -o 65532 -g 65532 "${stage}/home/nonroot"
    install -d -m 1777 "${stage}/tmp"
    install -m 644 "${root}/etc/ssl/certs/ca-certificates.crt" "${stage}/etc/ssl/certs/"
    cp -a "${root}/usr/share/zoneinfo" "${stage}/usr/share/"
    local f
    for f in services protocols ethertypes; do
        [[ ! -f ${root}/etc/${f} ]] || install -m 644 "${root}/etc/${f}" "${stage}/etc/"
    done
    cat >"${stage}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
    cat >"${stage}/etc/group" <<'EOF'
root:x:0:
tty:x:5:
staff:x:50:
nonroot:x:65532:
nobody:x:65534:
EOF
    cat >"${stage}/etc/nsswitch.conf" <<'EOF'
passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      files
services:       files
ethers:         files
rpc:            files
EOF
    sed 's/^PRETTY_NAME=.*/PRETTY_NAME="Distroless (local stand-in)"/' \
        "${root}/usr/lib/os-release" >"${stage}/etc/os-release"
    chmod 644 "${stage}"/etc/{passwd,group,nsswitch.conf,os-release}
    local pkg
    for pkg in base-files ca-certificates netbase tzdata; do record_package "${root}" "${stage}" "${pkg}"; done

    finish_root "${root}"
    local target
    for target in amd64 arm64; do
        build_data_image "${stage}" "${target}" "${distroless_image}-${target}"
    done
    docker tag "${distroless_image}-${arch}" "${distroless_image}"
}

# Builds the data-only tree $1 as an image for linux/$2 named $3: `FROM scratch` and COPY, so
# the image's config names that architecture (docker import would say the host's). COPY makes
# everything root's; the nonroot home comes in its own COPY, with its owner.
build_data_image() {
    local stage="$1" target="$2" image="$3"
    local ctx="${work}/distroless-${target}"
    mkdir -p "${ctx}"
    cp -a "${stage}" "${ctx}/rootfs"
    mkdir "${ctx}/home"
    mv "${ctx}/rootfs/home/nonroot" "${ctx}/home/"
    # dpkg's record of base-files names the architecture it was built for.
    sed -i "s/^Architecture: ${arch}\$/Architecture: ${target}/" "${ctx}/rootfs/var/lib/dpkg/status.d/"*
    cat >"${ctx}/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 home/ /home/
LABEL org.opencontainers.image.description="Local stand-in built by scripts/base-images.sh"
ENV PATH=${CHROOT_PATH} SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
EOF
    DOCKER_BUILDKIT=1 docker build -q --platform "linux/${target}" -t "${image}" "${ctx}" >/dev/null
    [[ $(docker image inspect -f '{{.Os}}/{{.Architecture}}' "${image}") == "linux/${target}" ]] ||
        die "${image} is not a linux/${target} image"
}

# --- postgres ----------------------------------------------------------------

# The entrypoint: the part of the official image's docker-entrypoint.sh that
# compose files and tests lean on (POSTGRES_USER/PASSWORD/DB and their _FILE
# forms, POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD, PGDATA and
# /docker-entrypoint-initdb.d).
write_postgres_entrypoint() {
    cat >"$1" <<'ENTRYPOINT'
#!/bin/bash
# Entrypoint of the local postgres stand-in (see scripts/base-images.sh).
set -Eeuo pipefail

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# file_env VAR [DEFAULT]: takes VAR from $VAR or from the file named by $VAR_FILE.
file_env() {
    local var="$1" file_var="$1_FILE" value="${2:-}"
    if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
        log "error: both ${var} and ${file_var} are set"
        exit 1
    fi
    if [[ -n ${!var:-} ]]; then
        value="${!var}"
    elif [[ -n ${!file_var:-} ]]; then
        value="$(<"${!file_var}")"
    fi
    export "${var}=${value}"
    unset "${file_var}"
}

init_database() {
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "${POSTGRES_USER}"
    file_env POSTGRES_INITDB_ARGS
    local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [[ -z ${POSTGRES_PASSWORD} && ${auth} != trust ]]; then
        log "error: database is uninitialized and POSTGRES_PASSWORD is not set"
        log "       (set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without one)"
        exit 1
    fi

    local initdb_args=()
    read -r -a initdb_args <<<"${POSTGRES_INITDB_ARGS}"
    if [[ -n ${POSTGRES_PASSWORD} ]]; then
        initdb --username="${POSTGRES_USER}" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD}") "${initdb_args[@]}"
    else
        initdb --username="${POSTGRES_USER}" "${initdb_args[@]}"
    fi
    # Password authentication for every TCP client; the socket stays trusted as
    # in the official image.
    printf '\nhost all all all %s\n' "${auth}" >>"${PGDATA}/pg_hba.conf"

    # A socket-only server for the set-up steps, so no client sees a half-made database.
    pg_ctl -D "${PGDATA}" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    local psql=(psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --no-password --no-psqlrc)
    if [[ ${POSTGRES_DB} != postgres ]]; then
        "${psql[@]}" --dbname postgres --set db="${POSTGRES_DB}" <<<'CREATE DATABASE :"db";' >/dev/null
    fi
    local f
    shopt -s nullglob
    for f in /docker-entrypoint-initdb.d/*; do
        log "running ${f}"
        case "${f}" in
            *.sh)
                if [[ -x ${f} ]]; then
                    "${f}"
                else
                    # shellcheck disable=SC1090
                    . "${f}"
                fi
                ;;
            *.sql) "${psql[@]}" --dbname "${POSTGRES_DB}" -f "${f}" ;;
            *.sql.gz) gunzip -c "${f}" | "${psql[@]}" --dbname "${POSTGRES_DB}" ;;
            *) log "ignoring ${f}" ;;
        esac
    done
    shopt -u nullglob
    pg_ctl -D "${PGDATA}" -m fast -w stop >/dev/null
    log "PostgreSQL init process complete; ready for start up."
}

# `postgres --version` and friends print and exit: no set-up for them.
wants_info() {
    local arg
    for arg; do
        case "${arg}" in
            -'?' | --help | --describe-config | -V | --version) return 0 ;;
        esac
    done
    return 1
}

if [[ ${1:-} == -* ]]; then
    set -- postgres "$@"
fi

if [[ ${1:-} == postgres ]] && ! wants_info "$@"; then
    if ((EUID == 0)); then
        # A fresh volume mounts root-owned: hand it to postgres, then drop root.
        mkdir -p "${PGDATA}" /var/run/postgresql
        find "${PGDATA}" \! -user postgres -exec chown postgres:postgres '{}' +
        chmod 700 "${PGDATA}"
        chown postgres:postgres /var/run/postgresql
        chmod 3777 /var/run/postgresql
        export HOME=/var/lib/postgresql
        exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi
    mkdir -p "${PGDATA}"
    chmod 700 "${PGDATA}" 2>/dev/null || true
    if [[ ! -s ${PGDATA}/PG_VERSION ]]; then
        init_database
    fi
    unset POSTGRES_PASSWORD
fi

# postgres stays PID 1, so `docker stop` (SIGINT, a fast shutdown) reaches it.
exec "$@"
ENTRYPOINT
    chmod 755 "$1"
}

build_postgres() {
    local root="${work}/postgres"
    new_root "${POSTGRES_SUITE}" "${root}"

    # As in the official image: a fixed uid/gid, no cluster made by the Debian
    # packaging, en_US.UTF-8 as the default locale, listening on all addresses.
    in_root "${root}" groupadd -r -g "${PG_UID}" postgres
    in_root "${root}" useradd -r -g postgres -u "${PG_UID}" --home-dir /var/lib/postgresql \
        --shell /bin/bash postgres
    mkdir -p "${root}/etc/postgresql-common"
    echo 'create_main_cluster = false' >"${root}/etc/postgresql-common/createcluster.conf"
    apt_install "${root}" ca-certificates locales tzdata "postgresql-${PG_MAJOR}"
    trust_extra_cas "${root}"
    # ssl-cert (a postgresql-common dependency) made a snakeoil key pair; no
    # image should ship a private key, and this server's TLS is off by default.
    rm -f "${root}"/etc/ssl/private/ssl-cert-snakeoil.key "${root}"/etc/ssl/certs/ssl-cert-snakeoil.pem
    in_root "${root}" localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8
    sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" \
        "${root}/usr/share/postgresql/${PG_MAJOR}/postgresql.conf.sample"
    grep -q "^listen_addresses = '\*'" "${root}/usr/share/postgresql/${PG_MAJOR}/postgresql.conf.sample" ||
        die "could not set listen_addresses in postgresql.conf.sample"
    install -d -m 1777 -o "${PG_UID}" -g "${PG_UID}" "${root}/var/lib/postgresql/data"
    install -d -m 3777 -o "${PG_UID}" -g "${PG_UID}" "${root}/var/run/postgresql"
    install -d -m 755 "${root}/docker-entrypoint-initdb.d"
    write_postgres_entrypoint "${root}/usr/local/bin/docker-entrypoint.sh"

    finish_root "${root}"
    local pg_bin="/usr/lib/postgresql/${PG_MAJOR}/bin"
    import_root "${root}" "${postgres_image}-import" \
        "ENV PG_MAJOR=${PG_MAJOR}" \
        "ENV PATH=${pg_bin}:${CHROOT_PATH}" \
        "ENV PGDATA=/var/lib/postgresql/data" \
        "ENV LANG=en_US.utf8" \
        "VOLUME /var/lib/postgresql/data" \
        "EXPOSE 5432" \
        'ENTRYPOINT ["docker-entrypoint.sh"]' \
        'CMD ["postgres"]'
    # `docker import` cannot set STOPSIGNAL; a one-line build adds it (no layer).
    printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "${postgres_image}-import" |
        DOCKER_BUILDKIT=0 docker build -q -t "${postgres_image}" - >/dev/null
    docker rmi "${postgres_image}-import" >/dev/null
}

# --- haproxy -----------------------------------------------------------------

# The official image's entrypoint: arguments that start with `-` are haproxy's, and haproxy
# runs in the foreground (-db) as the master of its worker (-W), PID 1, so `docker stop`
# (SIGUSR1, a soft stop: listeners close, open connections finish) reaches it.
write_haproxy_entrypoint() {
    cat >"$1" <<'ENTRYPOINT'
#!/bin/sh
# Entrypoint of the local haproxy stand-in (see scripts/base-images.sh).
set -e
if [ "${1#-}" != "$1" ]; then
    set -- haproxy "$@"
fi
if [ "$1" = haproxy ]; then
    shift
    set -- haproxy -W -db "$@"
fi
exec "$@"
ENTRYPOINT
    chmod 755 "$1"
}

build_haproxy() {
    local root="${work}/haproxy"
    new_root "${HAPROXY_SUITE}" "${root}"
    apt_install "${root}" "haproxy=${HAPROXY_VERSION}.*"
    # As in the official image: user haproxy with a fixed uid/gid (the package's postinst makes
    # a system user, refusing one below the system range, so it is renumbered afterwards), the
    # configuration read from /usr/local/etc/haproxy/haproxy.cfg, /var/lib/haproxy as the
    # working directory.
    in_root "${root}" groupmod -g "${HAPROXY_UID}" haproxy
    in_root "${root}" usermod -u "${HAPROXY_UID}" -g "${HAPROXY_UID}" haproxy
    # The package's service files and sample configuration do nothing in a container.
    rm -rf "${root}/etc/haproxy" "${root}/etc/init.d/haproxy" "${root}/etc/default/haproxy" \
        "${root}/etc/logrotate.d/haproxy" "${root}/etc/rsyslog.d/49-haproxy.conf"
    install -d -m 755 "${root}/usr/local/etc/haproxy"
    install -d -m 755 -o "${HAPROXY_UID}" -g "${HAPROXY_UID}" "${root}/var/lib/haproxy"
    write_haproxy_entrypoint "${root}/usr/local/bin/docker-entrypoint.sh"

    finish_root "${root}"
    import_root "${root}" "${haproxy_image}-import" \
        "ENV PATH=${CHROOT_PATH}" \
        "USER haproxy" \
        "WORKDIR /var/lib/haproxy" \
        'ENTRYPOINT ["docker-entrypoint.sh"]' \
        'CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
    # `docker import` cannot set STOPSIGNAL; a one-line build adds it (no layer).
    printf 'FROM %s\nSTOPSIGNAL SIGUSR1\n' "${haproxy_image}-import" |
        DOCKER_BUILDKIT=0 docker build -q -t "${haproxy_image}" - >/dev/null
    docker rmi "${haproxy_image}-import" >/dev/null
}

# --- verification ------------------------------------------------------------

verify_rust_builder() {
    docker run --rm "${rust_image}" sh -euc '
        rustc --version; cargo --version
        rustup target list --installed | grep -q x86_64-unknown-linux-musl
        rustup target list --installed | grep -q aarch64-unknown-linux-musl
        command -v pip3 >/dev/null
        # crates.io through any TLS proxy whose CA was given with --ca-bundle.
        curl -fsS -o /dev/null https://index.crates.io/config.json && echo "crates.io index reachable"'
}

verify_distroless() {
    local src="${work}/probe"
    mkdir -p "${src}"
    cat >"${src}/probe.rs" <<'EOF'
use std::os::unix::fs::MetadataExt;
fn main() {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    let cwd = std::env::current_dir().unwrap();
    let checks = [
        ("uid 65532", uid == 65532),
        ("workdir /home/nonroot", cwd.as_os_str() == "/home/nonroot"),
        ("home writable", std::fs::write("/home/nonroot/.probe", b"x").is_ok()),
        ("tmp writable", std::fs::write("/tmp/.probe", b"x").is_ok()),
        ("CA bundle", std::fs::metadata("/etc/ssl/certs/ca-certificates.crt").map(|m| m.len() > 0).unwrap_or(false)),
        ("zoneinfo", std::path::Path::new("/usr/share/zoneinfo/Europe/Paris").exists()),
        ("no /bin/sh", !std::path::Path::new("/bin/sh").exists()),
        ("no dpkg", !std::path::Path::new("/usr/bin/dpkg").exists()),
    ];
    let mut ok = true;
    for (name, pass) in checks {
        println!("{} {}", if pass { "ok  " } else { "FAIL" }, name);
        ok &= pass;
    }
    std::process::exit(if ok { 0 } else { 1 });
}
EOF
    # The builder image compiles the probe, so this needs no toolchain on the host.
    docker run --rm -v "${src}:/src" -w /src "${rust_image}" \
        rustc -O --target "${rust_arch}-unknown-linux-musl" -o probe probe.rs
    docker run --rm -v "${src}/probe:/probe:ro" "${distroless_image}" /probe
    if docker run --rm --entrypoint /bin/sh "${distroless_image}" -c true >/dev/null 2>&1; then
        die "${distroless_image} has a shell"
    fi
    local target
    for target in amd64 arm64; do
        [[ $(docker image inspect -f '{{.Architecture}}' "${distroless_image}-${target}") == "${target}" ]] ||
            die "${distroless_image}-${target} is not a ${target} image"
        echo "${distroless_image}-${target}: linux/${target}"
    done
}

verify_postgres() {
    local name="base-images-verify-$$" volume="base-images-verify-$$"
    docker volume create "${volume}" >/dev/null
    # shellcheck disable=SC2317
    stop_postgres() { docker rm -f "${name}" >/dev/null 2>&1 || true; }
    start_postgres() {
        docker run -d --name "${name}" -v "${volume}:/var/lib/postgresql/data" \
            -e POSTGRES_USER=verify -e POSTGRES_PASSWORD=verify-pw -e POSTGRES_DB=verifydb \
            -e POSTGRES_INITDB_ARGS=--auth-host=scram-sha-256 "${postgres_image}" >/dev/null
        local _
        for _ in $(seq 60); do
            docker exec "${name}" pg_isready -q -h 127.0.0.1 -U verify -d verifydb && return 0
            sleep 1
        done
        docker logs "${name}" >&2
        return 1
    }
    local ok=true
    if start_postgres &&
        docker exec -e PGPASSWORD=verify-pw "${name}" \
            psql -h 127.0.0.1 -U verify -d verifydb -qtAc 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)' &&
        ! docker exec -e PGPASSWORD=wrong "${name}" psql -h 127.0.0.1 -U verify -d verifydb -c 'SELECT 1' >/dev/null 2>&1 &&
        docker stop "${name}" >/dev/null && docker rm "${name}" >/dev/null &&
        start_postgres &&
        [[ $(docker exec -e PGPASSWORD=verify-pw "${name}" psql -h 127.0.0.1 -U verify -d verifydb -qtAc 'SELECT v FROM kept') == 42 ]]
    then
        docker exec "${name}" sh -c 'tail -n1 "$PGDATA/pg_hba.conf"; postgres --version'
        echo "postgres: password auth over TCP, data kept across restarts"
    else
        ok=false
    fi
    stop_postgres
    docker volume rm "${volume}" >/dev/null
    ${ok} || die "${postgres_image} failed verification"
}

verify_haproxy() {
    local name="base-images-verify-haproxy-$$" dir="${work}/haproxy-verify" address
    mkdir -p "${dir}"
    cat >"${dir}/haproxy.cfg" <<'EOF'
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend probe
    bind :8080
    http-request return status 200 content-type text/plain string "proxied by haproxy"
EOF
    chmod 755 "${dir}"
    chmod 644 "${dir}/haproxy.cfg"
    local ok=false _ body=""
    if docker run -d --name "${name}" -p 127.0.0.1::8080 --read-only --cap-drop ALL \
        -v "${dir}/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" "${haproxy_image}" >/dev/null; then
        address="$(docker port "${name}" 8080/tcp | head -n 1)"
        for _ in $(seq 30); do
            body="$(curl -fsS "http://${address}/" 2>/dev/null)" && break
            sleep 1
        done
        if [[ ${body} == "proxied by haproxy" ]] &&
            [[ $(docker exec "${name}" id -u) == "${HAPROXY_UID}" ]] &&
            docker exec "${name}" haproxy -v | grep -q "version ${HAPROXY_VERSION}\." &&
            docker stop -t 10 "${name}" >/dev/null &&
            [[ $(docker inspect -f '{{.State.ExitCode}}' "${name}") == 0 ]]; then
            docker run --rm --entrypoint haproxy "${haproxy_image}" -v | head -n 1
            echo "haproxy: serves the mounted configuration as uid ${HAPROXY_UID}, soft-stops on docker stop"
            ok=true
        else
            docker logs "${name}" >&2 || true
        fi
    fi
    docker rm -f "${name}" >/dev/null 2>&1 || true
    ${ok} || die "${haproxy_image} failed verification"
}

# --- main --------------------------------------------------------------------

# Whether every image that $1 makes exists (an older script made one distroless image only).
built() {
    case "$1" in
        distroless-static)
            image_exists "${distroless_image}" && image_exists "${distroless_image}-amd64" &&
                image_exists "${distroless_image}-arm64"
            ;;
        *) image_exists "$(image_of "$1")" ;;
    esac
}

build() {
    local what="$1" image="$2" started=${SECONDS} old=""
    if built "${what}" && ! ${force}; then
        log "${image} exists (use --force to rebuild)"
        return
    fi
    if image_exists "${image}"; then
        old="$(docker image inspect -f '{{.Id}}' "${image}")"
    fi
    log "building ${image}"
    "build_${what//-/_}"
    # The replaced image, now untagged; kept if a container still uses it.
    if [[ -n ${old} && ${old} != "$(docker image inspect -f '{{.Id}}' "${image}")" ]]; then
        docker rmi "${old}" >/dev/null 2>&1 || true
    fi
    log "built ${image} in $((SECONDS - started)) s ($(docker image inspect -f '{{.Size}}' "${image}" |
        awk '{ printf "%.1f MB", $1 / 1e6 }'))"
}

image_of() {
    case "$1" in
        rust-builder) echo "${rust_image}" ;;
        distroless-static) echo "${distroless_image}" ;;
        postgres) echo "${postgres_image}" ;;
        haproxy) echo "${haproxy_image}" ;;
    esac
}

for what in "${selected[@]}"; do
    build "${what}" "$(image_of "${what}")"
done

if ${verify}; then
    for what in "${selected[@]}"; do
        log "verifying $(image_of "${what}")"
        case "${what}" in
            rust-builder) verify_rust_builder ;;
            distroless-static)
                image_exists "${rust_image}" || die "verifying ${distroless_image} needs ${rust_image}"
                verify_distroless
                ;;
            postgres) verify_postgres ;;
            haproxy) verify_haproxy ;;
        esac
    done
fi
