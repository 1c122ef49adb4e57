/**
 * A registry write as the server's own atomic update (issue 12, item 2): putting this host's
 * instances (one per unit) into a document, or taking instances out, and recomputing `endpoints` and `status`,
 * all in one aggregation-pipeline update (MongoDB ≥ 4.2). The server applies it to whatever the
 * document holds at that moment, so a write never loses a compare-and-set and never retries,
 * however many hosts share the document.
 *
 * The pipelines compute exactly what src/reconcile/apply.ts computes (the pipeline test holds
 * them to it on a real server, document for document), for documents in the canonical form
 * registrar writes: every field present with its type, instance and endpoint keys in toStored's
 * order (an instance's optional tags, meta, weight and check after the rest, meta's keys in order),
 * instances sorted by host then unit, with no host's unit twice. `canonical` is that condition as a filter:
 * a document outside it (legacy, hand-edited, invalid) is never touched here and takes the
 * compare-and-set path, which validates it and applies the repair rule.
 *
 * Every value of an action enters as `$literal`: a host or reason starting with "$" stays text.
 */
import { CHECK_REFRESH_MS, copyCheck, instanceExtras } from "../instance-extras.js";
import type { DesiredInstance, Fence, Prune, PutInstance, RemoveInstance } from "../../reconcile/actions.js";
import { copyEndpoints } from "./stored.js";

/** The actions that have a pipeline form (a renewal has its own positional update). */
export type PipelineAction = PutInstance | RemoveInstance | Fence | Prune;

type Expr = unknown;

const INSTANCE_KEYS = ["host", "bootId", "unit", "endpoints", "state", "since", "leaseExpiresAt", "reason"];
/** The optional instance fields (issue 13, items 3 and 4), each present or not, in this order after the rest. */
const OPTIONAL_INSTANCE_KEYS = ["tags", "meta", "weight", "check"];
const CHECK_KEYS = ["ok", "detail", "latencyMs", "at"];
/** Every key list a canonical instance may have: INSTANCE_KEYS, then any ordered subset of the optional ones. */
const INSTANCE_KEY_LISTS: string[][] = OPTIONAL_INSTANCE_KEYS.reduce<string[][]>((lists, key) => [...lists, ...lists.map((list) => [...list, key])], [[]])
  .map((optional) => [...INSTANCE_KEYS, ...OPTIONAL_INSTANCE_KEYS.filter((key) => optional.includes(key))]);
const ENDPOINT_KEYS = ["type", "url"];
const STATES = ["starting", "passing", "failing", "draining", "stopped", "maintenance"];
const STATUSES = ["passing", "degraded", "fallback", "failing"];

const lit = (value: unknown): Expr => ({ $literal: value });
const typeIs = (expr: Expr, ...types: string[]): Expr => ({ $in: [{ $type: expr }, types] });
const nonEmptyString = (expr: Expr): Expr => ({ $and: [typeIs(expr, "string"), { $gt: [{ $strLenCP: { $cond: [typeIs(expr, "string"), expr, ""] } }, 0] }] });
/*
 * DocumentDB evaluates both branches of a `$cond`: an operator that refuses its input's type
 * ($objectToArray, $map, $reduce, $allElementsTrue) fails the whole command even in the branch
 * not taken. The canonical filter meets documents of any shape (that is its job), so every such
 * operator gets an input of the right type whatever the document holds, and a malformed document
 * only fails the filter, going the compare-and-set way, instead of failing the write.
 */
const asArray = (expr: Expr): Expr => ({ $cond: [{ $isArray: expr }, expr, []] });
const asObject = (expr: Expr): Expr => ({ $cond: [typeIs(expr, "object"), expr, {}] });
const keysOf = (expr: Expr): Expr => ({ $map: { input: { $objectToArray: asObject(expr) }, as: "kv", in: "$$kv.k" } });

