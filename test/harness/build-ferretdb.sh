#!/usr/bin/env bash
# Builds the FerretDB server the registry tests talk to, from the Go module proxy only.
#
#   test/harness/build-ferretdb.sh            # prints the binary's path on stdout
#
# Why not `go install …/cmd/ferretdb@v1.24.2`: FerretDB embeds build/version/version.txt, which
# its release process generates from git (`task gen-version`); a module-proxy copy has none, so
# that binary panics at start ("Invalid build/version/version.txt file content"). We copy the
# module to a writable dir, write the version file ourselves, and build there.
#
# The result is cached in .cache/ferretdb/ferretdb (gitignored) and reused while it still reports
# the pinned version. Override the location with FERRETDB_CACHE_DIR.
#
# Build tags: none. ferretdb_debug (what upstream's local `task build-host` uses) turns some
# internal errors into crashes and raises logging to debug; the releases we mimic are non-debug.
set -euo pipefail

version=v1.24.2
module=github.com/FerretDB/FerretDB

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache_dir="${FERRETDB_CACHE_DIR:-$repo_root/.cache/ferretdb}"
bin="$cache_dir/ferretdb"

if [ -x "$bin" ] && grep -qx "version: $version" <<<"$("$bin" --version 2>/dev/null)"; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-ferretdb.sh: go is not installed" >&2; exit 1; }

# Never let the toolchain directive in FerretDB's go.mod fetch another Go: CI has one Go and the
# module proxy, nothing else.
export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export CGO_ENABLED=0

mkdir -p "$cache_dir"
src_dir="$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [ -z "$src_dir" ] || [ ! -d "$src_dir" ]; then
  echo "build-ferretdb.sh: go mod download gave no module directory for $module@$version" >&2
  exit 1
fi

work="$(mktemp -d "$cache_dir/build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# The module cache is read-only; the copy must be writable to add the version files.
cp -R "$src_dir/." "$work/"
chmod -R u+w "$work"
printf '%s\n' "$version" >"$work/build/version/version.txt"
# Optional files, shown by `ferretdb --version` and in buildInfo; commit.txt stays absent on
# purpose: when present it must match vcs.revision, which a module zip does not carry.
printf '%s\n' "registrar-test" >"$work/build/version/package.txt"
printf '%s\n' "" >"$work/build/version/branch.txt"

echo "build-ferretdb.sh: building FerretDB $version (about a minute)…" >&2
(cd "$work" && go build -trimpath -o "$work/ferretdb.new" ./cmd/ferretdb)

# The whole output is read first (here and above): `--version | grep -q` under pipefail failed
# when grep, done at the first line, closed the pipe and the binary died of SIGPIPE writing the
# rest (a CI run did).
reported=$("$work/ferretdb.new" --version)
if ! grep -qx "version: $version" <<<"$reported"; then
  echo "build-ferretdb.sh: the built binary does not report $version:" >&2
  "$work/ferretdb.new" --version >&2 || true
  exit 1
fi
# rename(2) so a concurrent reader never sees a half-written binary.
mv -f "$work/ferretdb.new" "$bin"
echo "$bin"
