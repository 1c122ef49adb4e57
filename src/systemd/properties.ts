/**
 * Turning systemd's D-Bus property dictionaries into UnitState. dbus-next hands over `a{sv}` as
 * an object of Variants ({ signature, value }), 64-bit integers (t/x) as BigInt and `ay` as a
 * Buffer; everything here is pure so it can be tested without a bus.
 */
import type { UnitState } from "./types.js";

export const UNIT_INTERFACE = "org.freedesktop.systemd1.Unit";
export const SERVICE_INTERFACE = "org.freedesktop.systemd1.Service";

/** The UnitState fields read from each interface, by D-Bus property name. */
const UNIT_PROPS = {
  LoadState: "loadState",
  ActiveState: "activeState",
  SubState: "subState",
  InvocationID: "invocationId",
} as const;
const SERVICE_PROPS = {
  Result: "result",
  NRestarts: "nRestarts",
  MainPID: "mainPid",
} as const;

/** The property names whose invalidation (without a value) means the unit must be re-read. */
export const TRACKED_PROPERTIES: ReadonlySet<string> = new Set([...Object.keys(UNIT_PROPS), ...Object.keys(SERVICE_PROPS)]);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export type UnitStatePatch = Partial<Mutable<Omit<UnitState, "unit">>>;

/** A Variant's payload, or the value itself when it is not wrapped. */
export function unwrapVariant(v: unknown): unknown {
  if (v !== null && typeof v === "object" && "signature" in v && "value" in v) return (v as { value: unknown }).value;
  return v;
}

/**
 * A D-Bus integer as a JS number. BigInt (t/x) beyond 2^53 cannot be represented: systemd uses
 * UINT64_MAX as "infinity"/"unset", which becomes Number.MAX_SAFE_INTEGER rather than a lie.
 */
export function toNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") {
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
    if (v < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
    return Number(v);
  }
  if (typeof v === "string" && /^-?\d+$/.test(v)) return toNumber(BigInt(v));
  return 0;
}

/** An `ay` (Buffer, Uint8Array or number[]) as lower-case hex; "" for empty or unknown. */
export function bytesToHex(v: unknown): string {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex");
  if (Array.isArray(v) && v.every((b) => typeof b === "number" && b >= 0 && b <= 255)) return Buffer.from(v as number[]).toString("hex");
  return "";
}

function toStr(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** D-Bus integer type codes: systemd sends NRestarts and MainPID as u; tests and forks use t/x. */
const INTEGER_SIGNATURES = new Set(["y", "n", "q", "i", "u", "x", "t"]);
/** What systemd's state words look like ("active", "auto-restart", "exit-code", "not-found"). */
const STATE_WORD = /^[a-z][a-z0-9-]{0,63}$/;

type Expected = "word" | "bytes" | "integer";
const EXPECTED: Readonly<Record<string, Readonly<Record<string, Expected>>>> = {
  [UNIT_INTERFACE]: { LoadState: "word", ActiveState: "word", SubState: "word", InvocationID: "bytes" },
  [SERVICE_INTERFACE]: { Result: "word", NRestarts: "integer", MainPID: "integer" },
};

function signatureOf(v: unknown): string | undefined {
  return v !== null && typeof v === "object" && "signature" in v && "value" in v ? String((v as { signature: unknown }).signature) : undefined;
}

function fits(expected: Expected, v: unknown): boolean {
  const signature = signatureOf(v);
  const value = unwrapVariant(v);
  switch (expected) {
    case "word":
      return (signature === undefined || signature === "s") && typeof value === "string" && STATE_WORD.test(value);
    case "bytes": {
      const bytes = value instanceof Uint8Array || (Array.isArray(value) && value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255));
      const length = bytes ? (value as ArrayLike<number>).length : -1;
      return (signature === undefined || signature === "ay") && bytes && (length === 0 || length === 16);
    }
    case "integer":
      if (signature !== undefined && !INTEGER_SIGNATURES.has(signature)) return false;
      return (typeof value === "number" && Number.isInteger(value) && value >= 0) || (typeof value === "bigint" && value >= 0n);
  }
}

/**
 * The tracked properties in `props` whose value is not what systemd sends (a state word as an
 * int, InvocationID as a string, NRestarts as a string, a 1 MB ActiveState, …), each with what
 * came instead — never the value itself, which may be huge. parseProperties leaves them out.
 */
export function malformedProperties(iface: string, props: Readonly<Record<string, unknown>>): string[] {
  const expected = EXPECTED[iface] ?? {};
  const bad: string[] = [];
  for (const [name, kind] of Object.entries(expected)) {
    if (!(name in props) || fits(kind, props[name])) continue;
    const v = unwrapVariant(props[name]);
    const what = typeof v === "string" ? `string of ${v.length} chars` : Array.isArray(v) ? "array" : v === null ? "null" : typeof v;
    bad.push(`${name} (${signatureOf(props[name]) ?? "no signature"}: ${what})`);
  }
  return bad;
}

/**
 * The tracked fields present in one property dictionary of `iface` (Properties.Get replies or
 * PropertiesChanged changed_properties). Absent or mistyped properties are left out (see
 * malformedProperties), so the result can be merged onto what is already known.
 */
export function parseProperties(iface: string, raw: Readonly<Record<string, unknown>>): UnitStatePatch {
  const patch: UnitStatePatch = {};
  const expected = EXPECTED[iface] ?? {};
  const props = Object.fromEntries(Object.entries(raw).filter(([name, v]) => !(name in expected) || fits(expected[name]!, v)));
  if (iface === UNIT_INTERFACE) {
    const load = toStr(unwrapVariant(props.LoadState));
    if (load !== undefined) patch.loadState = load;
    const active = toStr(unwrapVariant(props.ActiveState));
    if (active !== undefined) patch.activeState = active;
    const sub = toStr(unwrapVariant(props.SubState));
    if (sub !== undefined) patch.subState = sub;
    if ("InvocationID" in props) patch.invocationId = bytesToHex(unwrapVariant(props.InvocationID));
  } else if (iface === SERVICE_INTERFACE) {
    const result = toStr(unwrapVariant(props.Result));
    if (result !== undefined) patch.result = result;
    if ("NRestarts" in props) patch.nRestarts = toNumber(unwrapVariant(props.NRestarts));
    if ("MainPID" in props) patch.mainPid = toNumber(unwrapVariant(props.MainPID));
  }
  return patch;
}

/** The state systemd reports for a name it has no unit file for (and the starting point of merges). */
export function emptyState(unit: string, loadState = "not-found"): UnitState {
  return { unit, loadState, activeState: "inactive", subState: "dead", result: "success", invocationId: "", nRestarts: 0, mainPid: 0 };
}

/** `base` with the patch applied; a new object (cached states are never mutated). */
export function applyPatch(base: UnitState, patch: UnitStatePatch): UnitState {
  return { ...base, ...patch };
}

export function sameState(a: UnitState | undefined, b: UnitState | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.unit === b.unit &&
    a.loadState === b.loadState &&
    a.activeState === b.activeState &&
    a.subState === b.subState &&
    a.result === b.result &&
    a.invocationId === b.invocationId &&
    a.nRestarts === b.nRestarts &&
    a.mainPid === b.mainPid
  );
}