/** An object whose keys are exactly one of `keyLists` (in that order), and which passes `rest`. */
const shapedAnyOf = (expr: Expr, keyLists: readonly (readonly string[])[], rest: Expr[]): Expr => ({ $and: [typeIs(expr, "object"), { $in: [keysOf(expr), lit(keyLists)] }, ...rest] });
/** An object whose keys are exactly `keys`, in that order, and which passes `rest`. */
const shaped = (expr: Expr, keys: readonly string[], rest: Expr[]): Expr => shapedAnyOf(expr, [keys], rest);
/** An array whose every element passes `test` (`$$<as>`); false for anything else. */
const every = (array: Expr, as: string, test: Expr): Expr => ({ $and: [{ $isArray: array }, { $allElementsTrue: [{ $map: { input: asArray(array), as, in: test } }] }] });
const endpointsOk = (array: Expr, as: string): Expr => every(array, as, shaped(`$$${as}`, ENDPOINT_KEYS, [typeIs(`$$${as}.type`, "string"), typeIs(`$$${as}.url`, "string")]));

/** Absent, or present and passing `test` (`$$v` bound to it). */
const absentOr = (expr: Expr, test: Expr): Expr => ({ $cond: [{ $eq: [{ $type: expr }, "missing"] }, true, { $let: { vars: { v: expr }, in: test } }] });

/** meta: an object of strings, keys in code-unit order (as reconcile writes it), none twice. */
const metaOk: Expr = {
  $let: {
    vars: { kv: { $objectToArray: asObject("$$v") } },
    in: {
      $and: [
        typeIs("$$v", "object"),
        every("$$kv", "m", typeIs("$$m.v", "string")),
        { $let: { vars: { r: { $reduce: { input: "$$kv", initialValue: { ok: true, prev: "" }, in: { ok: { $and: ["$$value.ok", { $gt: ["$$this.k", "$$value.prev"] }] }, prev: "$$this.k" } } } }, in: "$$r.ok" } },
      ],
    },
  },
};

const instanceOk: Expr = shapedAnyOf("$$i", INSTANCE_KEY_LISTS, [
  nonEmptyString("$$i.host"),
  typeIs("$$i.bootId", "string"),
  typeIs("$$i.unit", "string"),
  endpointsOk("$$i.endpoints", "ie"),
  { $in: ["$$i.state", STATES] },
  typeIs("$$i.since", "date"),
  typeIs("$$i.leaseExpiresAt", "date"),
  typeIs("$$i.reason", "string"),
  absentOr("$$i.tags", every("$$v", "t", typeIs("$$t", "string"))),
  absentOr("$$i.meta", metaOk),
  absentOr("$$i.weight", typeIs("$$v", "int", "long", "double")),
  absentOr("$$i.check", shaped("$$v", CHECK_KEYS, [typeIs("$$v.ok", "bool"), typeIs("$$v.detail", "string"), typeIs("$$v.latencyMs", "int", "long", "double"), typeIs("$$v.at", "date")])),
]);

/** Instances strictly ascending by (host, unit): sorted as deriveDocument sorts them, no host's unit twice. */
const hostsAscending: Expr = {
  $let: {
    vars: {
      r: {
        $reduce: {
          input: asArray("$instances"),
          initialValue: { ok: true, host: "", unit: "" },
          in: {
            ok: { $and: ["$$value.ok", { $or: [{ $gt: ["$$this.host", "$$value.host"] }, { $and: [{ $eq: ["$$this.host", "$$value.host"] }, { $gt: ["$$this.unit", "$$value.unit"] }] }] }] },
            host: "$$this.host",
            unit: "$$this.unit",
          },
        },
      },
    },
    in: "$$r.ok",
  },
};

/** The canonical-form condition (see the header), as a `$expr`. */
export const canonical: Expr = {
  $and: [
    nonEmptyString("$name"),
    nonEmptyString("$url"),
    endpointsOk("$endpoints", "e"),
    every("$authorizedRoles", "r", typeIs("$$r", "string")),
    { $in: ["$status", STATUSES] },
    every("$instances", "i", instanceOk),
    { $cond: [{ $isArray: "$instances" }, hostsAscending, false] },
    { $or: [{ $eq: ["$fallback", null] }, shaped("$fallback", ["endpoints"], [endpointsOk("$fallback.endpoints", "fe")])] },
    typeIs("$rev", "int", "long", "double"),
    { $cond: [typeIs("$rev", "int", "long", "double"), { $and: [{ $gte: ["$rev", 0] }, { $eq: ["$rev", { $trunc: { $cond: [typeIs("$rev", "int", "long", "double"), "$rev", 0] } }] }] }, false] },
    typeIs("$updatedAt", "date"),
  ],
};

const TEMP = ["_mine", "_instances", "_passing", "_next"];

