import type { Logger } from "../log/logger.js";
import type { Policy } from "../policy/schema.js";
import { conflictOf } from "./conflicts.js";
import type { ApiReply } from "./protocol.js";
import type { Registration } from "./registration.js";
import type { RegistrationStore } from "./registration-store.js";
import { checkRequest, type ParsedRequest } from "./request.js";
import { NoUnitForPidError, type UnitResolver } from "./unit-of-pid.js";

/**
 * Registrations one daemon holds at most: a client of the socket must not grow the daemon's
 * memory and the registry without bound (a host runs hundreds of services, not thousands).
 */
export const MAX_REGISTRATIONS = 1024;

/** ActiveStates a unit may register from: running, starting (ExecStartPost=), reloading. */
const REGISTERING_STATES = new Set(["active", "activating", "reloading"]);

export interface RegistrationsDeps {
  readonly store: RegistrationStore;
  readonly resolver: UnitResolver;
  readonly logger: Logger;
  /** The file policies in force, which a registration never overrides. */
  readonly files: () => readonly Policy[];
  /**
   * Called after the registrations changed, with the service names touched: the daemon watches
   * the units, syncs the probes and marks the services dirty (the decision is the next pass's).
   */
  readonly changed: (services: readonly string[]) => Promise<void>;
  /**
   * For the CLI (plan, maint), which reads the registrations as the daemon holds them and must
   * write nothing: a registration set aside is only left out, its file and the log untouched.
   */
  readonly readOnly?: boolean;
}

/** Why a request was refused: one line for the reply and the log. */
class Refused extends Error {
  constructor(
    message: string,
    readonly unit?: string,
  ) {
    super(message);
  }
}

/**
 * The runtime registrations (issue 14, item 2): what callers of the local API asked for, bound to
 * the unit systemd names for their pid, kept in the RegistrationStore so a daemon restart keeps
 * them. Requests are handled one at a time (they are rare, and each is a read-check-write).
 */
export class Registrations {
  readonly #deps: RegistrationsDeps;
  readonly #byName = new Map<string, Registration>();
  #queue: Promise<unknown> = Promise.resolve();
  #version = 0;

  constructor(deps: RegistrationsDeps) {
    this.#deps = deps;
  }

  /** Bumped on every change, so views derived from the registrations know to rebuild. */
  get version(): number {
    return this.#version;
  }

  get all(): ReadonlyMap<string, Registration> {
    return this.#byName;
  }

  /** Whether any registration is bound to `unit`. */
  boundTo(unit: string): boolean {
    for (const registration of this.#byName.values()) if (registration.unit === unit) return true;
    return false;
  }

  /** Reads the registrations kept in the runtime directory (at start); an unusable file is reported and left. */
  async load(): Promise<void> {
    const { registrations, unreadable } = await this.#deps.store.readAll();
    for (const { file, reason } of unreadable) {
      this.#deps.logger.warn({ event: "registration.invalid", file, reason }, `registration file ${file} not used: ${reason}`);
    }
    this.#byName.clear();
    for (const registration of registrations) this.#byName.set(registration.name, registration);
    this.#version++;
  }

  /** One decoded request → its reply. Never throws: a failure is a refusal with its reason. */
  handle(data: unknown): Promise<ApiReply> {
    return this.#serial(() => this.#handle(data));
  }

  /**
   * Every change goes through one queue: a sweep deciding on a stopped unit must not remove the
   * file a request of the restarted unit has just written.
   */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #handle(data: unknown): Promise<ApiReply> {
    const checked = checkRequest(data);
    const op = (data as { op?: unknown } | null)?.op;
    if (!checked.ok) {
      const what = op === "register" || op === "deregister" ? `${op} request` : "request";
      const error = `invalid ${what}: ${checked.errors.map((e) => e.message).join("; ")}`;
      this.#refused(data, undefined, error);
      return { ok: false, error, errors: checked.errors };
    }
    try {
      // The service as sent (durations as strings, no defaults filled in) is what the file keeps.
      const raw = (data as { service?: Record<string, unknown> }).service ?? {};
      return checked.request.op === "register" ? await this.#register(checked.request, raw) : await this.#deregister(checked.request);
    } catch (error) {
      const reason = error instanceof Refused ? error.message : `could not be handled: ${(error as Error).message}`;
      this.#refused(data, error instanceof Refused ? error.unit : undefined, reason);
      return { ok: false, error: reason };
    }
  }

