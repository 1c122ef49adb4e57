import cron, { type ScheduledTask } from "node-cron";
import type { Logger } from "../log/logger.js";
import type { Config } from "../policy/schema.js";
import type { RegistryStore } from "../registry/store.js";
import { describeInvalidDocument, type InvalidDocumentReport } from "../registry/invalid-documents.js";
import type { UnitWatcher } from "../systemd/types.js";
import type { Server } from "node:http";
import { HealthProber } from "../health/prober.js";
import { type GaugeReading, Metrics, instrumentStore } from "./metrics.js";
import { configChanges } from "./config-changes.js";
import { Notifier, statusLine } from "./notify.js";
import type { PolicySetWithRegistrations } from "../selfreg/policy-set-with-registrations.js";
import { PolicyDirWatch } from "./policy-watch.js";
import { MaintenanceMarks } from "./maintenance-marks.js";
import { parseListen, startStatusServer } from "./status-server.js";
import { type PassSummary, type Reconciler, createReconciler } from "./reconcile-worker.js";
import type { ReconcileWorker } from "../scheduler/reconcile-worker.js";
import { renewInterval } from "../reconcile/lease.js";
import { isCleanStop, isRunning } from "../systemd/facts.js";
import { instanceKey } from "../policy/units.js";
import { type ScaleBackoff, ScaleStarter } from "../scaleout/starter.js";
import { createSelfRegistration, type SelfRegistration } from "../selfreg/self-registration.js";
import type { UnitResolver } from "../selfreg/unit-of-pid.js";

export interface DaemonDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly watcher: UnitWatcher;
  readonly store: RegistryStore;
  readonly bootId: string;
  readonly version: string;
  /** Default: a fresh Metrics with process metrics. */
  readonly metrics?: Metrics;
  /** Default: sd_notify from this process's environment (a no-op without $NOTIFY_SOCKET). */
  readonly notifier?: Notifier;
  /** Scale-out's backoff between starts of one pool (src/scaleout/starter.ts); default 5 s doubling to 5 min. */
  readonly scaleBackoff?: ScaleBackoff;
  /** Default: systemd's GetUnitByPID on the config's bus (the local API's caller check). */
  readonly unitResolver?: UnitResolver;
}

/**
 * Wiring: the watcher, the policy set and the registry feed one reconcile worker. Order follows
 * habit 3: the watcher subscribes before it snapshots, the first full pass runs before the daemon
 * says it is ready, and the periodic resync is the safety net for anything missed.
 */
