/**
 * One problem in a policy or config file, at a place an operator (or an editor's problem matcher)
 * can jump to. Lines and columns are 1-based; problems with no better place (a file too large,
 * a missing directory) sit at 1:1 so every line of `registrar validate` has the same shape.
 */
export class PolicyError extends Error {
  override readonly name = "PolicyError";
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The offending field as a path like `endpoints[0].url`, when the problem is about one. */
  readonly field: string | undefined;

  constructor(
    init: { file: string; line: number; column: number; message: string; field?: string | undefined },
    options?: { cause?: unknown },
  ) {
    super(init.message, options);
    this.file = init.file;
    this.line = init.line;
    this.column = init.column;
    this.field = init.field;
  }

  /** `FILE:LINE:COL: message`, the format `registrar validate` prints and editors parse. */
  override toString(): string {
    return `${this.file}:${this.line}:${this.column}: ${this.message}`;
  }
}

/** The config could not be used; `errors` says where and why, one entry per problem. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly errors: readonly PolicyError[];

  constructor(errors: readonly PolicyError[], options?: { cause?: unknown }) {
    super(errors.map(String).join("\n") || "invalid config", options);
    this.errors = errors;
  }
}
