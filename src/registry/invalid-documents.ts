/**
 * How a store says it met a stored document that does not fit the schema (document-schema.ts),
 * and the bounded memory that makes it say so once per distinct problem rather than on every pass.
 */
import type { DocumentIssue } from "./document-schema.js";

export type InvalidDocumentReport =
  | {
      /** The document was set aside: readers do not see it, and this host did not write it. */
      readonly event: "registry.document.invalid";
      readonly store: string;
      /** The document's name when it has one (a string); undefined otherwise. */
      readonly service: string | undefined;
      /** Where it is: `_id 65f…` in MongoDB, `services[3]` in the file. */
      readonly document: string;
      /** The first problem's field path and reason; every problem is in `issues`. */
      readonly field: string;
      readonly reason: string;
      readonly issues: readonly DocumentIssue[];
      /** Why this host left it as it is, when it was asked to write it. */
      readonly notRepaired?: string;
    }
  | {
      /** This host wrote its own instance into the document, rebuilt from its valid parts. */
      readonly event: "registry.document.repaired";
      readonly store: string;
      readonly service: string;
      readonly document: string;
      readonly issues: readonly DocumentIssue[];
      /** What the rewrite left out (field paths; an instance with its host). */
      readonly dropped: readonly string[];
    };

export type InvalidDocumentListener = (report: InvalidDocumentReport) => void;

/** Documents remembered at most; past it the oldest is forgotten (and reported again if still bad). */
const MEMORY = 1_000;

/**
 * Reports each distinct problem of a document once. Keyed by where the document is, so a document
 * that gets repaired and later breaks again is reported again; a document that reads valid is
 * forgotten. Bounded by MEMORY documents.
 */
export class InvalidDocuments {
  readonly #store: string;
  readonly #listener: InvalidDocumentListener | undefined;
  /** Document locator → the signature of the problems last reported for it. */
  readonly #reported = new Map<string, string>();

  constructor(store: string, listener: InvalidDocumentListener | undefined) {
    this.#store = store;
    this.#listener = listener;
  }

  /** A document was read and does not fit; reports it unless these very problems were reported. */
  invalid(document: string, service: string | undefined, issues: readonly DocumentIssue[], notRepaired?: string): void {
    const signature = JSON.stringify([issues, notRepaired ?? null]);
    if (this.#reported.get(document) === signature) return;
    this.#reported.delete(document);
    this.#reported.set(document, signature);
    if (this.#reported.size > MEMORY) this.#reported.delete(this.#reported.keys().next().value!);
    const first = issues[0] ?? { field: "(document)", reason: "invalid" };
    this.#listener?.({
      event: "registry.document.invalid",
      store: this.#store,
      service,
      document,
      field: first.field,
      reason: first.reason,
      issues,
      ...(notRepaired === undefined ? {} : { notRepaired }),
    });
  }

  /** This host rewrote the document from its base. */
  repaired(document: string, service: string, issues: readonly DocumentIssue[], dropped: readonly string[]): void {
    this.#reported.delete(document);
    this.#listener?.({ event: "registry.document.repaired", store: this.#store, service, document, issues, dropped });
  }

  /** The document at `document` read valid: whatever was reported about it is over. */
  valid(document: string): void {
    if (this.#reported.size > 0) this.#reported.delete(document);
  }
}

/** The report as one log line's message (verb first, as every event's). */
export function describeInvalidDocument(report: InvalidDocumentReport): string {
  if (report.event === "registry.document.repaired") {
    return `repaired: registry document ${report.service} rewritten with this host's instance from its valid parts${report.dropped.length > 0 ? `, dropped ${report.dropped.join(", ")}` : ""}`;
  }
  const more = report.issues.length > 1 ? ` (and ${report.issues.length - 1} more)` : "";
  return `invalid: registry document ${report.service ?? report.document} in ${report.store}, ${report.field}: ${report.reason}${more}; ${report.notRepaired ?? "not served, left as it is"}`;
}
