import { open, readFile, unlink } from "node:fs/promises";

/**
 * A cross-process lock beside the registry file: `PATH.lock` created with O_EXCL and holding the
 * owner's pid. Node has no flock(2); O_EXCL is atomic on local filesystems, and a lock whose pid
 * is gone (a SIGKILLed daemon) is taken over rather than wedging every later writer.
 */
export async function withFileLock<T>(path: string, body: () => Promise<T>, timeoutMs = 5_000): Promise<T> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lockPath, "wx", 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (await holderIsGone(lockPath)) {
        await unlink(lockPath).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`registry file ${path} stayed locked by ${lockPath} for ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, 2 ** attempt)));
    }
  }
  try {
    return await body();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}

async function holderIsGone(lockPath: string): Promise<boolean> {
  const text = await readFile(lockPath, "utf8").catch(() => "");
  const pid = Number.parseInt(text, 10);
  // An empty lock file is a holder between open() and writeFile(): not gone.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}
