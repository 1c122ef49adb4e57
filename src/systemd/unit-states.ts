/**
 * What the watcher knows of each watched unit: the committed (emitted) states, the states merged
 * from signals and not yet committed, and the signals captured while a unit's snapshot is in
 * flight. Committing a state that differs from the last one emits a change.
 *
 * Nothing is queued without bound: per-unit signal buffers during a snapshot are capped
 * (overflow → re-read), and pending states are one per unit.
 */
import type { UnitChange, UnitState } from "./types.js";
import { UNIT_INTERFACE, applyPatch, sameState, type UnitStatePatch } from "./properties.js";
import { needsConfirmation } from "./facts.js";
import { classifyTransition } from "./transition.js";

/** Signals kept per unit while its snapshot is in flight; more means "re-read it afterwards". */
const CAPTURE_LIMIT = 64;
/** How long a .Service PropertiesChanged waits for its .Unit companion before it is judged alone. */
const SERVICE_ONLY_FLUSH_MS = 50;

interface Captured {
  readonly seq: number;
  readonly iface: string;
  readonly patch: UnitStatePatch;
}
interface Capture {
  readonly signals: Captured[];
  overflow: boolean;
}

/** A unit as a snapshot read it: its state, and per interface the sequence number of the reply. */
export interface UnitRead {
  readonly state: UnitState;
  readonly replySeq: ReadonlyMap<string, number>;
}

export interface UnitStatesHooks {
  /** Whether `unit` is still watched; states of others are dropped instead of committed. */
  readonly isWatched: (unit: string) => boolean;
  /** Called with every committed change. */
  readonly onChange: (change: UnitChange) => void;
  /** `unit` must be (re-)read: what a signal says cannot be merged or must be confirmed. */
  readonly needRead: (unit: string) => void;
}

export class UnitStates {
  readonly #hooks: UnitStatesHooks;
  #states = new Map<string, UnitState>();
  /** Signal-merged states not yet compared and emitted (flushed on setImmediate). */
  #pending = new Map<string, UnitState>();
  #flushImmediate = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #captures = new Map<string, Capture>();

  constructor(hooks: UnitStatesHooks) {
    this.#hooks = hooks;
  }

  /** The last committed state. */
  get(unit: string): UnitState | undefined {
    return this.#states.get(unit);
  }

  /** `unit` is no longer watched. */
  forget(unit: string): void {
    this.#states.delete(unit);
    this.#pending.delete(unit);
  }

  /** Stops the .Service-only flush timer (the watcher stops). */
  cancelFlush(): void {
    clearTimeout(this.#flushTimer);
  }

  /** A snapshot of `unit` begins: its signals are captured until settle() or endCapture(). */
  beginCapture(unit: string): void {
    this.#captures.set(unit, { signals: [], overflow: false });
    // Superseded by the snapshot; its transition is judged against the last emitted state.
    this.#pending.delete(unit);
  }

  endCapture(unit: string): void {
    this.#captures.delete(unit);
  }

  /** The connection was lost: signals may be missing from every capture in flight. */
  overflowCaptures(): void {
    for (const c of this.#captures.values()) c.overflow = true;
  }

  /**
   * `read` with the signals captured during the read applied, per interface only those newer
   * than that interface's reply; ends the capture. `reread`: the unit must be read once more.
   */
  settle(unit: string, read: UnitRead): { state: UnitState; reread: boolean } {
    let state = read.state;
    let reread = false;
    const capture = this.#captures.get(unit);
    if (capture) {
      for (const s of capture.signals) {
        if (s.seq > (read.replySeq.get(s.iface) ?? 0)) state = applyPatch(state, s.patch);
      }
      // A lost signal, or a not-loaded unit that signalled (LoadState is const on the bus, so
      // only a read can tell it got loaded): read once more.
      reread = capture.overflow || (capture.signals.length > 0 && (state.loadState !== "loaded" || needsConfirmation(state)));
    }
    // This unit is read: its next signals merge onto the committed state. Left in place until
    // the whole batch ends, the capture would swallow them (a stop during a resync, lost until
    // the next resync; test/faults/resync-window.test.ts).
    this.#captures.delete(unit);
    return { state, reread };
  }

  /** One well-formed PropertiesChanged of `unit` (`invalidated`: a tracked property lost its value). */
  onSignal(unit: string, seq: number, iface: string, patch: UnitStatePatch, invalidated: boolean): void {
    const capture = this.#captures.get(unit);
    if (capture) {
      if (capture.signals.length < CAPTURE_LIMIT) capture.signals.push({ seq, iface, patch });
      else capture.overflow = true;
      if (invalidated) capture.overflow = true;
      return;
    }
    const known = this.#pending.get(unit) ?? this.#states.get(unit);
    if (invalidated || known === undefined || known.loadState !== "loaded") {
      // No value to merge, or LoadState (const on the bus) may be stale: read it. Reading a
      // loaded unit emits no signal, so this cannot loop.
      this.#hooks.needRead(unit);
      if (known === undefined) return;
    }
    const merged = applyPatch(known, patch);
    if (needsConfirmation(merged)) {
      // Judged by a read instead: what is pending for this unit is superseded by it.
      this.#pending.delete(unit);
      this.#hooks.needRead(unit);
      return;
    }
    this.#pending.set(unit, merged);
    // systemd sends .Service first, then .Unit, for one change ("clients may rely on this order
    // to get atomic behavior", dbus-unit.c), so a .Unit signal completes the picture; after a
    // lone .Service signal, a short timer stands in for a .Unit signal that is not coming.
    if (iface === UNIT_INTERFACE) {
      if (!this.#flushImmediate) {
        this.#flushImmediate = true;
        setImmediate(() => this.#flush());
      }
    } else if (this.#flushTimer === undefined) {
      this.#flushTimer = setTimeout(() => this.#flush(), SERVICE_ONLY_FLUSH_MS);
    }
  }

  #flush(): void {
    this.#flushImmediate = false;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [unit, state] of pending) if (this.#hooks.isWatched(unit)) this.commit(unit, state);
  }

  /** Takes `after` as the unit's state; emits a change when it differs from the last one. */
  commit(unit: string, after: UnitState): void {
    const before = this.#states.get(unit);
    if (sameState(before, after)) return;
    this.#states.set(unit, after);
    const change: UnitChange = { unit, before, after, transition: classifyTransition(before, after) };
    this.#hooks.onChange(change);
  }
}
