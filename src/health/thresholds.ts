/** The outcome of one probe. */
export interface ProbeResult {
  readonly ok: boolean;
  /** Why, in words: "HTTP 200", "HTTP 500", "timeout after 2000 ms", "connection refused", … */
  readonly detail: string;
  readonly latencyMs: number;
  /** What the service said, when it said something: the start of an HTTP body (the instance's `check` shows it). */
  readonly output?: string;
}

export type HealthState = "starting" | "passing" | "failing";

export interface HealthCounter {
  readonly state: HealthState;
  /** Consecutive passes (when the last probe passed) or failures (when it failed). */
  readonly streak: number;
  readonly lastOk: boolean | undefined;
  readonly lastDetail: string;
}

export const initialCounter: HealthCounter = { state: "starting", streak: 0, lastOk: undefined, lastDetail: "no probe yet" };

/**
 * Rise/fall hysteresis, as HAProxy and Consul do it: `rise` consecutive passes to become passing,
 * `fall` consecutive failures to become failing; one odd result in between does not flap the
 * registry. A new instance starts "starting" and is not served until it has risen.
 */
export function nextCounter(counter: HealthCounter, result: ProbeResult, rise: number, fall: number): HealthCounter {
  const streak = counter.lastOk === result.ok ? counter.streak + 1 : 1;
  let state = counter.state;
  if (result.ok && streak >= rise) state = "passing";
  if (!result.ok && streak >= fall) state = "failing";
  return { state, streak, lastOk: result.ok, lastDetail: result.detail };
}

/** The reason an operator reads: "health: 3 consecutive failures, last: timeout after 2000 ms". */
export function describeCounter(counter: HealthCounter): string {
  if (counter.lastOk === undefined) return "health: no probe yet";
  const noun = counter.lastOk ? (counter.streak === 1 ? "pass" : "passes") : counter.streak === 1 ? "failure" : "failures";
  return `health: ${counter.streak} consecutive ${noun}, last: ${counter.lastDetail}`;
}
