/** One `Key=value` line of a systemd unit file, continuation lines joined, with where it starts. */
export interface Directive {
  readonly section: string;
  readonly key: string;
  readonly value: string;
  readonly line: number;
  /** Column (1-based) where the value starts on `line`. */
  readonly column: number;
}

/**
 * The directives of a unit file, in order, as systemd reads them: `[Section]` headers, `#` and
 * `;` comments, a trailing backslash joining the next line (with a space). Enough to find the
 * original design's ExecStartPost=/ExecStopPost= lines; nothing is interpreted.
 */
export function readDirectives(text: string): Directive[] {
  const lines = text.split(/\r?\n/);
  const directives: Directive[] = [];
  let section = "";
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) continue;
    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = raw.indexOf("=");
    if (eq < 0) continue;
    const key = raw.slice(0, eq).trim();
    const start = n + 1;
    let value = raw.slice(eq + 1);
    const column = eq + 2 + (value.length - value.trimStart().length);
    value = value.trimStart();
    while (value.endsWith("\\") && n + 1 < lines.length) {
      value = `${value.slice(0, -1)} ${lines[++n]!.trim()}`;
    }
    directives.push({ section, key, value: value.trimEnd(), line: start, column });
  }
  return directives;
}
