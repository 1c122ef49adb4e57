import type { Endpoint, RegistryDocument, ServiceStatus } from "./document.js";
import type { RegistryStore } from "./store.js";

/** What a gateway reads of a document: the change feed compares these, nothing else. */
export interface GatewayView {
  readonly url: string;
  readonly status: ServiceStatus;
  readonly endpoints: readonly Endpoint[];
  readonly authorizedRoles: readonly string[];
}

/** One change a gateway must act on: a service appeared, changed what it serves, or went away. */
export interface RegistryChange {
  readonly time: Date;
  readonly service: string;
  readonly kind: "added" | "changed" | "removed";
  readonly before: GatewayView | null;
  readonly after: GatewayView | null;
  readonly rev: number | null;
}

const view = (doc: RegistryDocument): GatewayView => ({ url: doc.url, status: doc.status, endpoints: doc.endpoints, authorizedRoles: doc.authorizedRoles });
const same = (a: GatewayView, b: GatewayView): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * The changes between two reads of the registry, by service name, in name order. A write that
 * leaves the gateway's fields and the status as they were (a lease renewal, a peer's instance
 * going from starting to failing behind a passing one) is no change to a gateway.
 */
export function diffRegistry(before: ReadonlyMap<string, RegistryDocument>, after: ReadonlyMap<string, RegistryDocument>, time: Date): RegistryChange[] {
  const changes: RegistryChange[] = [];
  for (const name of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const a = before.get(name);
    const b = after.get(name);
    if (a && !b) changes.push({ time, service: name, kind: "removed", before: view(a), after: null, rev: null });
    else if (!a && b) changes.push({ time, service: name, kind: "added", before: null, after: view(b), rev: b.rev });
    else if (a && b && !same(view(a), view(b))) changes.push({ time, service: name, kind: "changed", before: view(a), after: view(b), rev: b.rev });
  }
  return changes;
}

export interface WatchOptions {
  readonly signal: AbortSignal;
  /** Between reads when the server pushes nothing. Default 500 ms. */
  readonly intervalMs?: number;
  /** Told once how changes are found: "change stream", or "polling every N ms (why)". */
  readonly onMode?: (mode: string) => void;
  /**
   * A read failed (an outage): told, then read again after a pause, still compared with the last
   * good read, so a change made during the outage is reported once it ends.
   */
  readonly onError?: (error: unknown) => void;
}

/**
 * The registry's changes as they happen: a read, then one more after each wake-up — a change
 * stream's event where the server has them (MongoDB), else a timer — each compared with the one
 * before. The stream is only a wake-up, so both ways report the same changes; a burst of events
 * is one read.
 */
export async function* watchRegistry(store: RegistryStore, options: WatchOptions): AsyncGenerator<RegistryChange> {
  const { signal } = options;
  const intervalMs = options.intervalMs ?? 500;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  const read = async (): Promise<Map<string, RegistryDocument> | undefined> => {
    for (;;) {
      try {
        return new Map((await store.list(signal)).map((doc) => [doc.name, doc]));
      } catch (error) {
        if (signal.aborted) return undefined;
        options.onError?.(error);
        await pause(Math.max(1_000, intervalMs * 4));
        if (signal.aborted) return undefined;
      }
    }
  };
  let last = await read();
  if (!last) return;
  const pushed = store.changeNotifications ? await store.changeNotifications(signal) : "the store has no change notifications";
  let wakeUps: AsyncIterator<void> | undefined;
  if (typeof pushed === "string") options.onMode?.(`polling every ${intervalMs} ms (${pushed})`);
  else {
    options.onMode?.("change stream");
    wakeUps = pushed[Symbol.asyncIterator]();
  }
  while (!signal.aborted) {
    if (wakeUps) {
      const next = await wakeUps.next();
      if (next.done) return;
    } else await pause(intervalMs);
    if (signal.aborted) return;
    const now = await read();
    if (!now) return;
    yield* diffRegistry(last, now, new Date());
    last = now;
  }
}
