import { readFile, stat } from "node:fs/promises";
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
 * the password. The file is refused unless its mode has no group/other bits (0600, 0400) and it
 * is owned by root or by the user registrar runs as: anyone else could have swapped it.
 * Nothing read here is ever logged; errors name the file, its owner and mode, never its content.
 */
export async function readCredentialsFile(path: string): Promise<MongoCredentials> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new CredentialsError(path, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? "error"}`, { cause: error });
  }
  const mode = info.mode & 0o777;
  const owner = info.uid;
  const me = process.getuid?.() ?? -1;
  if (!info.isFile()) throw new CredentialsError(path, "is not a regular file", { owner, mode });
  if ((mode & 0o077) !== 0) {
    throw new CredentialsError(path, `is readable or writable by group/others; chmod 600 it`, { owner, mode });
  }
  if (owner !== 0 && owner !== me) {
    throw new CredentialsError(path, `is owned by uid ${owner}, neither root nor registrar's uid ${me}`, { owner, mode });
  }

  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new CredentialsError(path, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? "error"}`, { owner, mode, cause: error });
  }
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
