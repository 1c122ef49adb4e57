/**
 * Replacing a file so that a reader sees the old content or the new, never half, and a crash
 * leaves one of the two: the text goes to a temp file beside it, is fsynced, renamed over the
 * file, and the directory is fsynced (the rename is only durable once the entry is). The temp
 * name is fresh and unguessable, created with O_EXCL ("wx"): a symlink or file planted at a
 * predictable name is never followed or overwritten (issue 15, item 11).
 */
import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export async function writeFileAtomically(file: string, text: string, mode: number): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(8).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", mode);
  try {
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  const dir = await open(dirname(file), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