  async #register(request: Extract<ParsedRequest, { op: "register" }>, raw: Readonly<Record<string, unknown>>): Promise<ApiReply> {
    const { service, pid } = request;
    const { unit, activeState } = await this.#callerUnit(pid);
    if (!REGISTERING_STATES.has(activeState)) throw new Refused(`unit ${unit} of pid ${pid} is ${activeState}, not active`, unit);
    const conflict = conflictOf(service, unit, this.#deps.files(), this.#byName.values());
    if (conflict) throw new Refused(conflict, unit);

    const replaced = this.#byName.has(service.name);
    if (!replaced && this.#byName.size >= MAX_REGISTRATIONS) throw new Refused(`this host holds ${MAX_REGISTRATIONS} registrations already, the most it takes`, unit);
    const registeredAt = new Date().toISOString();
    const source = await this.#deps.store.write({ name: service.name, unit, pid, registeredAt, raw });
    this.#byName.set(service.name, { name: service.name, unit, pid, registeredAt, raw, service, source });
    this.#version++;
    this.#deps.logger.info(
      { event: "registration.accepted", service: service.name, unit, pid, url: service.url, endpoints: service.endpoints, replaced, file: source },
      `registration ${replaced ? "replaced" : "accepted"}: ${service.name} (${unit}, pid ${pid})`,
    );
    await this.#changed([service.name]);
    return { ok: true, op: "register", service: service.name, unit, replaced };
  }

  async #deregister(request: Extract<ParsedRequest, { op: "deregister" }>): Promise<ApiReply> {
    const registration = this.#byName.get(request.name);
    if (!registration) throw new Refused(`no registration named ${request.name}${this.#deps.files().some((p) => p.name === request.name) ? " (it is a policy file's service)" : ""}`);
    const { unit } = await this.#callerUnit(request.pid);
    if (unit !== registration.unit) throw new Refused(`${request.name} is registered by unit ${registration.unit}; pid ${request.pid} runs in ${unit}`, unit);
    await this.#remove(registration, `deregistered by pid ${request.pid}`);
    await this.#changed([registration.name]);
    return { ok: true, op: "deregister", service: registration.name, unit };
  }

  /**
   * Tells the daemon. The registration is held (and on disk) by then, so a failure here (the bus
   * is down while the unit is read) is not the caller's refusal: the periodic resync repairs it.
   */
  async #changed(services: readonly string[]): Promise<void> {
    try {
      await this.#deps.changed(services);
    } catch (error) {
      this.#deps.logger.warn({ err: error, services }, `registrations changed, but the daemon could not act on it yet: ${(error as Error).message}`);
    }
  }

  async #callerUnit(pid: number): Promise<{ unit: string; activeState: string }> {
    try {
      return await this.#deps.resolver.unitOf(pid);
    } catch (error) {
      if (error instanceof NoUnitForPidError) throw new Refused(error.message);
      throw error;
    }
  }

  /**
   * Registrations a file policy now claims (by name or url) are dropped: the file is the
   * operator's word. Returns the names dropped.
   */
  dropConflicting(files: readonly Policy[]): Promise<string[]> {
    return this.#serial(() => this.#dropConflicting(files));
  }

  async #dropConflicting(files: readonly Policy[]): Promise<string[]> {
    const dropped: string[] = [];
    for (const registration of [...this.#byName.values()]) {
      // Among themselves registrations were checked when accepted: only the files are new here.
      const conflict = conflictOf(registration.service, registration.unit, files, []);
      if (!conflict) continue;
      await this.#remove(registration, `${conflict}: the policy file wins`);
      dropped.push(registration.name);
    }
    return dropped;
  }

  /**
   * Drops the registrations whose unit stopped cleanly once this host holds no instance of them
   * (the pass that deregistered it has run, a drainDelay included). A failed unit keeps its
   * registration: its instance stays `failing` and the fallback engages, as for a file policy.
   */
  sweep(cleanlyStopped: (unit: string) => boolean, held: (service: string) => boolean): Promise<string[]> {
    return this.#serial(() => this.#sweep(cleanlyStopped, held));
  }

  async #sweep(cleanlyStopped: (unit: string) => boolean, held: (service: string) => boolean): Promise<string[]> {
    const dropped: string[] = [];
    for (const registration of [...this.#byName.values()]) {
      if (!cleanlyStopped(registration.unit) || held(registration.name)) continue;
      await this.#remove(registration, `unit ${registration.unit} stopped`);
      dropped.push(registration.name);
    }
    return dropped;
  }

  async #remove(registration: Registration, reason: string): Promise<void> {
    this.#version++;
    if (this.#deps.readOnly) {
      this.#byName.delete(registration.name);
      return;
    }
    await this.#deps.store.remove(registration.name);
    this.#byName.delete(registration.name);
    this.#deps.logger.info({ event: "registration.removed", service: registration.name, unit: registration.unit, pid: registration.pid, reason, file: registration.source }, `registration removed: ${registration.name} (${reason})`);
  }

  #refused(data: unknown, unit: string | undefined, reason: string): void {
    const record = (data ?? {}) as { pid?: unknown; name?: unknown; service?: { name?: unknown } };
    const service = typeof record.service?.name === "string" ? record.service.name : typeof record.name === "string" ? record.name : undefined;
    const pid = typeof record.pid === "number" ? record.pid : undefined;
    this.#deps.logger.warn({ event: "registration.refused", service, unit, pid, reason }, `registration refused${service ? `: ${service}` : ""}: ${reason}`);
  }
}
