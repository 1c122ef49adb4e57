import { describe, expect, it } from "vitest";
import { fileSchemas, mayRepair, mongoSchemas, readDocument } from "../../src/registry/document-schema.js";
import { malformedShapes, storedDocument, storedInstance } from "./malformed-documents.js";

describe("the stored document schema (issue 15, item 1)", () => {
  it("reads a well-formed document as it is", () => {
    const raw = storedDocument("web", "/web", [storedInstance("host-a"), storedInstance("host-b")]);
    const reading = readDocument(raw, mongoSchemas);
    expect(reading.ok).toBe(true);
    if (!reading.ok) return;
    expect(reading.document).toEqual(raw);
  });

  it("reads a legacy document (the gateway's four fields only) with the rest empty", () => {
    const reading = readDocument({ name: "legacy", url: "/legacy", endpoints: [{ type: "http-get", url: "http://old/legacy" }], authorizedRoles: ["r"] }, mongoSchemas);
    expect(reading).toMatchObject({ ok: true, document: { name: "legacy", url: "/legacy", rev: 0, instances: [], fallback: null, status: "failing", updatedAt: new Date(0) } });
  });

  it("drops fields outside DESIGN.md's document (an _id, a stray key)", () => {
    const reading = readDocument({ ...storedDocument("web", "/web", []), _id: "x", note: "hand edit" }, mongoSchemas);
    expect(reading.ok && Object.keys(reading.document).sort()).toEqual(["authorizedRoles", "endpoints", "fallback", "instances", "name", "rev", "status", "updatedAt", "url"]);
  });

  for (const shape of malformedShapes) {
    it(`rejects ${shape.label}, naming ${shape.field}, and keeps the valid parts in the base`, () => {
      const reading = readDocument(shape.build("web", "/web", ["host-a", "host-b"]), mongoSchemas, "web");
      expect(reading.ok).toBe(false);
      if (reading.ok) return;
      expect(reading.issues[0]).toEqual({ field: shape.field, reason: expect.any(String) });
      expect(reading.base).toMatchObject({ name: "web", url: "/web" });
      expect(reading.storedName).toBe("web");
      expect(reading.storedUrl).toBe("/web");
      // host-b's instance is good in every shape but the one with no instances at all.
      if (shape.field !== "instances") expect(reading.base.instances.map((i) => i.host)).toContain("host-b");
      // The base is itself a valid document: a writer can start from it.
      expect(readDocument(reading.base, mongoSchemas).ok).toBe(true);
    });
  }

  it("names a broken instance by its host in what the base leaves out", () => {
    const reading = readDocument(malformedShapes[1]!.build("web", "/web", ["host-a", "host-b"]), mongoSchemas);
    expect(!reading.ok && reading.dropped).toEqual(["instances.0 (host host-a)"]);
    expect(!reading.ok && reading.base.instances.map((i) => i.host)).toEqual(["host-b"]);
  });

  it("rejects a document without a name or url, and its base has the name it was looked up by", () => {
    const { url: _url, ...noUrl } = storedDocument("web", "/web", []);
    const reading = readDocument(noUrl, mongoSchemas, "web");
    expect(reading.ok).toBe(false);
    if (reading.ok) return;
    expect(reading.issues[0]!.field).toBe("url");
    expect(reading.storedUrl).toBeUndefined();
    expect(mayRepair(reading, { ...reading.base, url: "/anything" })).toBe(true);
    expect(readDocument(null, mongoSchemas, "web")).toMatchObject({ ok: false, issues: [{ field: "(document)" }], base: { name: "web" } });
  });

  it("repairs only with the stored name and url", () => {
    const reading = readDocument(malformedShapes[0]!.build("web", "/web", ["host-a"]), mongoSchemas);
    if (reading.ok) throw new Error("should be invalid");
    expect(mayRepair(reading, { ...reading.base })).toBe(true);
    expect(mayRepair(reading, { ...reading.base, url: "/other" })).toBe(false);
    expect(mayRepair(reading, { ...reading.base, name: "other" })).toBe(false);
  });

  it("the file's form: dates as ISO strings, anything else is invalid", () => {
    const good = JSON.parse(JSON.stringify(storedDocument("web", "/web", [storedInstance("host-a")]))) as Record<string, unknown>;
    expect(readDocument(good, fileSchemas)).toMatchObject({ ok: true, document: { updatedAt: new Date("2026-01-02T03:04:05.678Z") } });
    const numberSince = { ...good, instances: [{ ...(good["instances"] as object[])[0], since: 1767323045678 }] };
    expect(readDocument(numberSince, fileSchemas)).toMatchObject({ ok: false, issues: [{ field: "instances.0.since" }] });
    expect(readDocument({ ...good, updatedAt: "yesterday" }, fileSchemas)).toMatchObject({ ok: false, issues: [{ field: "updatedAt" }] });
    // In MongoDB the same ISO string is not a date.
    expect(readDocument(good, mongoSchemas).ok).toBe(false);
  });
});
