import { z } from "zod";

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Parses "500ms", "5s", "2m", "1h" into milliseconds; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/**
 * A duration string in the policy or config, parsed to milliseconds (a positive integer), at most
 * `max` (issue 15, item 8): without a bound "600h" overflows Node's timer, which then fires after
 * 1 ms — a probe loop turned into a busy loop. The bound is named in the error.
 */
export function boundedDuration(max: string) {
  const maxMs = parseDuration(max)!;
  return z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({ code: "custom", message: `"${text}" is not a duration like 500ms, 5s, 2m or 1h` });
      return z.NEVER;
    }
    if (ms > maxMs) {
      ctx.addIssue({ code: "custom", message: `"${text}" is longer than the maximum of ${max}` });
      return z.NEVER;
    }
    return ms;
  });
}

/** Node's timers hold at most 2^31-1 ms (24.8 days); no duration may reach it. */
export const Duration = boundedDuration("24h");
