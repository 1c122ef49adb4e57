/** `--name=value` / `--name value` / `--flag` flags of one scenario; unknown flags are refused. */
export function parseFlags<T extends Record<string, number | string | boolean>>(argv: readonly string[], defaults: T): T {
  const out: Record<string, number | string | boolean> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-zA-Z][\w-]*)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unexpected argument ${JSON.stringify(arg)}`);
    const key = m[1]!.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
    if (!(key in defaults)) throw new Error(`unknown flag --${m[1]}; known: ${Object.keys(defaults).map((k) => `--${k}`).join(" ")}`);
    const kind = typeof defaults[key];
    let raw = m[2];
    if (raw === undefined && kind !== "boolean") raw = argv[++i];
    if (kind === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new Error(`--${m[1]} wants a number, got ${JSON.stringify(raw)}`);
      out[key] = n;
    } else if (kind === "boolean") out[key] = raw === undefined ? true : raw !== "false";
    else out[key] = raw ?? "";
  }
  return out as T;
}
