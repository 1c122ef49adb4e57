/**
 * Reading the signals the watcher listens to. Pure: which signal a message is (and whether its
 * sender may send it), and what a PropertiesChanged says, checked against what systemd sends.
 */
import type { Message } from "dbus-next";
import { SIGNAL } from "./connection.js";
import { DBUS, MANAGER, PROPERTIES, SYSTEMD } from "./bus-names.js";
import { SERVICE_INTERFACE, TRACKED_PROPERTIES, UNIT_INTERFACE, malformedProperties, parseProperties, type UnitStatePatch } from "./properties.js";

export type WatcherSignal =
  /** A unit's PropertiesChanged, from systemd; `path` is the unit's object path. */
  | { readonly kind: "properties"; readonly path: string; readonly signature: string; readonly body: unknown[] }
  /** Manager.Reloading(false): a daemon-reload finished. */
  | { readonly kind: "reloaded" }
  /** org.freedesktop.systemd1 has a new owner ("" when systemd left the bus). */
  | { readonly kind: "owner"; readonly owner: string }
  /** Manager.UnitNew / UnitRemoved: systemd loaded or unloaded the unit `unit` (template instances come and go). */
  | { readonly kind: "unit-new" | "unit-removed"; readonly unit: string };

/**
 * What `msg` means to the watcher, or undefined when nothing. Signals from anyone but `owner`
 * (systemd's unique name) are ignored — except NameOwnerChanged, which only the bus sends.
 */
export function classifySignal(msg: Message, owner: string | undefined): WatcherSignal | undefined {
  if ((msg.type as number) !== SIGNAL) return undefined;
  if (msg.interface === PROPERTIES && msg.member === "PropertiesChanged") {
    if (msg.sender !== owner) return undefined;
    return { kind: "properties", path: msg.path, signature: msg.signature ?? "", body: msg.body };
  }
  if (msg.interface === MANAGER && msg.member === "Reloading") {
    if (msg.sender !== owner) return undefined;
    return msg.body[0] === false ? { kind: "reloaded" } : undefined;
  }
  if (msg.interface === MANAGER && (msg.member === "UnitNew" || msg.member === "UnitRemoved")) {
    const [unit] = msg.body as [unknown];
    if (msg.sender !== owner || msg.signature !== "so" || typeof unit !== "string") return undefined;
    return { kind: msg.member === "UnitNew" ? "unit-new" : "unit-removed", unit };
  }
  if (msg.interface === DBUS && msg.member === "NameOwnerChanged" && msg.sender === DBUS) {
    const [name, , newOwner] = msg.body as [string, string, string];
    return name === SYSTEMD ? { kind: "owner", owner: newOwner } : undefined;
  }
  return undefined;
}

export type PropertiesChange =
  /** Not shaped like systemd's (s a{sv} as): ignored as a whole. */
  | { readonly kind: "malformed"; readonly what: string }
  /** An interface the watcher does not track. */
  | { readonly kind: "untracked" }
  | {
      readonly kind: "patch";
      readonly iface: string;
      /** The well-formed tracked values (the others are left out). */
      readonly patch: UnitStatePatch;
      /** The tracked properties whose value did not fit, if any. */
      readonly malformed: string | undefined;
      /** A tracked property was invalidated (changed without a value): the unit must be read. */
      readonly invalidated: boolean;
    };

/** The body of a unit's PropertiesChanged, with `signature` as sent. */
export function parsePropertiesChanged(signature: string, body: unknown[]): PropertiesChange {
  const [iface, changed, invalidated] = body as [unknown, unknown, unknown];
  // systemd sends (s a{sv} as); anything else is not from a systemd we understand.
  const shaped =
    typeof iface === "string" &&
    changed !== null &&
    typeof changed === "object" &&
    !Array.isArray(changed) &&
    (invalidated === undefined || (Array.isArray(invalidated) && invalidated.every((p) => typeof p === "string")));
  if (!shaped) return { kind: "malformed", what: `PropertiesChanged with signature "${signature.slice(0, 32)}"` };
  if (iface !== UNIT_INTERFACE && iface !== SERVICE_INTERFACE) return { kind: "untracked" };
  const bad = malformedProperties(iface, changed as Record<string, unknown>);
  return {
    kind: "patch",
    iface,
    patch: parseProperties(iface, changed as Record<string, unknown>),
    malformed: bad.length > 0 ? `${iface.slice(iface.lastIndexOf(".") + 1)}: ${bad.join(", ")}` : undefined,
    invalidated: ((invalidated ?? []) as string[]).some((p) => TRACKED_PROPERTIES.has(p)),
  };
}

/** Remembers which (unit, kind) warnings were given, so a flood logs each once. Bounded. */
export class WarnedOnce {
  readonly #warned = new Set<string>();
  readonly #limit: number;

  constructor(limit = 1024) {
    this.#limit = limit;
  }

  /** True the first time `unit` and `what` come together (again after the set is full and cleared). */
  first(unit: string, what: string): boolean {
    const key = `${unit}\u0000${what}`;
    if (this.#warned.has(key)) return false;
    if (this.#warned.size >= this.#limit) this.#warned.clear();
    this.#warned.add(key);
    return true;
  }
}
