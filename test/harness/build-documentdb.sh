#!/usr/bin/env bash
# Builds DocumentDB (the PostgreSQL extensions pg_documentdb_core + pg_documentdb and the Rust
# wire-protocol gateway) for the registry tests, from the vendored tarballs and Debian packages.
#
#   test/harness/build-documentdb.sh          # prints the gateway binary's path on stdout
#
# Follows ../shared/vendor/documentdb-recipe.sh (read ../shared/vendor/README.md for why each fix
# is there); the cluster itself is started per suite by test/harness/documentdb.ts.
#
# Inputs: the tarballs in $DOCUMENTDB_VENDOR_DIR, by default ../shared/vendor beside the clone
# (CI puts a copy of shared/ next to the folder it clones into).
# Cache: $DOCUMENTDB_CACHE_DIR, by default /var/cache/registrar-test/documentdb — outside the clone
# on purpose, so a second CI run on the same machine (a fresh clone) reuses it. Each component is
# built once into CACHE/<name>-<sha12 of its tarball>/ (a DESTDIR stage) and installed from there;
# a cached run only re-installs the stages (about a second).
#
# The extensions must live in PostgreSQL's own directories (/usr/lib/postgresql/15/lib,
# /usr/share/postgresql/15/extension): PostgreSQL loads extensions from nowhere else. So this
# needs root, like the apt-get it runs for missing Debian packages.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
vendor="${DOCUMENTDB_VENDOR_DIR:-$repo_root/../shared/vendor}"
cache="${DOCUMENTDB_CACHE_DIR:-/var/cache/registrar-test/documentdb}"
jobs="${JOBS:-2}"
pgver=15
pg_config=/usr/lib/postgresql/$pgver/bin/pg_config
prefix="$cache/prefix"      # private prefix for libbson 1.28 (linked statically: build time only)
work="$cache/work"          # sources and build trees; removed after a successful build
export PATH="$HOME/.cargo/bin:/root/.cargo/bin:$PATH"

apt_pkgs=(build-essential cmake pkg-config ca-certificates openssl libssl-dev
  postgresql-$pgver postgresql-server-dev-$pgver libkrb5-dev
  libintelrdfpmath-dev libpcre2-dev
  postgresql-$pgver-rum postgresql-$pgver-postgis-3 postgresql-$pgver-postgis-3-scripts)

