/**
 * Reading units' state from systemd (the snapshot): ListUnitsByNames for the batch, then
 * Properties.GetAll on .Service and .Unit of each unit worth reading. Each reply's sequence number
 * is kept, so that signals captured meanwhile can be told apart as older or newer (unit-states.ts).
 */
import { MANAGER, PROPERTIES, SYSTEMD, SYSTEMD_PATH } from "./bus-names.js";
import { DBusMethodError } from "./errors.js";
import type { BusCall } from "./match-rules.js";
import { SERVICE_INTERFACE, UNIT_INTERFACE, applyPatch, emptyState, parseProperties, type UnitStatePatch } from "./properties.js";
import type { UnitRead, UnitStates } from "./unit-states.js";
import { unitObjectPath } from "./unit-path.js";

/** GetAll calls in flight at once during a snapshot. */
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

/** One unit's state: what the list said, completed by GetAll when worth reading. */
async function readUnit(call: BusCall, unit: string, listed: Listed | undefined, listSeq: number): Promise<UnitRead> {
  let state = applyPatch(emptyState(unit), listed?.patch ?? {});
  const replySeq = new Map<string, number>([
    [UNIT_INTERFACE, listSeq],
    [SERVICE_INTERFACE, listSeq],
  ]);
  // A unit without a file that is not running has nothing more to read, and GetAll would
  // only load it again.
  const worthReading = listed !== undefined && !(state.loadState === "not-found" && state.activeState === "inactive");
  if (worthReading) {
    const path = listed.path || unitObjectPath(unit);
    const ifaces = unit.endsWith(".service") ? [SERVICE_INTERFACE, UNIT_INTERFACE] : [UNIT_INTERFACE];
    const replies = await Promise.all(
      ifaces.map((iface) =>
        call({ destination: SYSTEMD, path, interface: PROPERTIES, member: "GetAll", signature: "s", body: [iface] }).then(
          (r) => ({ iface, r }),
          (err: unknown) => {
            // The unit vanished between the list and the read (GC'd, or a reload): keep the listed values.
            if (err instanceof DBusMethodError) return { iface, r: undefined };
            throw err;
          },
        ),
      ),
    );
    for (const { iface, r } of replies) {
      if (!r) continue;
      state = applyPatch(state, parseProperties(iface, (r.body[0] ?? {}) as Record<string, unknown>));
      replySeq.set(iface, r.seq);
    }
  }
  return { state, replySeq };
}

/** Runs `fn` over `items` with at most `concurrency` in flight; rejects with the first failure. */
async function eachConcurrently<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const worker = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/**
 * Reads `units` and commits their state into `states`. Signals for those units that arrive
 * meanwhile are captured and, per interface, only those newer than that interface's GetAll reply
 * are applied. `reread`: a unit to read once more; a unit no longer watched is not committed.
 */
export async function readUnits(call: BusCall, units: readonly string[], states: UnitStates, hooks: { isWatched(unit: string): boolean; reread(unit: string): void }): Promise<void> {
  if (units.length === 0) return;
  for (const unit of units) states.beginCapture(unit);
  try {
    const { listed, seq } = await listUnits(call, units);
    await eachConcurrently(units, READ_CONCURRENCY, async (unit) => {
      const { state, reread } = states.settle(unit, await readUnit(call, unit, listed.get(unit), seq));
      if (reread) hooks.reread(unit);
      if (hooks.isWatched(unit)) states.commit(unit, state);
    });
  } finally {
    for (const unit of units) states.endCapture(unit);
  }
}
