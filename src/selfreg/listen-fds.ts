/**
 * sd_listen_fds(3) for Node: the listening socket systemd passes a socket-activated service
 * (registrar.socket, as packaged). systemd, not the daemon, creates /run/registrar/api.sock with
 * its mode and group (SocketMode=0660, SocketGroup=registrar-clients): under the unit's
 * PrivateUsers= the daemon could not chown it to a group it does not see.
 */

/** The first file descriptor systemd passes (SD_LISTEN_FDS_START). */
const FIRST_FD = 3;

/**
 * The descriptor named `name` in LISTEN_FDNAMES (FileDescriptorName=), or the only one passed
 * when none is named; undefined when the variables are not for this process (LISTEN_PID).
 */
export function listenFd(env: NodeJS.ProcessEnv, pid: number, name = "api"): number | undefined {
  if (env["LISTEN_PID"] !== String(pid)) return undefined;
  const count = Number(env["LISTEN_FDS"]);
  if (!Number.isInteger(count) || count < 1) return undefined;
  const names = env["LISTEN_FDNAMES"]?.split(":") ?? [];
  const index = names.indexOf(name);
  if (index >= 0 && index < count) return FIRST_FD + index;
  // systemd names an unnamed socket after its unit ("registrar.socket"): one passed is ours.
  return count === 1 ? FIRST_FD : undefined;
}

/** The variables are the daemon's alone: children (exec checks, systemd-notify) must not inherit them. */
export function forgetListenFds(env: NodeJS.ProcessEnv): void {
  for (const key of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) delete env[key];
}
