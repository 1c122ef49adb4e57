#!/bin/bash
# Boots systemd as PID 1 of a private pid+mount namespace for tests. Run ONLY as
#   unshare --pid --fork --mount --uts --propagation private --mount-proc boot-sandbox.sh UNITDIR
# It mounts tmpfs over /run, /tmp and /var/log; outside a fresh mount namespace those mounts
# would cover the host's, and systemd-tmpfiles would wipe the host's /tmp (seen happen: the
# filesystem is shared). Hence the hard PID-1 check first.
set -euo pipefail

if [ "$$" != 1 ]; then
  echo "boot-sandbox.sh: refusing to run: not PID 1 of a new pid namespace (pid $$)" >&2
  exit 97
fi
# A pid namespace alone would not privatise mounts: require that / propagates nowhere
# (unshare --mount --propagation private), so our tmpfs mounts cannot reach the host.
if ! awk '$5 == "/" { for (i = 7; $i != "-"; i++) if ($i ~ /^shared:/) bad = 1 } END { exit bad }' /proc/self/mountinfo; then
  echo "boot-sandbox.sh: refusing to run: / is a shared mount (run under unshare --mount --propagation private)" >&2
  exit 98
fi

unitdir="${1:-${REGISTRAR_SANDBOX_UNITS:-}}"
if [ -z "$unitdir" ] || [ ! -d "$unitdir" ]; then
  echo "boot-sandbox.sh: no unit directory given" >&2
  exit 99
fi

hostname registrar-sandbox

# The repository, when it lives under a directory the tmpfs mounts below cover (a CI clone in
# /tmp): held on a bind mount in the new /run, and put back at the same path afterwards, so units
# in the sandbox can run the checkout's code. Only mounts, in this private namespace.
share="${2:-}"
covered=""
case "$share" in /tmp/* | /var/tmp/* | /var/log/*) covered=1 ;; esac

# /run first: the staging dir may live under /tmp, which is covered only afterwards.
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd/system
cp -a "$unitdir"/. /run/systemd/system/
if [ -n "$covered" ] && [ -d "$share" ]; then
  mkdir -p /run/registrar-sandbox/share
  mount --bind "$share" /run/registrar-sandbox/share
fi
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /var/log
# PrivateTmp= directories land here and in /tmp; private, they vanish with the namespace and
# never have to be told apart from the host's (they share the host's boot id).
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
if [ -n "$covered" ] && [ -d /run/registrar-sandbox/share ]; then
  mkdir -p "$share"
  mount --bind /run/registrar-sandbox/share "$share"
fi

# Units that touch state shared with the host (the filesystem is not private), or that would
# pull the sandbox into rescue/getty. Masked before systemd ever looks at them.
for u in \
  systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service systemd-tmpfiles-clean.timer \
  systemd-tmpfiles-clean.service \
  systemd-sysusers.service systemd-binfmt.service systemd-sysctl.service \
  systemd-modules-load.service systemd-remount-fs.service systemd-journal-flush.service \
  systemd-update-utmp.service systemd-update-utmp-runlevel.service \
  proc-sys-fs-binfmt_misc.automount getty.target console-getty.service \
  systemd-random-seed.service systemd-update-done.service ldconfig.service \
  systemd-machine-id-commit.service systemd-journal-catalog-update.service \
  systemd-hwdb-update.service systemd-firstboot.service systemd-pstore.service \
  timers.target apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer \
  fstrim.timer logrotate.timer dpkg-db-backup.timer \
  rescue.target emergency.target rescue.service emergency.service; do
  ln -sf /dev/null "/run/systemd/system/$u"
done

cat > /run/systemd/system/registrar-sandbox.target <<'EOF'
[Unit]
Description=registrar test sandbox
Requires=dbus.socket dbus.service
After=dbus.socket dbus.service
AllowIsolate=no
EOF

exec env -i container=other PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /usr/lib/systemd/systemd --unit=registrar-sandbox.target --log-target=kmsg --show-status=0
