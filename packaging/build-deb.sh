#!/usr/bin/env bash
# Builds the registrar .deb with dpkg-deb alone (no debhelper): `npm run package`.
#
#   /usr/lib/registrar/         the built JavaScript (dist/), bin/, package.json, production node_modules,
#                               policies/ (examples and the JSON Schema editors point at)
#   /usr/bin/registrar          a wrapper that execs node, so systemd's MainPID is node itself
#   /lib/systemd/system/registrar.service, registrar.socket (the local API, /run/registrar/api.sock)
#   /etc/registrar/registrar.yaml   (conffile: every key commented out, so the defaults apply)
#   /etc/registrar/policies.d/      (empty; operators drop one policy per file here)
#
# The maintainer scripts are what dh_installsystemd would generate, written out by hand.
# Output: .cache/deb/registrar_VERSION_all.deb (git-ignored). Needs node, npm (with network or a
# warm cache for `npm ci`), dpkg-deb; lintian runs afterwards when installed (LINTIAN=0 skips it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="${REGISTRAR_DEB_OUT:-.cache/deb}"
maintainer="${DEBFULLNAME:-registrar maintainers} <${DEBEMAIL:-registrar-maintainers@example.org}>"
version="$(node -p 'require("./package.json").version')"
stage="$out/stage"
lib="$stage/usr/lib/registrar"
deb="$out/registrar_${version}_all.deb"

rm -rf "$stage"
mkdir -p "$lib/bin" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/registrar/policies.d" \
  "$stage/usr/share/doc/registrar" "$stage/DEBIAN"

# The build goes straight into the package: never into the checkout's dist/, which bin/registrar.js
# would prefer over the sources from then on.
npm run --silent build -- --outDir "$lib/dist"
cp package.json package-lock.json "$lib/"
cp bin/registrar.js "$lib/bin/"
mkdir -p "$lib/policies"
cp policies/*.json policies/*.yaml "$lib/policies/"
# Production dependencies only, exactly as locked. No optional dependencies and no install
# scripts: dbus-next's optional native `usocket` (and the node-gyp it pulls in) is not needed,
# unix sockets are plain net sockets, so the package stays Architecture: all.
(cd "$lib" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
rm "$lib/package-lock.json"
# What npm tarballs carry for their own repositories and docs sites, not for running: lintian
# calls .npmignore files errors, and docs pages that load scripts from CDNs privacy breaches.
find "$lib/node_modules" -type f \( -name .npmignore -o -name '.git*' -o -name '.travis.yml' -o -name '*.html' \) -delete
# The packaged tree must run on its production dependencies alone.
node "$lib/bin/registrar.js" validate --config packaging/registrar.yaml --policies "$lib/policies" >/dev/null
# find's whole output is read first: `find | grep -q .` under pipefail could make grep's early
# exit kill find with SIGPIPE and fail the test, so an addon would pass unseen.
if [ -n "$(find "$lib/node_modules" -name '*.node')" ]; then
  echo "build-deb: native addons in node_modules; the package cannot be Architecture: all" >&2
  exit 1
fi

cat > "$stage/usr/bin/registrar" <<'EOF'
#!/bin/sh
# exec: under systemd, node must be the main process (sd_notify, watchdog, signals).
exec /usr/bin/node /usr/lib/registrar/bin/registrar.js "$@"
EOF
chmod 0755 "$stage/usr/bin/registrar"

cp packaging/registrar.service "$stage/lib/systemd/system/registrar.service"
cp packaging/registrar.socket "$stage/lib/systemd/system/registrar.socket"
cp packaging/registrar.yaml "$stage/etc/registrar/registrar.yaml"
cp README.md "$stage/usr/share/doc/registrar/README.md"
cat > "$stage/usr/share/doc/registrar/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: registrar

Files: *
Copyright: registrar contributors
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 and associated documentation files (the "Software"), to deal in the Software without
 restriction, including without limitation the rights to use, copy, modify, merge, publish,
 distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
 BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
 NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

Files: usr/lib/registrar/node_modules/*
Copyright: the authors of each module, as named in its package.json
License: various
 Each module's license is in its directory under /usr/lib/registrar/node_modules.
EOF
# A date from git, not the clock: the same commit builds the same changelog.
date_rfc2822="$(git log -1 --format=%aD 2>/dev/null || date -R)"
gzip -9n > "$stage/usr/share/doc/registrar/changelog.gz" <<EOF
registrar (${version}) unstable; urgency=medium

  * Built from the registrar repository (commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)).

 -- ${maintainer}  ${date_rfc2822}
EOF

installed_kb="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat > "$stage/DEBIAN/control" <<EOF
Package: registrar
Version: ${version}
Architecture: all
Section: admin
Priority: optional
Maintainer: ${maintainer}
Installed-Size: ${installed_kb}
Depends: nodejs (>= 20), adduser, systemd
Suggests: polkitd
Description: keeps a service registry true to what systemd runs
 A per-host daemon that watches systemd unit states over D-Bus, probes
 health URLs, and reconciles a service registry (an embedded JSON file or
 MongoDB) from policy files in /etc/registrar/policies.d. Every decision is
 one JSON line in the journal.
EOF
echo "/etc/registrar/registrar.yaml" > "$stage/DEBIAN/conffiles"

cat > "$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e

if [ "$1" = "configure" ]; then
	# The service's user: no home, no shell, no privileges; reading systemd's state over D-Bus
	# needs none. Not DynamicUser=: see the comment in the unit.
	if ! getent passwd registrar >/dev/null; then
		adduser --system --group --quiet --no-create-home --home /nonexistent registrar
	else
		# An existing account is reused only if it is a system one: a person's account of that
		# name would otherwise run the daemon and own its state (issue 15, item 13).
		uid=$(getent passwd registrar | cut -d: -f3)
		first=$(sed -n 's/^FIRST_SYSTEM_UID=\([0-9][0-9]*\).*/\1/p' /etc/adduser.conf 2>/dev/null | tail -n 1)
		last=$(sed -n 's/^LAST_SYSTEM_UID=\([0-9][0-9]*\).*/\1/p' /etc/adduser.conf 2>/dev/null | tail -n 1)
		first=${first:-100}
		last=${last:-999}
		if [ "$uid" -lt "$first" ] || [ "$uid" -gt "$last" ]; then
			echo "registrar: refusing to configure: the account 'registrar' exists (uid $uid) but is not a system account (system uids are $first-$last)." >&2
			echo "registrar: the daemon would run as it and own /var/lib/registrar. Remove or rename that account, or create the system user yourself (adduser --system --group --no-create-home --home /nonexistent registrar), then run: dpkg --configure registrar" >&2
			exit 1
		fi
	fi
	# Who may use the local API (registrar.socket's SocketGroup=): `adduser tickets registrar-clients`.
	if ! getent group registrar-clients >/dev/null; then
		addgroup --system --quiet registrar-clients
	fi