/** The array's elements each once, first occurrence first (a JS `new Set` keeps that order too). */
const distinct = (input: Expr): Expr => ({ $reduce: { input, initialValue: [], in: { $cond: [{ $in: ["$$this", "$$value"] }, "$$value", { $concatArrays: ["$$value", ["$$this"]] }] } } });

/** Endpoints of the passing instances, each once, in instance order (deriveDocument's uniqueEndpoints). */
const passingEndpoints: Expr = distinct({ $reduce: { input: "$_passing", initialValue: [], in: { $concatArrays: ["$$value", "$$this.endpoints"] } } });

/** `status` and `endpoints` from `_instances`, `_passing` and the service's fallback. */
function derived(fallbackEndpoints: Expr, hasFallback: Expr): { status: Expr; endpoints: Expr } {
  const anyPassing = { $gt: [{ $size: "$_passing" }, 0] };
  return {
    endpoints: { $cond: [anyPassing, passingEndpoints, { $cond: [hasFallback, fallbackEndpoints, []] }] },
    status: { $cond: [anyPassing, { $cond: [{ $eq: [{ $size: "$_passing" }, { $size: "$_instances" }] }, "passing", "degraded"] }, { $cond: [hasFallback, "fallback", "failing"] }] },
  };
}

const passingStage = { $set: { _passing: { $filter: { input: "$_instances", as: "p", cond: { $eq: ["$$p.state", "passing"] } } } } };

/** The document as it is, in the fields a change compares (rev and updatedAt aside). */
const currentFields = { name: "$name", url: "$url", endpoints: "$endpoints", authorizedRoles: "$authorizedRoles", status: "$status", instances: "$instances", fallback: "$fallback" };

/**
 * `_next` becomes the document (with rev + 1 and `now`) unless it equals what is there: then the
 * document stays as it is, as apply.ts returns `unchanged`. The temporary fields go either way.
 */
function writeStages(now: Date): object[] {
  return [
    {
      $replaceWith: {
        $cond: [{ $eq: ["$_next", currentFields] }, "$$ROOT", { $mergeObjects: [{ _id: "$_id" }, "$_next", { rev: { $add: [{ $ifNull: ["$rev", 0] }, 1] }, updatedAt: lit(now) }] }],
      },
    },
    { $unset: TEMP },
  ];
}

export interface PipelineUpdate {
  /** Matches the document by name, and only in canonical form. */
  filter: Record<string, unknown>;
  pipeline: object[];
}

/**
 * One desired instance as the pipeline builds it, over `$$m`: what the document holds for its
 * host and unit (missing when nothing), as apply.ts `placed` computes it.
 */
function placedExpr(action: PutInstance, d: DesiredInstance): Expr {
  const same = { $and: [{ $eq: ["$$m.bootId", lit(d.bootId)] }, { $eq: ["$$m.state", lit(d.state)] }] };
  return {
    host: lit(d.host),
    bootId: lit(d.bootId),
    unit: lit(d.unit),
    endpoints: lit(copyEndpoints(d.endpoints)),
    state: lit(d.state),
    since: { $cond: [same, "$$m.since", lit(action.now)] },
    leaseExpiresAt: { $cond: [{ $and: [same, { $gt: ["$$m.leaseExpiresAt", lit(action.keepLeaseAfter)] }] }, "$$m.leaseExpiresAt", lit(action.leaseExpiresAt)] },
    reason: { $cond: [same, "$$m.reason", lit(d.reason)] },
    ...Object.fromEntries(Object.entries(instanceExtras(d)).map(([key, value]) => [key, lit(value)])),
    // keptCheck, as an expression over the instance there now.
    ...(d.check
      ? {
          check: {
            $cond: [
              {
                $and: [
                  same,
                  { $eq: [{ $type: "$$m.check" }, "object"] },
                  { $or: [{ $and: [{ $eq: ["$$m.check.ok", lit(d.check.ok)] }, { $eq: ["$$m.check.detail", lit(d.check.detail)] }] }, { $gt: ["$$m.check.at", lit(new Date(d.check.at.getTime() - CHECK_REFRESH_MS))] }] },
                ],
              },
              "$$m.check",
              lit(copyCheck(d.check)),
            ],
          },
        }
      : {}),
  };
}

