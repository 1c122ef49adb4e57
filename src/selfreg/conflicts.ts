import type { Policy } from "../policy/schema.js";
import type { Registration } from "./registration.js";

/**
 * Why a registration of `service` by `unit` cannot be held, or undefined when it can. The
 * gateway finds a service by its exact url, so a name or a url has one owner on a host: a file
 * policy always keeps its own (the operator's word wins over a process's), and a registration
 * keeps its own against other units. The same unit registering the same name again replaces it
 * (a restarted service registers with its new port). Pure.
 */
export function conflictOf(service: { readonly name: string; readonly url: string }, unit: string, files: readonly Policy[], registrations: Iterable<Registration>): string | undefined {
  for (const policy of files) {
    if (policy.name === service.name) return `name ${service.name} belongs to the policy file ${policy.source}`;
    if (policy.url === service.url) return `url ${service.url} is served by ${policy.name}, from the policy file ${policy.source}`;
  }
  for (const other of registrations) {
    if (other.name === service.name && other.unit !== unit) return `name ${service.name} is registered by another unit, ${other.unit}`;
    if (other.name !== service.name && other.service.url === service.url) return `url ${service.url} is registered by ${other.name} (unit ${other.unit})`;
  }
  return undefined;
}
