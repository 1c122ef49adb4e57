/** The registry cannot be reached or refused the operation for a reason that may pass. Retryable. */
export class RegistryUnavailableError extends Error {
  override readonly name = "RegistryUnavailableError";
  readonly retryable = true;
  constructor(
    message: string,
    readonly store: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Two service names claim one url: the gateway could only see one. Terminal until a policy changes. */
export class UrlConflictError extends Error {
  override readonly name = "UrlConflictError";
  readonly retryable = false;
  constructor(
    readonly url: string,
    readonly service: string,
    readonly heldBy: string,
  ) {
    super(`url ${url} of service ${service} is already registered by service ${heldBy}`);
  }
}

/** Compare-and-set kept losing to other writers; the next reconcile pass retries. */
export class WriteContentionError extends Error {
  override readonly name = "WriteContentionError";
  readonly retryable = true;
  constructor(
    readonly service: string,
    readonly attempts: number,
  ) {
    super(`gave up writing service ${service} after ${attempts} compare-and-set attempts`);
  }
}

/** The registry URL's scheme names no store. Terminal (a config error). */
export class UnsupportedRegistryError extends Error {
  override readonly name = "UnsupportedRegistryError";
  readonly retryable = false;
  constructor(readonly url: string) {
    super(`registry.url ${url} has no known scheme (expected file:, mongodb:// or mongodb+srv://)`);
  }
}
