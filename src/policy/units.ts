/**
 * A policy's `unit` (issue 13, item 1): one unit, a list of units, or a glob over a template's
 * instance names (`tickets@*.service`). Each running unit it names is one instance in the
 * registry, identified by (host, unit); `${instance}` (the `%i` part) is filled in per unit.
 */

const SUFFIX = "(service|socket|target|mount|timer|path|scope|slice)";
// "-" goes last in each class, where it is not a range.
const NAME_CHARS = "A-Za-z0-9:_.\\\\";

/** A plain unit name, e.g. tickets.service or tickets@3001.service. */
export const UNIT_NAME = new RegExp(`^[${NAME_CHARS}@-]+\\.${SUFFIX}$`);
/** A glob over a template's instance names: the wildcards (* and ?) only after the "@". */
export const UNIT_PATTERN = new RegExp(`^[${NAME_CHARS}-]+@[${NAME_CHARS}@*?-]*[*?][${NAME_CHARS}@*?-]*\\.${SUFFIX}$`);

/** The variable a template's instance name fills in endpoints and health targets. */
export const INSTANCE_VARIABLE = "instance";

/** The entries of a policy's `unit`, as written. */
export function unitEntries(unit: string | readonly string[]): readonly string[] {
  return typeof unit === "string" ? [unit] : unit;
}

/** How a policy's `unit` reads in a log line or a table: the entries, comma-separated. */
export function unitLabel(unit: string | readonly string[]): string {
  return unitEntries(unit).join(", ");
}

export function isUnitPattern(entry: string): boolean {
  return /[*?]/.test(entry);
}

/**
 * Whether a policy may register several instances of one host: a list or a glob. Its instances
 * are then keyed by unit in events, /status and the prober; a single unit keeps the service's name.
 */
export function hasSeveralUnits(unit: string | readonly string[]): boolean {
  return typeof unit !== "string" || isUnitPattern(unit);
}

/** Whether `${instance}` has a meaning here: some entry is a template instance or glob. */
export function namesTemplate(unit: string | readonly string[]): boolean {
  return unitEntries(unit).some((entry) => entry.includes("@"));
}

/** The `%i` part of a template instance's name ("3001" for tickets@3001.service); undefined for other units. */
export function instanceName(unit: string): string | undefined {
  const at = unit.indexOf("@");
  const dot = unit.lastIndexOf(".");
  if (at < 0 || dot <= at + 1) return undefined;
  return unit.slice(at + 1, dot);
}

const patternCache = new Map<string, RegExp>();

/** Whether `unit` is one of the units `pattern` names (a glob, or a plain name matching itself). */
export function unitMatches(pattern: string, unit: string): boolean {
  if (!isUnitPattern(pattern)) return pattern === unit;
  let re = patternCache.get(pattern);
  if (!re) {
    const body = [...pattern].map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("");
    re = new RegExp(`^${body}$`);
    if (patternCache.size > 1000) patternCache.clear();
    patternCache.set(pattern, re);
  }
  // The template itself (tickets@.service) is not one of its instances.
  return re.test(unit) && instanceName(unit) !== undefined;
}

/** A policy's plain names (always watched) and globs (matched against the units systemd has loaded). */
export function splitUnits(unit: string | readonly string[]): { names: string[]; patterns: string[] } {
  const names: string[] = [];
  const patterns: string[] = [];
  for (const entry of unitEntries(unit)) (isUnitPattern(entry) ? patterns : names).push(entry);
  return { names, patterns };
}

/**
 * The units that are this policy's instances on this host now: its plain names, then every known
 * unit a glob matches, each once, sorted (the order instances are stored in).
 */
export function instanceUnits(unit: string | readonly string[], known: Iterable<string>): string[] {
  const { names, patterns } = splitUnits(unit);
  const units = new Set(names);
  if (patterns.length > 0) for (const candidate of known) if (patterns.some((pattern) => unitMatches(pattern, candidate))) units.add(candidate);
  return [...units].sort(compareText);
}

/**
 * The key of a policy's instance in the prober and /status: the service's name for a single
 * unit (as before templates), `service/unit` when a policy may have several.
 */
export function instanceKey(service: string, unit: string | readonly string[], instanceUnit: string): string {
  return hasSeveralUnits(unit) ? `${service}/${instanceUnit}` : service;
}

/** The unit of instance `name` of the template a glob names: tickets@*.service and 3002 → tickets@3002.service. */
export function poolUnit(glob: string, name: string): string {
  return `${glob.slice(0, glob.indexOf("@") + 1)}${name}${glob.slice(glob.lastIndexOf("."))}`;
}

/** Code-unit order, the order instances are sorted in (the server's string order too). */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