fi

# Written out from debhelper's postinst-systemd-enable and postinst-systemd-restart snippets.
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	for unit in registrar.socket registrar.service; do
		# This will only remove masks created by d-s-h on package removal.
		deb-systemd-helper unmask "$unit" >/dev/null || true

		# was-enabled defaults to true, so new installations run enable.
		if deb-systemd-helper --quiet was-enabled "$unit"; then
			# Enables the unit on first installation, creates new
			# symlinks on upgrades if the unit file has changed.
			deb-systemd-helper enable "$unit" >/dev/null || true
		else
			# Update the statefile to add new symlinks (if any), which need to be
			# cleaned up on purge. Also remove old symlinks.
			deb-systemd-helper update-state "$unit" >/dev/null || true
		fi
	done
fi

if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		# The socket first, so the daemon is handed it when it starts. systemd refuses to start a
		# socket whose service runs (an upgrade from a version without it), so an upgrade stops
		# the daemon first rather than restarting it; a socket already listening stays as it is.
		if [ -n "$2" ]; then
			deb-systemd-invoke stop 'registrar.service' >/dev/null || true
		fi
		deb-systemd-invoke start 'registrar.socket' >/dev/null || true
		deb-systemd-invoke start 'registrar.service' >/dev/null || true
	fi
fi

exit 0
EOF

cat > "$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e

# From debhelper's prerm-systemd snippet.
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop 'registrar.socket' 'registrar.service' >/dev/null || true
fi

exit 0
EOF

cat > "$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e

# From debhelper's postrm-systemd and postrm-systemd-reload-only snippets.
if [ "$1" = remove ] && [ -d /run/systemd/system ] ; then
	systemctl --system daemon-reload >/dev/null || true
fi

if [ "$1" = "remove" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper mask 'registrar.socket' 'registrar.service' >/dev/null || true
	fi
fi

if [ "$1" = "purge" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper purge 'registrar.socket' 'registrar.service' >/dev/null || true
		deb-systemd-helper unmask 'registrar.socket' 'registrar.service' >/dev/null || true
	fi
	# The embedded registry (StateDirectory=) and the self-registrations (RuntimeDirectory=).
	# The registrar user and the registrar-clients group stay: removing a system user or group
	# could hand its id, and any file it still owns, to the next one created.
	rm -rf /var/lib/registrar /run/registrar
fi

exit 0
EOF

chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles"
# npm leaves whatever modes the tarballs had; a package wants 0644 files and 0755 dirs, with the
# executable bit kept only where a file has one.
find "$stage" -path "$stage/DEBIAN" -prune -o -type d -exec chmod 0755 {} +
find "$stage" -path "$stage/DEBIAN" -prune -o -type f -exec chmod u+rw,go+r,go-w {} +

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"

if [ "${LINTIAN:-1}" != 0 ] && command -v lintian >/dev/null; then
  # Errors fail the build; warnings are printed for the record.
  lintian --fail-on error "$deb"
fi
