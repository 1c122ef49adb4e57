import { writeFileAtomically } from "../fs/atomic-write.js";
import { mkdir, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { TrustOptions } from "../policy/file-trust.js";
import { parseText } from "../policy/parse-file.js";
import { readTrustedText } from "../policy/trusted-text.js";
import { REGISTRATION_FORMAT, RegistrationFile, parseRecord, type Registration } from "./registration.js";

/** A registration file that could not be used; it is reported and left where it is. */
export interface UnreadableRegistration {
  readonly file: string;
  readonly reason: string;
}

/**
 * The registrations kept under `<runtime>/registrations/`, one `NAME.json` each. The runtime
 * directory is /run/registrar (tmpfs): a daemon restart finds them again, a reboot forgets them,
 * as the issue asks — a process that registered itself is gone after a reboot too. Written by the
 * daemon alone (mode 0600, temp file, fsync, rename), read back through the trusted opener.
 */
export class RegistrationStore {
  readonly dir: string;
  readonly #trust: TrustOptions;

  /** `trust`: how files are judged (the CLI, as root, also trusts the daemon's user: daemonTrust()). */
  constructor(runtimeDir: string, trust: TrustOptions = {}) {
    this.dir = join(runtimeDir, "registrations");
    this.#trust = trust;
  }

  fileOf(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  /** Every registration on disk; a missing directory is none. */
  async readAll(): Promise<{ registrations: Registration[]; unreadable: UnreadableRegistration[] }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { registrations: [], unreadable: [] };
      // The directory is the daemon's (mode 0700): a CLI that is not root cannot see into it.
      if (code === "EACCES" || code === "EPERM") return { registrations: [], unreadable: [{ file: this.dir, reason: "permission denied" }] };
      throw error;
    }
    const registrations: Registration[] = [];
    const unreadable: UnreadableRegistration[] = [];
    for (const name of names.sort()) {
      // Temp files of a write in progress (or of a crash during one) start with a dot.
      if (name.startsWith(".") || !name.endsWith(".json")) continue;
      const file = join(this.dir, name);
      const read = await this.#read(file);
      if ("reason" in read) unreadable.push(read);
      else if (`${read.name}.json` !== name) unreadable.push({ file, reason: `holds service ${read.name}, not ${name.slice(0, -".json".length)}` });
      else registrations.push(read);
    }
    return { registrations, unreadable };
  }

  async #read(file: string): Promise<Registration | UnreadableRegistration> {
    let source;
    try {
      source = await readTrustedText(file, this.#trust);
    } catch (error) {
      return { file, reason: (error as Error).message };
    }
    if (!source.ok) return { file, reason: source.errors.map(String).join("; ") };
    const parsed = parseText(file, source.text, RegistrationFile, { what: "registration", format: "json" });
    if (!parsed.ok) return { file, reason: parsed.errors.map(String).join("; ") };
    const record = parseRecord(parsed.value, file);
    return record.ok ? record.registration : { file, reason: record.reason };
  }

  /** Writes (or replaces) one registration; a reader sees the old file or the new, never half. */
  async write(registration: Omit<Registration, "source" | "service">): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const file = this.fileOf(registration.name);
    const record = { format: REGISTRATION_FORMAT, unit: registration.unit, pid: registration.pid, registeredAt: registration.registeredAt, service: registration.raw };
    await writeFileAtomically(file, `${JSON.stringify(record, null, 2)}\n`, 0o600);
    return file;
  }

  /** Removes one registration's file; already gone is fine. */
  async remove(name: string): Promise<void> {
    try {
      await unlink(this.fileOf(name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}
