/**
 * Reading units' state from systemd (the snapshot): ListUnitsByNames for the batch, then
 * Properties.Get of the few properties the list lacks, for each unit worth reading. Each reply's sequence number
 * is kept, so that signals captured meanwhile can be told apart as older or newer (unit-states.ts).
 */
import { mapConcurrently } from "../async/map-concurrently.js";
import { MANAGER, PROPERTIES, SYSTEMD, SYSTEMD_PATH } from "./bus-names.js";
import { DBusMethodError } from "./errors.js";
import type { BusCall } from "./match-rules.js";
import { SERVICE_INTERFACE, UNIT_INTERFACE, applyPatch, emptyState, parseProperties, type UnitStatePatch } from "./properties.js";
import type { UnitRead, UnitStates } from "./unit-states.js";
import { unitObjectPath } from "./unit-path.js";

/** Units read at once during a snapshot (each a few Properties.Get calls in flight). */
const READ_CONCURRENCY = 8;

interface Listed {
  readonly patch: UnitStatePatch;
  readonly path: string;
}

/** ListUnitsByNames: what systemd lists of `units` (loaded or not), and the reply's sequence number. */
async function listUnits(call: BusCall, units: readonly string[]): Promise<{ listed: Map<string, Listed>; seq: number }> {
  const list = await call({
    destination: SYSTEMD,
    path: SYSTEMD_PATH,
    interface: MANAGER,
    member: "ListUnitsByNames",
    signature: "as",
    body: [units],
  });
  const rows = (list.body[0] ?? []) as unknown[][];
  const listed = new Map<string, Listed>();
  for (const row of rows) {
    const [name, , load, active, sub, , path] = row as [string, string, string, string, string, string, string];
    listed.set(name, { patch: { loadState: load, activeState: active, subState: sub }, path });
  }
  return { listed, seq: list.seq };
}

/**
 * What each interface is read for beyond the list: the list already gives LoadState, ActiveState
 * and SubState. Asked one by one (Properties.Get): a GetAll of .Service is some 250 properties,
 * and unmarshalling them was the daemon's largest cost at start on a 1000-unit host (profile in
 * bench/RESULTS.md), for systemd too.
 */
const READ: ReadonlyArray<readonly [string, string]> = [
  [UNIT_INTERFACE, "InvocationID"],
  [SERVICE_INTERFACE, "Result"],
  [SERVICE_INTERFACE, "NRestarts"],
  [SERVICE_INTERFACE, "MainPID"],
];

/** One unit's state: what the list said, completed by Properties.Get when worth reading. */
async function readUnit(call: BusCall, unit: string, listed: Listed | undefined, listSeq: number): Promise<UnitRead> {
  let state = applyPatch(emptyState(unit), listed?.patch ?? {});
  // Per interface, the earliest reply its values come from: every signal captured after it is
  // applied on top, in order, so a value read later is never undone by an older signal's (the
  // signal of any change in between comes after that older one).
  const replySeq = new Map<string, number>([
    [UNIT_INTERFACE, listSeq],
    [SERVICE_INTERFACE, listSeq],
  ]);
  // A unit without a file that is not running has nothing more to read, and a read would
  // only load it again.
  const worthReading = listed !== undefined && !(state.loadState === "not-found" && state.activeState === "inactive");
  if (worthReading) {
    const path = listed.path || unitObjectPath(unit);
    const wanted = unit.endsWith(".service") ? READ : READ.filter(([iface]) => iface === UNIT_INTERFACE);
    const replies = await Promise.all(
      wanted.map(([iface, property]) =>
        call({ destination: SYSTEMD, path, interface: PROPERTIES, member: "Get", signature: "ss", body: [iface, property] }).then(
          (r) => ({ iface, property, r }),
          (err: unknown) => {
            // The unit vanished between the list and the read (GC'd, or a reload): keep the listed values.
            if (err instanceof DBusMethodError) return { iface, property, r: undefined };
            throw err;
          },
        ),
      ),
    );
    const values = new Map<string, Record<string, unknown>>();
    const seqs = new Map<string, number>();
    for (const { iface, property, r } of replies) {
      if (!r) continue;
      values.set(iface, { ...values.get(iface), [property]: r.body[0] });
      seqs.set(iface, Math.min(seqs.get(iface) ?? r.seq, r.seq));
    }
    for (const [iface, dict] of values) {
      state = applyPatch(state, parseProperties(iface, dict));
      // The unit's list values are older than its Get: the list's seq stays the unit's mark.
      if (iface !== UNIT_INTERFACE) replySeq.set(iface, seqs.get(iface)!);
    }
  }
  return { state, replySeq };
}

/**
 * Reads `units` and commits their state into `states`. Signals for those units that arrive
 * meanwhile are captured and, per interface, only those newer than that interface's earliest reply
 * are applied. `reread`: a unit to read once more; a unit no longer watched is not committed.
 */
export async function readUnits(call: BusCall, units: readonly string[], states: UnitStates, hooks: { isWatched(unit: string): boolean; reread(unit: string): void }): Promise<void> {
  if (units.length === 0) return;
  for (const unit of units) states.beginCapture(unit);
  try {
    const { listed, seq } = await listUnits(call, units);
    await mapConcurrently(units, READ_CONCURRENCY, async (unit) => {
      const { state, reread } = states.settle(unit, await readUnit(call, unit, listed.get(unit), seq));
      if (reread) hooks.reread(unit);
      if (hooks.isWatched(unit)) states.commit(unit, state);
    });
  } finally {
    for (const unit of units) states.endCapture(unit);
  }
}
