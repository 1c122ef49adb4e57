import { describe, expect, it } from "vitest";
import { allowedHosts } from "../../src/daemon/status-server.js";

describe("the names the status listener answers to (issue 15, item 2)", () => {
  const machine = { addresses: ["127.0.0.1", "10.0.0.5", "fe80::1"], hostname: "Web-01" };
  it("loopback and the listen address", () => {
    expect([...allowedHosts("127.0.0.1", machine)].sort()).toEqual(["127.0.0.1", "[::1]", "localhost", "localhost."]);
    expect(allowedHosts("::1", machine).has("[::1]")).toBe(true);
    expect(allowedHosts("10.0.0.5", machine).has("10.0.0.5")).toBe(true);
    expect(allowedHosts("10.0.0.5", machine).has("web-01")).toBe(false);
  });
  it("a wildcard listen address answers to this machine's addresses and name", () => {
    const names = allowedHosts("0.0.0.0", machine);
    for (const name of ["10.0.0.5", "[fe80::1]", "web-01", "localhost"]) expect(names.has(name)).toBe(true);
    expect(names.has("evil.example")).toBe(false);
  });
});
