/**
 * The wire format of the local API (issue 14, item 2), shared by the daemon's server and the
 * client module: one JSON object per line, one request per connection, one reply. Types only,
 * so the client (which must need nothing beyond Node) compiles to plain code.
 */

/** An endpoint as the gateway reads it. */
export interface ApiEndpoint {
  readonly type: string;
  readonly url: string;
}

/**
 * The seed library's service object (name, url, endpoints, authorizedRoles), plus what a policy
 * file may say of its service besides its unit: health, fallback, tags, meta, weight, drainDelay.
 * The daemon validates it with the policy schema (src/policy/schema.ts), so both say the same.
 */
export interface ApiService {
  readonly name: string;
  readonly url: string;
  readonly endpoints: readonly ApiEndpoint[];
  readonly authorizedRoles: readonly string[];
  readonly health?: {
    readonly http?: string;
    readonly tcp?: string;
    readonly exec?: readonly string[];
    readonly interval?: string;
    readonly timeout?: string;
    readonly rise?: number;
    readonly fall?: number;
    readonly expectStatus?: "2xx" | readonly number[];
  };
  readonly fallback?: { readonly endpoints: readonly ApiEndpoint[] };
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  readonly weight?: number;
  readonly drainDelay?: string;
}

export interface RegisterRequest {
  readonly op: "register";
  /** A process of the unit the registration is bound to (usually the caller itself). */
  readonly pid: number;
  readonly service: ApiService;
}

export interface DeregisterRequest {
  readonly op: "deregister";
  /** A process of the unit the registration is bound to. */
  readonly pid: number;
  readonly name: string;
}

export type ApiRequest = RegisterRequest | DeregisterRequest;

/** One problem with a request, at the field it is about (`service.endpoints[0].url`). */
export interface ApiFieldError {
  readonly field: string | undefined;
  readonly message: string;
}

export interface ApiSuccess {
  readonly ok: true;
  readonly op: ApiRequest["op"];
  readonly service: string;
  readonly unit: string;
  /** register: whether an earlier registration of the same name by the same unit was replaced. */
  readonly replaced?: boolean;
}

export interface ApiFailure {
  readonly ok: false;
  /** One line: why the request was refused. */
  readonly error: string;
  /** For an invalid request: every problem, by field. */
  readonly errors?: readonly ApiFieldError[];
}

export type ApiReply = ApiSuccess | ApiFailure;

/** Where the packaged daemon listens (registrar.socket); `REGISTRAR_API_SOCKET` or an option overrides it. */
export const DEFAULT_API_SOCKET = "/run/registrar/api.sock";

/** A request line longer than this is refused: a service object is a few hundred bytes. */
export const MAX_REQUEST_BYTES = 64 * 1024;
