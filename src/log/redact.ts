/**
 * The one redaction every output uses: the event log, /status, /metrics and the CLI (issue 15,
 * item 2). It hides the userinfo of every URL in a string — `scheme://user:password@host` keeps
 * the user, `scheme://token@host` (a username-only token URL) keeps nothing, but for MongoDB,
 * where a user name alone is an X.509 or Kerberos identity — and walks objects at any depth.
 *
 * URLs are parsed, not matched by one pattern: a password may hold quotes (`it's-s3cret`), an
 * unescaped "@" or "/" (wrong, but seen in hand-written configs) or, in a whole-field value,
 * spaces; none of them may end the password early and leak its tail.
 */

const SCHEME_START = /[a-z][a-z0-9+.-]*:\/\//gi;
const MASK = "***";

/** Where one URL's authority part begins and which userinfo (if any) it carries. */
interface Userinfo {
  /** Offset just after `//`. */
  readonly start: number;
  /** Offset of the "@" that ends the userinfo. */
  readonly at: number;
  /** Offset of the ":" between user and password, or -1 (a username-only token URL). */
  readonly colon: number;
}

/**
 * The userinfo of the URL whose authority starts at `start` in `text`, or undefined. The user
 * name holds no whitespace, "/", ":" or "@" (RFC 3986); the password runs to the LAST "@" of the
 * URL. A URL ends at whitespace — unless the password itself holds spaces and reaches an "@"
 * before any "/" (checked second, so ordinary prose after a URL is left alone).
 */
function findUserinfo(text: string, start: number, end: number): Userinfo | undefined {
  let user = start;
  while (user < end && !/[\s/:@?#]/.test(text[user]!)) user++;
  if (user >= end) return undefined;
  if (text[user] === "@") return user > start ? { start, at: user, colon: -1 } : undefined;
  if (text[user] !== ":") return undefined;
  // user:password — the token up to whitespace; its last "@" ends the password.
  let tokenEnd = user + 1;
  while (tokenEnd < end && !/\s/.test(text[tokenEnd]!)) tokenEnd++;
  const lastAt = text.lastIndexOf("@", tokenEnd - 1);
  if (lastAt > user) return { start, at: lastAt, colon: user };
  // A password with spaces: an "@" on the same line, with no "/" or newline before it.
  if (text.slice(user + 1, tokenEnd).includes("/")) return undefined;
  for (let i = tokenEnd; i < end; i++) {
    const c = text[i]!;
    if (c === "/" || c === "\n" || c === "\r") return undefined;
    if (c === "@") {
      let last = i;
      for (let j = i + 1; j < end && text[j] !== "/" && text[j] !== "\n" && !/\s/.test(text[j]!); j++) if (text[j] === "@") last = j;
      return { start, at: last, colon: user };
    }
  }
  return undefined;
}

/**
 * Every URL's userinfo in `text` redacted: "mongodb://app:s3cret@db/x" → "mongodb://app:***@db/x",
 * "https://ghp_token@host/" → "https://***@host/".
 */
export function redactText(text: string): string {
  if (!text.includes("://")) return text;
  const schemes = [...text.matchAll(SCHEME_START)].map((match) => ({ at: match.index, start: match.index + match[0].length }));
  let out = "";
  let copied = 0;
  for (const [i, { at, start }] of schemes.entries()) {
    if (start < copied) continue; // inside a userinfo already redacted
    // A URL never reaches into the next one's scheme.
    const end = schemes[i + 1]?.at ?? text.length;
    const info = findUserinfo(text, start, end);
    if (!info) continue;
    // A MongoDB user name alone is an identity (an X.509 subject, a Kerberos principal), not a token.
    if (info.colon < 0 && /^mongodb(\+srv)?:/i.test(text.slice(at, start))) continue;
    out += text.slice(copied, start) + (info.colon >= 0 ? `${text.slice(start, info.colon)}:${MASK}` : MASK) + "@";
    copied = info.at + 1;
  }
  return out + text.slice(copied);
}

/** The former name, kept for the MongoDB store's callers. */
export const redactUrlPasswords = redactText;

/**
 * Beyond this depth a value is replaced by a marker, never written as is: a bound for objects
 * built in a loop, while every depth a real log line or /status reaches is redacted.
 */
const MAX_DEPTH = 64;

/**
 * A copy of `value` with every string redacted, at any depth; a cycle becomes "[Circular]".
 * Errors keep what a reader needs (type, message, code, stack, cause, own fields), redacted.
 */
export function redactDeep(value: unknown): unknown {
  return walk(value, 0, new Set());
}

function walk(value: unknown, depth: number, ancestors: Set<object>): unknown {
  if (typeof value === "string") return redactText(value);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value;
  if (ancestors.has(value)) return "[Circular]";
  if (depth >= MAX_DEPTH) return "[Truncated]";
  ancestors.add(value);
  try {
    if (value instanceof Error) return errorFields(value, depth, ancestors);
    if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1, ancestors));
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") return walk((value as { toJSON: () => unknown }).toJSON(), depth + 1, ancestors);
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, walk(item, depth + 1, ancestors)]));
  } finally {
    ancestors.delete(value);
  }
}

function errorFields(error: Error, depth: number, ancestors: Set<object>): Record<string, unknown> {
  const fields: Record<string, unknown> = { type: error.name, message: redactText(error.message) };
  for (const [key, item] of Object.entries(error)) {
    if (key !== "message" && key !== "stack") fields[key] = walk(item, depth + 1, ancestors);
  }
  if (typeof error.stack === "string") fields["stack"] = redactText(error.stack);
  if (error.cause !== undefined) fields["cause"] = walk(error.cause, depth + 1, ancestors);
  if (error instanceof AggregateError) fields["errors"] = walk(error.errors, depth + 1, ancestors);
  return fields;
}
