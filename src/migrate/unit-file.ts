/** One `Key=value` line of a systemd unit file, continuation lines joined, with where it starts. */
export interface Directive {
  readonly section: string;
  readonly key: string;
  readonly value: string;
  readonly line: number;
  /** Column (1-based) where the value starts on `line`. */
  readonly column: number;
  /** Where each physical line of a continued value starts: its offset into `value`, its line and column. */
  readonly pieces: readonly { readonly offset: number; readonly line: number; readonly column: number }[];
}

/** The line and column of `offset` into a directive's (joined) value. */
export function positionIn(d: Directive, offset: number): { line: number; column: number } {
  let piece = d.pieces[0]!;
  for (const p of d.pieces) if (p.offset <= offset) piece = p;
  return { line: piece.line, column: piece.column + (offset - piece.offset) };
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
    const pieces = [{ offset: 0, line: start, column }];
    while (value.endsWith("\\") && n + 1 < lines.length) {
      const next = lines[++n]!;
      value = `${value.slice(0, -1)} `;
      pieces.push({ offset: value.length, line: n + 1, column: next.length - next.trimStart().length + 1 });
      value += next.trim();
    }
    directives.push({ section, key, value: value.trimEnd(), line: start, column, pieces });
  }
  return directives;
}
