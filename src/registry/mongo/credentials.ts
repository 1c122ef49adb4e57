import { stat } from "node:fs/promises";
import { readTrusted } from "../../policy/file-trust.js";
import { join } from "node:path";
import { CredentialsError } from "../errors.js";

export interface MongoCredentials {
  username: string;
  password: string;
}

/**
 * The systemd credential name: with `LoadCredential=mongodb:/etc/registrar/mongodb.credentials`
 * in the unit, systemd places a private copy at $CREDENTIALS_DIRECTORY/mongodb, readable by the
 * service even when the original is root-only.
 */
export const SYSTEMD_CREDENTIAL_NAME = "mongodb";

/** A username and password are a few dozen bytes; a credentials file of more is a mistake. */
const MAX_CREDENTIALS_BYTES = 64 * 1024;

/**
 * Where the credentials come from: systemd's $CREDENTIALS_DIRECTORY/<name> when that variable is
 * set and the credential exists (the unit decided), else the configured file, else none.
 */
export async function resolveCredentialsPath(
  credentialsFile: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  name = SYSTEMD_CREDENTIAL_NAME,
): Promise<string | undefined> {
  const dir = env["CREDENTIALS_DIRECTORY"];
  if (dir) {
    const candidate = join(dir, name);
    const exists = await stat(candidate).then(
      () => true,
      () => false,
    );
    if (exists) return candidate;
  }
  return credentialsFile;
}

/**
 * Reads a credentials file. Two formats, told apart by the first non-blank character:
 *
 *     app:s3cret:with:colons            username, then everything after the FIRST ":" is the password
 *     {"username": "app", "password": "s3cret"}
 *
 * One trailing newline is dropped (editors add one); other whitespace is kept, it may be part of
 * the password. The file is refused unless its mode has no group/other bits (0600, 0400), it is
 * owned by root or by the user registrar runs as, and so is every directory above it: anyone
 * else could have swapped it.
 * Nothing read here is ever logged; errors name the file, its owner and mode, never its content.
 */
export async function readCredentialsFile(path: string): Promise<MongoCredentials> {
  // The one trusted-file opener (src/policy/file-trust.ts): directories checked, the descriptor
  // read is the one fstat'ed, symlinks resolved and their targets held to the same rules.
  let read;
  try {
    read = await readTrusted(path, { secret: true, maxBytes: MAX_CREDENTIALS_BYTES });
  } catch (error) {
    throw new CredentialsError(path, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? "error"}`, { cause: error });
  }
  if (!read.ok) throw new CredentialsError(path, `is ${read.error.message}`);
  const { owner, mode } = read;
  let text = read.bytes.toString("utf8");
  text = text.replace(/\r?\n$/, "");

  let username: unknown;
  let password: unknown;
  if (text.trimStart().startsWith("{")) {
    try {
      ({ username, password } = JSON.parse(text) as { username?: unknown; password?: unknown });
    } catch {
      // Deliberately no cause: a JSON parse error quotes the text around the fault.
      throw new CredentialsError(path, "is not valid JSON", { owner, mode });
    }
  } else {
    const colon = text.indexOf(":");
    if (colon > 0) {
      username = text.slice(0, colon);
      password = text.slice(colon + 1);
    }
  }
  if (typeof username !== "string" || username === "" || typeof password !== "string" || password === "") {
    throw new CredentialsError(path, 'holds no credentials: expected "username:password" or {"username": …, "password": …}', { owner, mode });
  }
  return { username, password };
}
