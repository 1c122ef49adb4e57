/** systemd's own timestamps of a unit's transitions, in epoch milliseconds (µs precision). */
import type { Sandbox } from "../../test/harness/sandbox.js";

export const TIMESTAMPS = ["ExecMainStartTimestamp", "ActiveEnterTimestamp", "ActiveExitTimestamp", "InactiveEnterTimestamp"] as const;
export type TimestampName = (typeof TIMESTAMPS)[number];

/**
 * `systemctl show --timestamp=us+utc` prints e.g. "Thu 2026-11-26 01:40:00.123456 UTC": the D-Bus
 * property (µs since the epoch, CLOCK_REALTIME) formatted; the sandbox shares the host's realtime
 * clock (no time namespace), so it compares directly with performance.timeOrigin + now().
 */
export async function unitTimestamps(sb: Sandbox, unit: string): Promise<Record<TimestampName, number>> {
  const r = await sb.systemctl("show", "--timestamp=us+utc", ...TIMESTAMPS.flatMap((p) => ["-p", p]), unit);
  const out = {} as Record<TimestampName, number>;
  for (const name of TIMESTAMPS) {
    const m = new RegExp(`^${name}=\\S+ (\\d{4}-\\d\\d-\\d\\d) (\\d\\d:\\d\\d:\\d\\d)\\.(\\d{6}) UTC$`, "m").exec(r.stdout);
    out[name] = m ? Date.parse(`${m[1]}T${m[2]}Z`) + Number(m[3]) / 1000 : Number.NaN;
  }
  return out;
}

/** ActiveState and Result of many units in one systemctl call. */
export async function unitStates(sb: Sandbox, units: readonly string[]): Promise<Map<string, { activeState: string; result: string }>> {
  const out = new Map<string, { activeState: string; result: string }>();
  for (let i = 0; i < units.length; i += 200) {
    const r = await sb.systemctl("show", "-p", "Id", "-p", "ActiveState", "-p", "Result", ...units.slice(i, i + 200));
    for (const block of r.stdout.split(/\n\n+/)) {
      const get = (k: string) => new RegExp(`^${k}=(.*)$`, "m").exec(block)?.[1] ?? "";
      if (get("Id")) out.set(get("Id"), { activeState: get("ActiveState"), result: get("Result") });
    }
  }
  return out;
}

/**
 * An active target ordered After= the units: the reference keeps systemd from unloading a stopped
 * unit (and forgetting its timestamps) before they are read. Start it once; it starts nothing.
 */
export function holdTarget(units: readonly string[]): string {
  return `[Unit]\nDescription=keeps the benchmark's units loaded\nAfter=${units.join(" ")}\n`;
}
