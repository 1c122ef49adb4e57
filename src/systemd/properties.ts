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

/**
 * The tracked fields present in one property dictionary of `iface` (GetAll reply or
 * PropertiesChanged changed_properties). Absent or mistyped properties are left out, so the
 * result can be merged onto what is already known.
 */
export function parseProperties(iface: string, props: Readonly<Record<string, unknown>>): UnitStatePatch {
  const patch: UnitStatePatch = {};
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
