import { describe, expect, it } from "vitest";
import type { Policy } from "../../src/policy/schema.js";
import { conflictOf } from "../../src/selfreg/conflicts.js";
import type { Registration } from "../../src/selfreg/registration.js";

const file = { name: "web", url: "/web", unit: "web.service", source: "/etc/registrar/policies.d/web.yaml" } as Policy;
const registered = (name: string, url: string, unit: string) => ({ name, unit, service: { name, url } }) as Registration;

describe("conflictOf", () => {
  it("a file policy keeps its name and its url", () => {
    expect(conflictOf({ name: "web", url: "/other" }, "a.service", [file], [])).toBe("name web belongs to the policy file /etc/registrar/policies.d/web.yaml");
    expect(conflictOf({ name: "api", url: "/web" }, "a.service", [file], [])).toBe("url /web is served by web, from the policy file /etc/registrar/policies.d/web.yaml");
  });

  it("a registration keeps its name and url against other units, and is replaced by its own unit", () => {
    const held = [registered("api", "/api", "a.service")];
    expect(conflictOf({ name: "api", url: "/api" }, "b.service", [], held)).toBe("name api is registered by another unit, a.service");
    expect(conflictOf({ name: "api2", url: "/api" }, "a.service", [], held)).toBe("url /api is registered by api (unit a.service)");
    expect(conflictOf({ name: "api", url: "/api-v2" }, "a.service", [], held)).toBeUndefined();
    expect(conflictOf({ name: "other", url: "/other" }, "b.service", [file], held)).toBeUndefined();
  });
});
