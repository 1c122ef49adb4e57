/**
 * The value inside `db.services.insert(…)` as the mongo shell read it: a JavaScript object
 * literal (unquoted keys, single or double quotes, trailing commas, comments). Only literals:
 * anything computed (`ObjectId()`, `new Date()`, a variable, `+`) is refused with its position,
 * since a migration must not guess what a script meant.
 */
export type Literal = string | number | boolean | null | Literal[] | { [key: string]: Literal };

export class LiteralError extends Error {
  override readonly name = "LiteralError";
  constructor(
    message: string,
    /** Offset into the text given to parseLiteral. */
    readonly offset: number,
  ) {
    super(message);
  }
}

/** Parses one literal at `start`; returns it and the offset just past it. */
export function parseLiteral(text: string, start = 0): { value: Literal; end: number } {
  let i = start;
  const fail = (message: string, at = i): never => {
    throw new LiteralError(message, at);
  };
  const skip = () => {
    for (;;) {
      while (i < text.length && /\s/.test(text[i]!)) i++;
      if (text.startsWith("//", i)) {
        while (i < text.length && text[i] !== "\n") i++;
      } else if (text.startsWith("/*", i)) {
        const close = text.indexOf("*/", i + 2);
        if (close < 0) fail("unterminated comment");
        i = close + 2;
      } else return;
    }
  };
  const string = (): string => {
    const quote = text[i]!;
    let out = "";
    i++;
    while (i < text.length && text[i] !== quote) {
      if (text[i] === "\\") {
        const next = text[i + 1];
        if (next === undefined) break;
        out += next === "n" ? "\n" : next === "t" ? "\t" : next;
        i += 2;
      } else if (text[i] === "\n") {
        fail("unterminated string");
      } else out += text[i++];
    }
    if (i >= text.length) fail("unterminated string");
    i++;
    return out;
  };
  const value = (): Literal => {
    skip();
    const c = text[i];
    if (c === undefined) return fail("a value is missing");
    if (c === "{") {
      i++;
      const object: Record<string, Literal> = {};
      for (;;) {
        skip();
        if (text[i] === "}") {
          i++;
          return object;
        }
        const keyAt = i;
        let key: string;
        if (text[i] === '"' || text[i] === "'") key = string();
        else {
          const m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(text.slice(i));
          if (!m) return fail(`expected a key or "}", found ${describe(text, i)}`);
          key = m[0];
          i += key.length;
        }
        if (Object.hasOwn(object, key)) fail(`key "${key}" appears twice`, keyAt);
        skip();
        if (text[i] !== ":") fail(`expected ":" after key "${key}", found ${describe(text, i)}`);
        i++;
        object[key] = value();
        skip();
        if (text[i] === ",") i++;
        else if (text[i] !== "}") fail(`expected "," or "}", found ${describe(text, i)}`);
      }
    }
    if (c === "[") {
      i++;
      const array: Literal[] = [];
      for (;;) {
        skip();
        if (text[i] === "]") {
          i++;
          return array;
        }
        array.push(value());
        skip();
        if (text[i] === ",") i++;
        else if (text[i] !== "]") fail(`expected "," or "]", found ${describe(text, i)}`);
      }
    }
    if (c === '"' || c === "'") return string();
    const number = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (number) {
      i += number[0].length;
      return Number(number[0]);
    }
    for (const [word, literal] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, i) && !/[A-Za-z0-9_$]/.test(text[i + word.length] ?? "")) {
        i += word.length;
        return literal;
      }
    }
    const word = /^[A-Za-z_$][A-Za-z0-9_$.]*/.exec(text.slice(i))?.[0];
    return fail(word ? `"${word}" is computed, not a literal; write the value itself` : `unexpected ${describe(text, i)}`);
  };
  const result = value();
  return { value: result, end: i };
}

function describe(text: string, i: number): string {
  if (i >= text.length) return "the end of the command";
  return JSON.stringify(text[i]);
}
