import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { BatchOutcome, LeaseRenewal, RegistryStore, UpdateOutcome } from "../registry/store.js";

/** The events that become counters; every other event name is ignored by `event()`. */
const EVENT_COUNTERS = {
  "service.registered": "registrations",
  "service.deregistered": "deregistrations",
  "service.fallback.engaged": "fallbacksEngaged",
} as const;

export interface GaugeReading {
  /** Count of this host's services by instance state ("passing", "failing", …, "absent"). */
  readonly services: Readonly<Record<string, number>>;
  readonly registryUp: boolean;
  readonly busUp: boolean;
}

export interface MetricsOptions {
  /**
   * Node's process metrics (CPU, memory, event-loop lag, GC). Default true; tests that build many
   * daemons in one process turn them off, since each set installs its own GC observer.
   */
  readonly processMetrics?: boolean;
}

/**
 * What /metrics serves. Its own Registry, never prom-client's global one: a daemon embedded in a
 * test (or two in one process) must not share or collide on counters.
 *
 * Labels stay bounded: `service` comes from this host's policies (an operator-written set), and
 * `result`/`operation`/`state` are closed vocabularies.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly registrations = new Counter({ name: "registrar_registrations_total", help: "Services this host registered (service.registered events)", registers: [this.registry] });
  readonly deregistrations = new Counter({ name: "registrar_deregistrations_total", help: "Services this host deregistered (service.deregistered events)", registers: [this.registry] });
  readonly fallbacksEngaged = new Counter({ name: "registrar_fallbacks_engaged_total", help: "Times a service switched to its fallback endpoints (service.fallback.engaged events)", registers: [this.registry] });
  readonly probeResults = new Counter({ name: "registrar_probe_results_total", help: "Health probes by service and result", labelNames: ["service", "result"] as const, registers: [this.registry] });
  readonly probeDuration = new Histogram({
    name: "registrar_probe_duration_seconds",
    help: "Health probe latency, from request to verdict (timeouts included)",
    labelNames: ["service"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly registryWriteDuration = new Histogram({
    name: "registrar_registry_write_duration_seconds",
    help: "Registry write commands (update: one document; updateMany: a pass's batch or a lease tick; renewInPlace: a lease tick as positional updates), including compare-and-set retries",
    labelNames: ["operation"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly registryWriteErrors = new Counter({ name: "registrar_registry_write_errors_total", help: "Registry writes that failed (outage, url conflict, corrupt store)", labelNames: ["operation"] as const, registers: [this.registry] });
  readonly busReconnects = new Counter({ name: "registrar_bus_reconnects_total", help: "Reconnections to the systemd D-Bus after a lost connection", registers: [this.registry] });
  readonly resyncDuration = new Histogram({
    name: "registrar_resync_duration_seconds",
    help: "Full reconcile passes over every service (the first pass, periodic resyncs, after an outage)",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  #read: (() => GaugeReading) | undefined;
  // Read at scrape time (prom-client calls collect() before rendering), so never stale.
  readonly services = new Gauge({
    name: "registrar_services",
    help: "This host's services by the state of its instance (absent: no instance here)",
    labelNames: ["state"] as const,
    registers: [this.registry],
    collect: () => this.#refresh(),
  });
  readonly registryUp = new Gauge({ name: "registrar_registry_up", help: "1 while the registry is reachable, 0 during an outage", registers: [this.registry] });
  readonly busUp = new Gauge({ name: "registrar_bus_up", help: "1 while the systemd D-Bus connection is up", registers: [this.registry] });

  constructor(options: MetricsOptions = {}) {
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters, which `promtool check metrics` rejects; the same numbers are
      // in nodejs_active_{handles,requests,resources} (by type), so nothing is lost.
      for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.registry.removeSingleMetric(name);
    }
  }

  /** Counts the registration events that have a counter; the worker calls it for every event it logs. */
  event(name: string): void {
    const counter = EVENT_COUNTERS[name as keyof typeof EVENT_COUNTERS];
    if (counter) this[counter].inc();
  }

  probe(service: string, ok: boolean, latencyMs: number): void {
    this.probeResults.inc({ service, result: ok ? "pass" : "fail" });
    this.probeDuration.observe({ service }, latencyMs / 1000);
  }

  /** Where the gauges come from; the daemon sets it once it can answer. */
  gauges(read: () => GaugeReading): void {
    this.#read = read;
  }

  #refresh(): void {
    const now = this.#read?.();
    if (!now) return;
    this.services.reset();
    for (const [state, count] of Object.entries(now.services)) this.services.set({ state }, count);
    this.registryUp.set(now.registryUp ? 1 : 0);
    this.busUp.set(now.busUp ? 1 : 0);
  }

  /** The Prometheus text exposition and its content type, for the status server. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * The store with its writes timed and failures counted. A decorator, so neither the worker nor
 * any backend knows about metrics; reads are passed through untimed.
 */
export function instrumentStore(store: RegistryStore, metrics: Metrics): RegistryStore {
  const timed = async <T>(operation: string, write: () => Promise<T>): Promise<T> => {
    const end = metrics.registryWriteDuration.startTimer({ operation });
    try {
      return await write();
    } catch (error) {
      metrics.registryWriteErrors.inc({ operation });
      throw error;
    } finally {
      end();
    }
  };
  return {
    get description() {
      return store.description;
    },
    open: (signal) => store.open(signal),
    list: (signal) => store.list(signal),
    get: (name, signal) => store.get(name, signal),
    getMany: (names, signal) => store.getMany(names, signal),
    update: (name, change, signal): Promise<UpdateOutcome> => timed("update", () => store.update(name, change, signal)),
    updateMany: (updates, signal): Promise<BatchOutcome[]> => timed("updateMany", () => store.updateMany(updates, signal)),
    // Passed on only where the store has them, so the executor's fallback sees the same store.
    ...(store.batchesPasses ? { batchesPasses: () => store.batchesPasses!() } : {}),
    ...(store.canRenewInPlace ? { canRenewInPlace: () => store.canRenewInPlace!() } : {}),
    ...(store.renewInPlace ? { renewInPlace: (renewals: readonly LeaseRenewal[], signal?: AbortSignal) => timed("renewInPlace", () => store.renewInPlace!(renewals, signal)) } : {}),
    close: () => store.close(),
  };
}
