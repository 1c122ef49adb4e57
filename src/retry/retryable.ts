/**
 * Whether an error says it may pass without anyone doing anything (an outage, contention): every
 * typed error of the adapters declares `retryable`, and the scheduler reads only that. An error
 * without the flag is a bug or needs an operator, and is treated as such.
 */
export function isRetryable(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { retryable?: unknown }).retryable === true;
}
