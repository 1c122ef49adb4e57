/**
 * What of a file's text an error may show. `registrar validate` runs as root and prints its
 * errors; pointed at /etc/shadow (through a symlink in policies.d, or `--config`), every line
 * came back as an "unknown key" error with its hash (issue 15, item 3). So an error shows at
 * most a short, quoted excerpt of the offending key or value, never a line of the file.
 */

/** A key as written in a policy: word characters, `$`, dots and dashes, not too long. */
const KEY_NAME = /^[\w$][\w$.-]{0,39}$/;
/** Longest run of file text that may appear quoted in a message. */
export const MAX_EXCERPT = 32;
/** Longest message: a parser's own message may quote the source in ways not known here. */
export const MAX_MESSAGE = 200;

/** True when `key` looks like a key someone meant to write (and may be shown whole). */
export function isKeyName(key: string): boolean {
  return KEY_NAME.test(key);
}

/** `"authorisedRoles"` whole; `"root…"` for a key that is not a key name (a line of some other file). */
export function keyExcerpt(key: string): string {
  if (isKeyName(key)) return JSON.stringify(key);
  const lead = /^[\w-]{0,16}/.exec(key)?.[0] ?? "";
  return `${JSON.stringify(lead).slice(0, -1)}…" (${key.length} characters, not a key name)`;
}

/** Shortens every quoted run in `message` to MAX_EXCERPT characters, and the whole to MAX_MESSAGE. */
export function limitExcerpts(message: string): string {
  const quoted = message.replace(/"((?:[^"\\]|\\.)*)"/g, (whole, inner: string) => (inner.length > MAX_EXCERPT ? `"${inner.slice(0, MAX_EXCERPT)}…"` : whole));
  return quoted.length > MAX_MESSAGE ? `${quoted.slice(0, MAX_MESSAGE - 1)}…` : quoted;
}