/** put-instance into an existing document as one pipeline update (apply.ts `put`). */
export function putPipeline(action: PutInstance, now: Date): PipelineUpdate {
  const f = action.fields;
  const host = lit(action.host);
  const fallback = f.fallback ? { endpoints: copyEndpoints(f.fallback.endpoints) } : null;
  const mineOf = (unit: string): Expr => ({ $arrayElemAt: [{ $filter: { input: "$_mine", as: "u", cond: { $eq: ["$$u.unit", lit(unit)] } } }, 0] });
  // Each desired instance with `$$m` bound to this host's instance of its unit, if any.
  const instances = action.instances.map((d) => ({ $let: { vars: { m: mineOf(d.unit) }, in: placedExpr(action, d) } }));
  const others = (cmp: "$lt" | "$gt") => ({ $filter: { input: { $ifNull: ["$instances", []] }, as: "o", cond: { [cmp]: ["$$o.host", host] } } });
  const { status, endpoints } = derived(lit(fallback?.endpoints ?? []), lit(fallback !== null));
  return {
    // No upsert: DocumentDB refuses `$expr` in an upsert's filter. An absent document is
    // inserted by the caller (and a non-canonical one then meets the unique index on name).
    filter: { name: f.name, $expr: canonical },
    pipeline: [
      { $set: { _mine: { $filter: { input: { $ifNull: ["$instances", []] }, as: "m", cond: { $eq: ["$$m.host", host] } } } } },
      // The instances are sorted by (host, unit): this host's sit between the hosts before and after it.
      { $set: { _instances: { $concatArrays: [others("$lt"), instances, others("$gt")] } } },
      passingStage,
      { $set: { _next: { name: lit(f.name), url: lit(f.url), endpoints, authorizedRoles: lit([...new Set(f.authorizedRoles)]), status, instances: "$_instances", fallback: lit(fallback) } } },
      ...writeStages(now),
    ],
  };
}

/** Which instances an action takes out, as an expression over `$$x` (apply.ts `without`). */
function dropped(action: RemoveInstance | Fence | Prune): Expr {
  const host = { $eq: ["$$x.host", lit(action.host)] };
  switch (action.kind) {
    case "remove-instance":
      return host;
    case "fence":
      return { $and: [host, { $ne: ["$$x.bootId", lit(action.bootId)] }] };
    case "prune":
      // A host that renewed in the meantime is alive and keeps its claim.
      return { $and: [host, { $eq: ["$$x.unit", lit(action.unit)] }, { $lt: ["$$x.leaseExpiresAt", lit(action.now)] }] };
  }
}

const anyOf = (test: Expr): Expr => ({ $and: [{ $isArray: "$instances" }, { $anyElementTrue: [{ $map: { input: asArray("$instances"), as: "x", in: test } }] }] });

/** Authorized roles each once, in order (deriveDocument's `new Set`). */
const uniqueRoles: Expr = distinct("$authorizedRoles");

/**
 * Taking instances out while at least one stays: one pipeline update, matching only a canonical
 * document that has an instance to drop and one to keep. The service fields stay as the document
 * has them.
 */
export function dropPipeline(action: RemoveInstance | Fence | Prune, now: Date): PipelineUpdate {
  const drop = dropped(action);
  const { status, endpoints } = derived({ $ifNull: ["$fallback.endpoints", []] }, { $ne: ["$fallback", null] });
  return {
    filter: { name: action.service, $expr: { $and: [canonical, anyOf(drop), anyOf({ $not: [drop] })] } },
    pipeline: [
      { $set: { _instances: { $filter: { input: "$instances", as: "x", cond: { $not: [drop] } } } } },
      passingStage,
      { $set: { _next: { name: "$name", url: "$url", endpoints, authorizedRoles: uniqueRoles, status, instances: "$_instances", fallback: "$fallback" } } },
      ...writeStages(now),
    ],
  };
}

/** The last instances leaving: the delete's filter, matching a canonical document whose every instance goes. */
export function dropAllFilter(action: RemoveInstance | Fence | Prune): Record<string, unknown> {
  const drop = dropped(action);
  return { name: action.service, $expr: { $and: [canonical, anyOf(drop), every("$instances", "x", drop)] } };
}

export function hasPipeline(action: { kind: string }): action is PipelineAction {
  return action.kind === "put-instance" || action.kind === "remove-instance" || action.kind === "fence" || action.kind === "prune";
}
