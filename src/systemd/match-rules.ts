/**
 * The D-Bus match rules the watcher holds: which ones it wants for a watched set, and the
 * bookkeeping of those in force on the current connection (ours only: nothing else adds any).
 */
import type { CallSpec, Reply } from "./connection.js";
import { DBUS, DBUS_PATH, MANAGER, PROPERTIES, SYSTEMD, SYSTEMD_PATH } from "./bus-names.js";
import { DBusMethodError } from "./errors.js";

/** One D-Bus call on the current connection, with the watcher's timeout. */
export type BusCall = (spec: CallSpec) => Promise<Reply>;

function matchRule(parts: Record<string, string>): string {
  return Object.entries(parts)
    .map(([k, v]) => `${k}='${v}'`)
    .join(",");
}

export const NAME_OWNER_RULE = matchRule({ type: "signal", sender: DBUS, path: DBUS_PATH, interface: DBUS, member: "NameOwnerChanged", arg0: SYSTEMD });
export const RELOADING_RULE = matchRule({ type: "signal", sender: SYSTEMD, path: SYSTEMD_PATH, interface: MANAGER, member: "Reloading" });
/** Units loaded and unloaded: only while some policy names a glob over a template's instances. */
export const UNIT_NEW_RULE = matchRule({ type: "signal", sender: SYSTEMD, path: SYSTEMD_PATH, interface: MANAGER, member: "UnitNew" });
export const UNIT_REMOVED_RULE = matchRule({ type: "signal", sender: SYSTEMD, path: SYSTEMD_PATH, interface: MANAGER, member: "UnitRemoved" });
const ALL_UNITS_RULE = matchRule({
  type: "signal",
  sender: SYSTEMD,
  interface: PROPERTIES,
  member: "PropertiesChanged",
  path_namespace: "/org/freedesktop/systemd1/unit",
});
function unitRule(path: string): string {
  return matchRule({ type: "signal", sender: SYSTEMD, path, interface: PROPERTIES, member: "PropertiesChanged" });
}

/**
 * The rules for watching the units at `unitPaths`: per unit, or one path_namespace rule above
 * `maxUnitRules` (dbus-daemon limits match rules per connection); with `unitLifecycle`, the two
 * for UnitNew and UnitRemoved. Bounded either way: a unit's rule goes when it is no longer watched.
 */
export function wantedRules(unitPaths: ReadonlyMap<string, string>, maxUnitRules: number, unitLifecycle = false): Set<string> {
  const wanted = new Set<string>([NAME_OWNER_RULE, RELOADING_RULE]);
  if (unitLifecycle) {
    wanted.add(UNIT_NEW_RULE);
    wanted.add(UNIT_REMOVED_RULE);
  }
  if (unitPaths.size > maxUnitRules) wanted.add(ALL_UNITS_RULE);
  else for (const path of unitPaths.values()) wanted.add(unitRule(path));
  return wanted;
}

/** The match rules in force on the current connection, and the AddMatch/RemoveMatch calls made. */
export class MatchRules {
  #rules = new Set<string>();
  #added = 0;
  #removed = 0;

  get size(): number {
    return this.#rules.size;
  }

  get calls(): { added: number; removed: number } {
    return { added: this.#added, removed: this.#removed };
  }

  /** The connection is gone, and its rules with it. */
  clear(): void {
    this.#rules.clear();
  }

  async add(call: BusCall, rule: string): Promise<void> {
    await call({ destination: DBUS, path: DBUS_PATH, interface: DBUS, member: "AddMatch", signature: "s", body: [rule] });
    this.#added++;
    this.#rules.add(rule);
  }

  async remove(call: BusCall, rule: string): Promise<void> {
    this.#rules.delete(rule);
    this.#removed++;
    try {
      await call({ destination: DBUS, path: DBUS_PATH, interface: DBUS, member: "RemoveMatch", signature: "s", body: [rule] });
    } catch (err) {
      // MatchRuleNotFound means it is gone already, which is what we wanted.
      if (!(err instanceof DBusMethodError)) throw err;
    }
  }

  /** Brings the bus's match rules in line with `wanted`. */
  async sync(call: BusCall, wanted: ReadonlySet<string>): Promise<void> {
    // Add before remove, so that switching to the namespace rule never leaves a gap.
    for (const rule of wanted) if (!this.#rules.has(rule)) await this.add(call, rule);
    for (const rule of [...this.#rules]) if (!wanted.has(rule)) await this.remove(call, rule);
  }
}
