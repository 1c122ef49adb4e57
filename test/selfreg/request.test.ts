import { describe, expect, it } from "vitest";
import { checkRequest } from "../../src/selfreg/request.js";

const service = { name: "tickets", url: "/tickets", endpoints: [{ type: "http-get", url: "http://${address}:3001/tickets" }], authorizedRoles: ["tickets"] };

describe("checkRequest", () => {
  it("accepts the seed library's service object and fills in the policy schema's defaults", () => {
    const checked = checkRequest({ op: "register", pid: 4242, service: { ...service, health: { http: "http://127.0.0.1:3001/healthz", interval: "1s" } } });
    expect(checked).toMatchObject({ ok: true, request: { op: "register", pid: 4242, service: { name: "tickets", health: { interval: 1000, timeout: 2000, rise: 2, fall: 3 } } } });
  });

  it("names every bad field, as registrar validate words it for a policy file", () => {
    const checked = checkRequest({ op: "register", pid: 1, service: { ...service, url: "tickets", autorizedRoles: [], endpoints: [{ type: "http-get", url: "http://${adress}:1/" }] } });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.errors).toEqual(
      expect.arrayContaining([
        { field: "pid", message: expect.stringMatching(/^pid: must be a process id/) },
        { field: "service.url", message: "service.url: must be a path starting with /" },
        { field: "service.autorizedRoles", message: 'unknown key "autorizedRoles" in service (did you mean "authorizedRoles"?)' },
        { field: "service.endpoints[0].url", message: expect.stringContaining("unknown variable ${adress}") },
      ]),
    );
    expect(checked.errors).toHaveLength(4);
  });

  it("refuses a unit in the request: systemd says which unit the caller runs in", () => {
    const checked = checkRequest({ op: "register", pid: 4242, service: { ...service, unit: "other.service" } });
    expect(checked).toMatchObject({ ok: false, errors: [{ field: "service.unit", message: expect.stringContaining('unknown key "unit"') }] });
  });

  it("refuses an unknown op and a deregister without a name", () => {
    expect(checkRequest({ op: "delete", pid: 5 })).toMatchObject({ ok: false, errors: [{ field: "op", message: 'op: must be "register" or "deregister"' }] });
    expect(checkRequest({ op: "deregister", pid: 5 })).toMatchObject({ ok: false, errors: [{ field: "name", message: 'missing required key "name"' }] });
    expect(checkRequest({ op: "deregister", pid: 5, name: "tickets" })).toEqual({ ok: true, request: { op: "deregister", pid: 5, name: "tickets" } });
  });
});
