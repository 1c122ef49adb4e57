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

/**
 * The registry credentials file is missing, unreadable, malformed or not private. Terminal (an
 * operator must fix the file). Names the file, its owner and mode, never its content.
 */
export class CredentialsError extends Error {
  override readonly name = "CredentialsError";
  readonly retryable = false;
  readonly owner: number | undefined;
  readonly mode: number | undefined;
  constructor(
    readonly file: string,
    problem: string,
    details: { owner?: number; mode?: number; cause?: unknown } = {},
  ) {
    const facts = details.mode === undefined ? "" : ` (owner uid ${details.owner}, mode ${details.mode.toString(8).padStart(4, "0")})`;
    super(`credentials file ${file} ${problem}${facts}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.owner = details.owner;
    this.mode = details.mode;
  }
}

/**
 * A unique index the registry relies on (one document per name, one name per url) cannot be
 * built: documents already in the collection break it (written while no such index was in force,
 * e.g. by a daemon older than this check). Not retryable by waiting: an operator removes the extra
 * documents, and the next pass's open() builds the index. Until then this host writes nothing.
 */
export class UniqueIndexError extends Error {
  override readonly name = "UniqueIndexError";
  readonly retryable = false;
  constructor(
    readonly store: string,
    readonly field: "name" | "url",
    readonly index: string,
    /** Some of the values held by more than one document, each with those documents' _ids. */
    readonly duplicates: readonly { readonly value: unknown; readonly documents: readonly string[] }[],
    options?: { cause?: unknown },
  ) {
    const found = duplicates.map((d) => `${JSON.stringify(d.value)} in ${d.documents.map((id) => `_id ${id}`).join(", ")}`).join("; ");
    super(
      `registry ${store}: the unique index ${index} on ${field} cannot be built, documents share a ${field}${found ? ` (${found})` : ""}; remove the extra documents, the next pass builds it`,
      options,
    );
  }
}