export class Daemon {
  readonly #deps: DaemonDeps;
  readonly #policies: PolicySetWithRegistrations;
  /** The local API and the runtime registrations (issue 14, item 2). */
  readonly #selfreg: SelfRegistration;
  readonly #worker: ReconcileWorker;
  readonly #reconciler: Reconciler;
  readonly #prober: HealthProber;
  readonly #maintenance: MaintenanceMarks;
  readonly #scaler: ScaleStarter;
  readonly #metrics: Metrics;
  readonly #notifier: Notifier;
  /** The config in force: the one started with, plus what a reload applied live. */
  #config: Config;
  #cron: ScheduledTask | undefined;
  #dirWatch: PolicyDirWatch | undefined;
  #reloadTimer: NodeJS.Timeout | undefined;
  /** Wake-ups at the end of a stopping unit's drainDelay, one per service (the decision itself is reconcile's). */
  readonly #drainTimers = new Map<string, NodeJS.Timeout>();
  #renewTimer: NodeJS.Timeout | undefined;
  /** The units whose state the watcher knows, while none changed (template policies match globs over it). */
  #known: string[] | undefined;
  #ready = false;
  /** "resync" events seen, so a cron tick knows whether its re-read already marked everything. */
  #resyncEvents = 0;
  /** Whether systemd has been sent READY=1 (possibly before #ready: see #notifyReadyDespiteOutage). */
  #readyNotified = false;
  #statusServer: Server | undefined;
  readonly #startedAt = new Date();
  /** The store's reports of invalid registry documents, for /status beside the worker's events. Bounded. */
  #readyResolve!: () => void;
  /** Resolves after the first full reconcile pass. */
  readonly ready: Promise<void> = new Promise((resolve) => (this.#readyResolve = resolve));

  constructor(deps: DaemonDeps) {
    this.#deps = deps;
    this.#config = deps.config;
    const { config, logger } = deps;
    this.#selfreg = createSelfRegistration({
      config,
      logger,
      ...(deps.unitResolver ? { resolver: deps.unitResolver } : {}),
      changed: (services) => this.#registrationsChanged(services),
    });
    this.#policies = this.#selfreg.policies;
    const metrics = (this.#metrics = deps.metrics ?? new Metrics());
    this.#notifier = deps.notifier ?? new Notifier({ logger });
    metrics.gauges(() => this.#reading());
    // A changed mark may concern any service (a host-wide drain does): a full pass.
    this.#maintenance = new MaintenanceMarks(config.state, logger, () => this.#worker.markAll());
    this.#prober = new HealthProber({ logger, onChange: (service) => this.#worker.markDirty(service), onProbe: (service, ok, ms) => metrics.probe(service, ok, ms) });
    this.#scaler = new ScaleStarter({
      start: (unit) => (deps.watcher.startUnit ? deps.watcher.startUnit(unit) : Promise.reject(new Error("this watcher cannot start units"))),
      logger,
      wake: (service) => this.#worker.markDirty(service),
      ...(deps.scaleBackoff ? { backoff: deps.scaleBackoff } : {}),
    });
    this.#reconciler = createReconciler({
      host: config.host,
      bootId: deps.bootId,
      leaseTtlMs: config.leaseTtl,
      store: instrumentStore(deps.store, metrics),
      onEvent: (event) => {
        metrics.event(event);
        if (event === "registry.unavailable") this.#notifyReadyDespiteOutage();
      },
      logger,
      policies: () => this.#policies.policies,
      unit: (name) => deps.watcher.state(name),
      units: (policy) => this.#policies.unitsOf(policy, this.#knownUnits()),
      health: (key) => this.#prober.view(key),
      maintenance: (service) => this.#maintenance.mark(service),
      scale: { hold: (service) => this.#scaler.hold(service), run: (action) => this.#scaler.run(action) },
      onFullPass: (summary) => this.#onFullPass(summary),
    });
    this.#worker = this.#reconciler.worker;
  }

  get worker(): ReconcileWorker {
    return this.#worker;
  }

  async start(signal: AbortSignal): Promise<void> {
    const { config, logger, watcher, store, bootId, version } = this.#deps;
    logger.info(
      { event: "registrar.started", version, bootId, address: config.address, store: store.description, bus: config.bus, policies: config.policies, config: config.source ?? "(defaults)" },
      `registrar ${version} starting on ${config.host}`,
    );
    // Bound first: a busy or unusable address ends the start before anything else is touched.
    const listen = parseListen(config.status);
    if (listen) {
      this.#statusServer = await startStatusServer(listen, { status: () => this.status(), healthy: () => this.#ready && watcher.connected, metrics: () => this.#metrics.render() }, logger);
    }
    // Opening the registry (connect, and the capability probe: seconds on a server where its
    // scratch collection is new) goes on while policies load and systemd is read; the first pass
    // awaits the same attempt, and retries it if it failed (the pass reports the outage).
    void store.open().catch(() => undefined);
    // Registrations first: the policy load drops any a policy file now claims.
    await this.#selfreg.registrations.load();
    const [{ units, patterns }] = await Promise.all([this.#policies.load(), this.#maintenance.load()]);

    watcher.on("change", (change) => {
      logger.debug(
        { event: "unit.changed", unit: change.unit, transition: change.transition, before: change.before?.activeState, after: change.after.activeState, subState: change.after.subState, result: change.after.result },
        `unit ${change.unit}: ${change.transition} (${change.before?.activeState ?? "unknown"} → ${change.after.activeState})`,
      );
      if (change.before === undefined) this.#known = undefined;
      this.#syncProbes();
      for (const service of this.#policies.servicesOf(change.unit)) this.#worker.markDirty(service);
      this.#wakeAfterDrainDelay(change.unit, change.after.activeState);
      if (isCleanStop(change.after) && this.#selfreg.registrations.boundTo(change.unit)) void this.#worker.idle().then(() => this.#sweepRegistrations());
    });
    // A template instance systemd unloaded (stopped and collected): its instance leaves.
    watcher.on("unloaded", (unit) => {
      logger.debug({ event: "unit.unloaded", unit }, `unit ${unit} unloaded`);
      this.#known = undefined;
      this.#syncProbes();
      for (const service of this.#policies.servicesOf(unit)) this.#worker.markDirty(service);
    });
    watcher.on("resync", () => {
      this.#known = undefined;
      this.#resyncEvents++;
      this.#syncProbes();
      this.#worker.markAll();
    });
    watcher.on("disconnected", (reason) => logger.warn({ event: "bus.disconnected", bus: config.bus, reason }, `bus disconnected: ${reason}; reconnecting`));
    watcher.on("reconnected", () => {
      this.#metrics.busReconnects.inc();
      logger.info({ event: "bus.reconnected", bus: config.bus }, "bus reconnected; resyncing");
    });

    await watcher.start(signal);
    this.#notifier.startWatchdog({ busConnected: () => watcher.connected, status: () => statusLine(this.#reading()) });
    await watcher.watch(units, patterns);
    this.#known = undefined;
    this.#syncProbes();

    this.#scheduleResync(config.resync);
    this.#watchPolicyDir();
    this.#maintenance.start();
    // Leases: reconcile decides the renewals (src/reconcile/lease.ts) each tick; one bulk write.
    let renewing = false;
    this.#renewTimer = setInterval(() => {
      if (renewing) return;
      renewing = true;
      void this.#worker.renewLeases().finally(() => (renewing = false));
    }, renewInterval(config.leaseTtl));
    this.#worker.markAll();
    this.#worker.begin();
    await this.#selfreg.listen();
  }

  /**
   * Applies a re-read config (SIGHUP): the log level and the resync schedule change at once; a
   * changed key that only a restart can apply (the registry, the bus, the host's name, …) is
   * named in a warning rather than silently ignored.
   */
  applyConfig(next: Config): void {
    const { logger } = this.#deps;
    const { live, needRestart } = configChanges(this.#config, next);
    if (live.includes("log")) logger.level = next.log.level;
    // `next` passed the config schema, the cron schedule included.
    if (live.includes("resync")) this.#scheduleResync(next.resync);
    if (needRestart.length > 0) {
      logger.warn({ event: "config.restart.needed", keys: needRestart, file: next.source }, `config changed keys that apply only after a restart: ${needRestart.join(", ")} (systemctl restart registrar)`);
    }
    if (live.length > 0) logger.info({ event: "config.reloaded", keys: live, file: next.source }, `config reloaded: ${live.join(", ")} applied`);
    this.#config = { ...this.#config, log: next.log, resync: next.resync };
  }

  /** Re-reads the policies (SIGHUP, or a change in the policies directory). */
  async reload(): Promise<void> {
    const [{ touched, units, patterns }, marksChanged] = await Promise.all([this.#policies.load(), this.#maintenance.load()]);
    if (marksChanged) this.#worker.markAll();
    // The directory may now resolve elsewhere (a retargeted symlink, a directory moved back).
    this.#dirWatch?.refresh();
    await this.#deps.watcher.watch(units, patterns);
    this.#known = undefined;
    this.#syncProbes();
    for (const service of touched) this.#worker.markDirty(service);
  }

  async stop(reason: string): Promise<void> {
    this.#deps.logger.info({ event: "registrar.stopping", reason }, `stopping: ${reason}`);
    void this.#notifier.stopping();
    clearTimeout(this.#reloadTimer);
    clearInterval(this.#renewTimer);
    for (const timer of this.#drainTimers.values()) clearTimeout(timer);
    this.#dirWatch?.close();
    this.#maintenance.close();
    await this.#selfreg.close();
    await new Promise((resolve) => (this.#statusServer ? this.#statusServer.close(resolve) : resolve(undefined)));
    this.#statusServer?.closeAllConnections();
    await this.#cron?.stop();
    await this.#cron?.destroy();
    this.#prober.stop();
    this.#scaler.stop();
    await this.#worker.stop();
    await this.#deps.watcher.stop();
    await this.#deps.store.close();
    await this.#notifier.idle();
  }

  #scheduleResync(schedule: string): void {
    void this.#cron?.destroy();
    this.#cron = cron.schedule(schedule, () => this.periodicResync(), { name: "registrar-resync", noOverlap: true });
  }

  /**
   * One cron tick, the safety net: re-read systemd (a failed read or a lost signal), then one full
   * pass over the registry with what was re-read. The watcher's "resync" event marks everything
   * dirty; when no re-read happened (the bus is down, or it failed) the pass runs anyway on the
   * states known, since the registry side (expired peers, a changed document) needs it too.
   */
  async periodicResync(): Promise<void> {
    const { watcher, logger } = this.#deps;
    const before = this.#resyncEvents;
    try {
      if (watcher.connected) await watcher.resync("periodic resync");
    } catch (error) {
      logger.warn({ err: error }, `periodic unit re-read failed: ${(error as Error).message}`);
    }
    if (this.#resyncEvents === before) this.#worker.markAll();
  }

  /**
   * A unit that began to stop: its services with a drainDelay need a pass when the delay is over
   * (reconcile decides from the instance's `since`; this only makes sure a pass comes then rather
   * than at the next resync). A later change of the same unit moves the wake-up later, never
   * earlier than the delay after it, so a flapping unit keeps one timer.
   */
  #wakeAfterDrainDelay(unit: string, activeState: string): void {
    if (activeState !== "deactivating" && activeState !== "inactive") return;
    for (const service of this.#policies.servicesOf(unit)) {
      const delay = this.#policies.policies.find((policy) => policy.name === service)?.drainDelay;
      if (delay === undefined) continue;
      clearTimeout(this.#drainTimers.get(service));
      this.#drainTimers.set(
        service,
        setTimeout(() => {
          this.#drainTimers.delete(service);
          this.#worker.markDirty(service);
        }, delay + 100),
      );
    }
  }

  #knownUnits(): string[] {
    return (this.#known ??= [...this.#deps.watcher.known()]);
  }

  /** Probes run for instances with a health check whose unit is active, and only for those. */
  #syncProbes(): void {
    this.#prober.sync(this.#policies.probes(this.#knownUnits()), (unit) => {
      const state = this.#deps.watcher.state(unit);
      return state !== undefined && isRunning(state);
    });
  }

  /**
   * A store's report of a registry document that does not fit the schema, or of its repair
   * (openStore's onInvalidDocument, wired in cli/run.ts): logged, and shown in /status.
   */
  onInvalidDocument(report: InvalidDocumentReport): void {
    this.#reconciler.events.emit({ ...report, level: "warn", msg: describeInvalidDocument(report) });
  }

  /** What /status serves: what this daemon sees and what it has registered. */
  status(): Record<string, unknown> {
    const { config, watcher, store, bootId, version } = this.#deps;
    return {
      host: config.host,
      address: config.address,
      bootId,
      version,
      startedAt: this.#startedAt.toISOString(),
      ready: this.#ready,
      bus: { address: config.bus, connected: watcher.connected },
      registry: { store: store.description, available: this.#worker.registryAvailable, writes: this.#worker.writes },
      policies: this.#policies.policies.map((policy) => ({ name: policy.name, unit: policy.unit, url: policy.url, file: policy.source, units: this.#policies.unitsOf(policy, this.#knownUnits()) })),
      units: Object.fromEntries(
        [...new Set(this.#policies.policies.flatMap((policy) => this.#policies.unitsOf(policy, this.#knownUnits())))].map((unit) => {
          const state = watcher.state(unit);
          return [unit, state ? { activeState: state.activeState, subState: state.subState, result: state.result, nRestarts: state.nRestarts, mainPid: state.mainPid } : null];
        }),
      ),
      health: this.#prober.snapshot(),
      maintenance: this.#maintenance.snapshot(),
      scaleOut: this.#scaler.snapshot(),
      // What the next pass takes as health, per checked service (null: no result yet, or not
      // probed because its unit is not running): \`registrar plan\` asks for it.
      verdicts: Object.fromEntries(this.#policies.probes(this.#knownUnits()).map((probe) => [probe.id, this.#prober.view(probe.id) ?? null])),
      // By instance key, as `health` and `verdicts`: the service's name for a single unit, `service/unit` for a template's.
      instances: Object.fromEntries(
        [...this.#reconciler.executor.held.all].flatMap(([service, instances]) => {
          const unit = this.#policies.policies.find((policy) => policy.name === service)?.unit ?? instances.map((instance) => instance.unit);
          return instances.map((instance) => [instanceKey(service, unit, instance.unit), instance]);
        }),
      ),
      recentEvents: this.#reconciler.events.recent,
    };
  }

  /**
   * The registrations changed (a request, or a sweep): their units are watched before the pass
   * that reads them, and the services go to the worker like a changed policy file's.
   */
  async #registrationsChanged(services: readonly string[]): Promise<void> {
    await this.#deps.watcher.watch(this.#policies.units, this.#policies.patterns);
    this.#syncProbes();
    for (const service of services) this.#worker.markDirty(service);
  }

  /**
   * Registrations whose unit stopped cleanly go once this host holds no instance of them, i.e.
   * after the pass that deregistered it (a drainDelay included). Runs after a pass that may have
   * done so, and after every full pass as the safety net.
   */
  #sweepRegistrations(): void {
    const cleanlyStopped = (unit: string) => {
      const state = this.#deps.watcher.state(unit);
      return state !== undefined && isCleanStop(state);
    };
    const held = (service: string) => this.#reconciler.executor.held.all.has(service);
    void this.#selfreg.registrations
      .sweep(cleanlyStopped, held)
      .then((dropped) => (dropped.length > 0 ? this.#registrationsChanged(dropped) : undefined))
      .catch((error: Error) => this.#deps.logger.error({ err: error }, `registration sweep failed: ${error.message}`));
  }

  #onFullPass(summary: PassSummary): void {
    const { logger } = this.#deps;
    this.#sweepRegistrations();
    this.#metrics.resyncDuration.observe(summary.durationMs / 1000);
    const fields = { event: "resync.completed", services: summary.services, writes: summary.writes, durationMs: Math.round(summary.durationMs) };
    if (summary.writes > 0) logger.info(fields, `resync: ${summary.writes} writes for ${summary.services} services`);
    else logger.debug(fields, `resync: nothing to change for ${summary.services} services`);
    if (!this.#ready) {
      this.#ready = true;
      logger.info({ event: "registrar.ready", services: summary.services, writes: summary.writes }, `ready: ${summary.services} services reconciled`);
      this.#readyResolve();
      if (this.#readyNotified) void this.#notifier.status(statusLine(this.#reading()));
      else void this.#notifier.ready(statusLine(this.#reading()));
      this.#readyNotified = true;
    } else {
      void this.#notifier.status(statusLine(this.#reading()));
    }
  }

  /**
   * A registry that is down at boot would hold back READY=1 until systemd's start timeout kills
   * the daemon, and then again on every restart, although riding out an outage (watching, retrying
   * with backoff) is exactly what it is built for. So systemd hears READY once the first pass has
   * met the outage, with the outage in STATUS=; registrar.ready still waits for a full pass.
   */
  #notifyReadyDespiteOutage(): void {
    if (this.#ready || this.#readyNotified) return;
    this.#readyNotified = true;
    void this.#notifier.ready(statusLine(this.#reading()));
  }

  /** This host's services by instance state, and the two connections: for STATUS= and gauges. */
  #reading(): GaugeReading {
    const services: Record<string, number> = {};
    // Per instance: a template's several count each (a policy with none counts as absent).
    for (const policy of this.#policies.policies) {
      const held = this.#reconciler.executor.held.all.get(policy.name);
      for (const state of held ? held.map((instance) => instance.state) : ["absent"]) services[state] = (services[state] ?? 0) + 1;
    }
    return { services, registryUp: this.#worker.registryAvailable, busUp: this.#deps.watcher.connected };
  }

  #watchPolicyDir(): void {
    // Editors save in bursts (temp file, rename, chmod): wait for the directory to settle.
    this.#dirWatch = new PolicyDirWatch(
      this.#deps.config.policies,
      () => {
        clearTimeout(this.#reloadTimer);
        this.#reloadTimer = setTimeout(() => void this.reload().catch((error) => this.#deps.logger.error({ err: error }, "policy reload failed")), 300);
      },
      this.#deps.logger,
    );
    this.#dirWatch.start();
  }
}
