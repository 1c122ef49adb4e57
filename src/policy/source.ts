/** Policies and configs are a few hundred bytes; anything near this is a mistake or an attack. */
export const MAX_FILE_BYTES = 1024 * 1024;

/** A 0-based offset in the text turned into the 1-based line and column an editor shows. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

export type SourceText =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly position: Position; readonly message: string };

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });
// Tab, LF and CR are the only C0 controls YAML and JSON allow in a document.
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

/** Decodes bytes as UTF-8 (dropping a BOM) and rejects control characters, with a position. */
export function decodeSource(bytes: Uint8Array): SourceText {
  let text: string;
  try {
    text = STRICT_UTF8.decode(bytes);
  } catch {
    const offset = invalidUtf8Offset(bytes);
    const before = STRICT_UTF8.decode(bytes.subarray(0, offset));
    return {
      ok: false,
      position: positionAt(before, before.length),
      message: `not valid UTF-8 (byte 0x${(bytes[offset] ?? 0).toString(16).padStart(2, "0")} at offset ${offset})`,
    };
  }
  const control = CONTROL.exec(text);
  if (control) {
    const code = control[0].charCodeAt(0);
    const what = code === 0 ? "a NUL byte" : `control character U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
    return { ok: false, position: positionAt(text, control.index), message: `contains ${what} (is this a binary file?)` };
  }
  return { ok: true, text };
}

/** Same convention as yaml's LineCounter: lines start after "\n", columns count UTF-16 units. */
export function positionAt(text: string, offset: number): Position {
  const lineStart = text.lastIndexOf("\n", offset - 1) + 1;
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) line++;
  return { line, column: offset - lineStart + 1 };
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629). */
function invalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    let trailing: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) trailing = 1;
    else if (lead >= 0xe0 && lead <= 0xef) trailing = 2;
    else if (lead >= 0xf0 && lead <= 0xf4) trailing = 3;
    else return i;
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are excluded by narrowing
    // the range of the first continuation byte.
    if (lead === 0xe0) low = 0xa0;
    else if (lead === 0xed) high = 0x9f;
    else if (lead === 0xf0) low = 0x90;
    else if (lead === 0xf4) high = 0x8f;
    const first = bytes[i + 1];
    if (first === undefined || first < low || first > high) return i;
    for (let k = 2; k <= trailing; k++) {
      const next = bytes[i + k];
      if (next === undefined || (next & 0xc0) !== 0x80) return i;
    }
    i += trailing + 1;
  }
  return bytes.length;
}
