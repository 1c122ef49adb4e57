import type { Logger } from "../log/logger.js";
import type { LogEvent } from "../reconcile/outcome-events.js";

const RECENT_EVENTS = 50;

export interface EventSinkOptions {
  readonly logger: Logger;
  /** Every event emitted, by name (the daemon counts them for /metrics). */
  readonly onEvent?: (event: string) => void;
  readonly now?: () => Date;
}

/**
 * The one path every decision's event takes: a log line, a count for /metrics (onEvent) and, from
 * info up, a place in the ring of recent events /status shows. Passes, lease work and the
 * scheduler's outage and contention notices all emit here.
 */
export class EventSink {
  readonly #options: EventSinkOptions;
  /** The last events, newest last, for /status. Bounded. */
  readonly #recent: Array<Record<string, unknown>> = [];

  constructor(options: EventSinkOptions) {
    this.#options = options;
  }

  get recent(): readonly Record<string, unknown>[] {
    return this.#recent;
  }

  /** `err`, if given, goes to the log line only (serialized there); /status gets `reason`. */
  emit(event: LogEvent, err?: unknown): void {
    // `host` is on every line already (the logger's base); a second copy would be a duplicate JSON key.
    const { level, msg, host: _self, ...fields } = event;
    this.#options.logger[level](err === undefined ? fields : { ...fields, err }, msg);
    this.#options.onEvent?.(event.event);
    if (level === "debug") return;
    this.#recent.push({ time: (this.#options.now?.() ?? new Date()).toISOString(), ...fields, msg });
    if (this.#recent.length > RECENT_EVENTS) this.#recent.shift();
  }
}