log() { printf 'build-documentdb.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
tarball() {
  local f="$vendor/$1"
  [ -f "$f" ] || die "missing $1 in $vendor (set DOCUMENTDB_VENDOR_DIR to the folder holding the vendored tarballs)"
  printf '%s\n' "$f"
}
sha12() { sha256sum "$1" | cut -c1-12; }
timed() { # timed LABEL cmd... : prints the seconds a step took, so CI logs show where time goes
  local label=$1 s; shift; s=$(date +%s)
  "$@"
  log "$label: $(( $(date +%s) - s )) s"
}

[ "$(id -u)" = 0 ] || die "must run as root (installs into PostgreSQL's directories; apt-get)"

tb_docdb=$(tarball documentdb-b2e220c4.tar.gz)
tb_bson=$(tarball mongo-c-driver-1.28.1.tar.gz)
tb_vector=$(tarball pgvector-0.8.0.tar.gz)
tb_cron=$(tarball pg_cron-1.6.3.tar.gz)

mkdir -p "$cache"
# Two CI runs on one machine must not build into the same stage at once.
exec 9>"$cache/.lock"
flock 9

apt_deps() {
  local missing=() p
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  # Debian's pg_cron 1.4.2 rejects DocumentDB's "2 seconds" schedules and owns the same files as
  # the vendored 1.6.3.
  if dpkg-query -W -f='${Status}' postgresql-$pgver-cron 2>/dev/null | grep -q "install ok installed"; then
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -q postgresql-$pgver-cron >&2
  fi
  command -v cargo >/dev/null || die "cargo not found (the gateway is Rust; expected a rustup toolchain in ~/.cargo/bin)"
}

extract() { # tarball dest: the tarball's single top folder becomes dest
  rm -rf "$2"; mkdir -p "$2"
  tar xzf "$1" -C "$2" --strip-components=1
}

# Copies a stage into / without changing existing directories' modes (e.g. /var/tmp's 1777).
install_stage() {
  tar -C "$1/root" -cf - . | tar -C / -xf - --no-overwrite-dir --no-same-owner
}

build_libbson() {
  local c="$cache/libbson-$(sha12 "$tb_bson")"
  if [ ! -f "$c/.done" ]; then
    extract "$tb_bson" "$work/src/mongo-c-driver"
    rm -rf "$work/build/libbson" "$c"; mkdir -p "$work/build/libbson"
    ( cd "$work/build/libbson"
      cmake "$work/src/mongo-c-driver" -DENABLE_MONGOC=OFF -DENABLE_TESTS=OFF -DENABLE_EXAMPLES=OFF \
        -DENABLE_STATIC=ON -DENABLE_SHARED=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_C_FLAGS=-fPIC \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" >cmake.log
      make -j"$jobs" >make.log
      make install DESTDIR="$c/root" >install.log ) || die "libbson build failed (logs in $work/build/libbson)"
    touch "$c/.done"
  fi
  install_stage "$c"
  # DocumentDB's Makefile asks pkg-config for 'intelmathlib'; Debian ships the library as
  # libbidgcc<CALL_BY_REF><GLOBAL_RND><GLOBAL_FLAGS>.a: the 000 flavour is the one DocumentDB builds.
  cat >"$prefix/lib/pkgconfig/intelmathlib.pc" <<'EOF'
prefix=/usr
libdir=/usr/lib/x86_64-linux-gnu
includedir=/usr/include

Name: intelmathlib
Description: Intel Decimal Floating point math library (Debian libintelrdfpmath-dev, flavour 000)
Version: 2.0 Update 2
Cflags: -I${includedir}
Libs: -L${libdir} -l:libbidgcc000.a
EOF
}

build_pgxs() { # name tarball [make args…]: a plain PGXS extension (pgvector, pg_cron)
  local name=$1 tb=$2; shift 2
  local c="$cache/$name-$(sha12 "$tb")-pg$pgver"
  if [ ! -f "$c/.done" ]; then
    extract "$tb" "$work/src/$name"
    rm -rf "$c"; mkdir -p "$work/build"
    make -C "$work/src/$name" -j"$jobs" PG_CONFIG="$pg_config" "$@" >"$work/build/$name-make.log" 2>&1 \
      || { tail -30 "$work/build/$name-make.log" >&2; die "$name build failed"; }
    make -C "$work/src/$name" install PG_CONFIG="$pg_config" DESTDIR="$c/root" "$@" >"$work/build/$name-install.log" 2>&1
    touch "$c/.done"
  fi
  install_stage "$c"
}

build_documentdb() {
  local c="$cache/documentdb-$(sha12 "$tb_docdb")-pg$pgver" d
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
  if [ ! -f "$c/.done" ]; then
    extract "$tb_docdb" "$work/src/documentdb"
    rm -rf "$c"; mkdir -p "$work/build"
    for d in pg_documentdb_core pg_documentdb; do
      # pg_documentdb links against ../pg_documentdb_core's .so: core first.
      make -C "$work/src/documentdb/$d" -j"$jobs" PG_CONFIG="$pg_config" >"$work/build/$d-make.log" 2>&1 \
        || { grep -B2 -A6 'error' "$work/build/$d-make.log" | head -40 >&2; die "$d build failed"; }
      make -C "$work/src/documentdb/$d" install PG_CONFIG="$pg_config" DESTDIR="$c/root" >"$work/build/$d-install.log" 2>&1
    done
    touch "$c/.done"
  fi
  # Upstream's install target drops older upgrade scripts first; so do we, or a stale one could win.
  rm -f /usr/share/postgresql/$pgver/extension/documentdb--*.sql /usr/share/postgresql/$pgver/extension/documentdb_core--*.sql
  install_stage "$c"
}

build_gateway() {
  local c="$cache/gateway-$(sha12 "$tb_docdb")"
  if [ ! -f "$c/.done" ]; then
    [ -d "$work/src/documentdb/pg_documentdb_gw" ] || extract "$tb_docdb" "$work/src/documentdb"
    rm -rf "$c"; mkdir -p "$c" "$work/build"
    log "cargo build --release of the gateway (about 4 minutes on 2 cores; log: $work/build/gw-cargo.log)"
    ( cd "$work/src/documentdb/pg_documentdb_gw"
      CARGO_TARGET_DIR="$work/build/gw-target" cargo build --release -j"$jobs" >"$work/build/gw-cargo.log" 2>&1 ) \
      || { tail -40 "$work/build/gw-cargo.log" >&2; die "gateway build failed"; }
    cp "$work/build/gw-target/release/documentdb_gateway" "$c/"
    touch "$c/.done"
  fi
  install -D -m 755 "$c/documentdb_gateway" "$cache/bin/documentdb_gateway.new"
  mv -f "$cache/bin/documentdb_gateway.new" "$cache/bin/documentdb_gateway"
}

start=$(date +%s)
timed "apt packages" apt_deps
timed "libbson 1.28.1" build_libbson
# OPTFLAGS= : no -march=native, so a cached build stays valid on another machine of this kind.
timed "pgvector 0.8.0" build_pgxs pgvector "$tb_vector" OPTFLAGS=
timed "pg_cron 1.6.3" build_pgxs pg_cron "$tb_cron"
timed "pg_documentdb_core + pg_documentdb" build_documentdb
timed "gateway" build_gateway
rm -rf "$work"   # the build trees (the cargo target alone is ~1 GB); the stages stay
[ -f "/usr/share/postgresql/$pgver/extension/documentdb.control" ] || die "documentdb.control is not installed"
log "done in $(( $(date +%s) - start )) s"
echo "$cache/bin/documentdb_gateway"
