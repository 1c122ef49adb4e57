import { resolve } from "node:path";
import { PolicyError } from "./errors.js";
import { readTrusted, type TrustOptions } from "./file-trust.js";
import { decodeSource } from "./source.js";

export type TrustedText = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly errors: PolicyError[] };

/**
 * A policy or config file as text, through the trusted opener: refused when it or a directory
 * above it is not trusted, more than the byte cap, not UTF-8, or holding NUL and other control
 * characters (a binary file dropped into policies.d). Open failures (ENOENT, EACCES, ELOOP,
 * EISDIR) reject with the errno error so callers can tell "missing" from "broken".
 */
export async function readTrustedText(file: string, options: TrustOptions = {}): Promise<TrustedText> {
  const read = await readTrusted(file, options);
  if (!read.ok) return { ok: false, errors: [read.error] };
  const decoded = decodeSource(read.bytes);
  if (!decoded.ok) return { ok: false, errors: [new PolicyError({ file: resolve(file), ...decoded.position, message: decoded.message })] };
  return { ok: true, text: decoded.text };
}
