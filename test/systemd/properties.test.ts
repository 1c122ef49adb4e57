import { describe, expect, it } from "vitest";
import dbus from "dbus-next";
import { applyPatch, bytesToHex, emptyState, parseProperties, sameState, toNumber, unwrapVariant, SERVICE_INTERFACE, UNIT_INTERFACE } from "../../src/systemd/properties.js";
import { busLabelEscape, isValidUnitName, unitObjectPath } from "../../src/systemd/unit-path.js";
import { resolveBusAddress, usableAddress } from "../../src/systemd/connection.js";
import { InvalidBusAddressError } from "../../src/systemd/errors.js";

const v = (signature: string, value: unknown) => new dbus.Variant(signature, value);

describe("property parsing", () => {
  it("reads the Unit interface, InvocationID bytes as lower-case hex", () => {
    const id = Buffer.from("0a1b2c3d4e5f60718293a4b5c6d7e8f9", "hex");
    const patch = parseProperties(UNIT_INTERFACE, {
      LoadState: v("s", "loaded"),
      ActiveState: v("s", "active"),
      SubState: v("s", "running"),
      InvocationID: v("ay", id),
      StateChangeTimestamp: v("t", 1795655820609132n),
      Description: v("s", "ignored"),
    });
    expect(patch).toEqual({ loadState: "loaded", activeState: "active", subState: "running", invocationId: "0a1b2c3d4e5f60718293a4b5c6d7e8f9" });
  });

  it("reads the Service interface, numbers from u and from BigInt", () => {
    expect(parseProperties(SERVICE_INTERFACE, { Result: v("s", "signal"), NRestarts: v("u", 3), MainPID: v("u", 0) })).toEqual({ result: "signal", nRestarts: 3, mainPid: 0 });
    expect(parseProperties(SERVICE_INTERFACE, { NRestarts: v("t", 7n), MainPID: 42n })).toEqual({ nRestarts: 7, mainPid: 42 });
  });

  it("leaves out what is absent or mistyped, so a partial PropertiesChanged merges", () => {
    expect(parseProperties(UNIT_INTERFACE, { ActiveState: v("s", "deactivating") })).toEqual({ activeState: "deactivating" });
    expect(parseProperties(UNIT_INTERFACE, { ActiveState: v("u", 3) })).toEqual({});
    expect(parseProperties("org.freedesktop.systemd1.Socket", { Result: v("s", "x") })).toEqual({});
    const merged = applyPatch({ ...emptyState("a.service", "loaded"), invocationId: "ab" }, { activeState: "active" });
    expect(merged).toMatchObject({ loadState: "loaded", activeState: "active", invocationId: "ab" });
  });

  it("an empty InvocationID is the empty string", () => {
    expect(parseProperties(UNIT_INTERFACE, { InvocationID: v("ay", Buffer.alloc(0)) })).toEqual({ invocationId: "" });
  });

  it("converts 64-bit values and their sentinels", () => {
    expect(toNumber(123n)).toBe(123);
    expect(toNumber(2n ** 64n - 1n)).toBe(Number.MAX_SAFE_INTEGER); // UINT64_MAX: systemd's "infinity"
    expect(toNumber(-5n)).toBe(-5);
    expect(toNumber(9)).toBe(9);
    expect(toNumber("17")).toBe(17);
    expect(toNumber(undefined)).toBe(0);
    expect(bytesToHex([0, 255, 16])).toBe("00ff10");
    expect(bytesToHex(new Uint8Array([1, 2]))).toBe("0102");
    expect(bytesToHex("nope")).toBe("");
    expect(unwrapVariant(v("s", "x"))).toBe("x");
    expect(unwrapVariant("y")).toBe("y");
  });

  it("sameState compares every field", () => {
    const a = emptyState("a.service");
    expect(sameState(a, { ...a })).toBe(true);
    expect(sameState(a, { ...a, nRestarts: 1 })).toBe(false);
    expect(sameState(undefined, a)).toBe(false);
  });
});

describe("unit object paths (bus_label_escape)", () => {
  it.each([
    ["tickets.service", "/org/freedesktop/systemd1/unit/tickets_2eservice"],
    ["dbus.service", "/org/freedesktop/systemd1/unit/dbus_2eservice"],
    ["getty@tty1.service", "/org/freedesktop/systemd1/unit/getty_40tty1_2eservice"],
    ["systemd-journald.service", "/org/freedesktop/systemd1/unit/systemd_2djournald_2eservice"],
    ["1password.service", "/org/freedesktop/systemd1/unit/_31password_2eservice"],
    ["a1.service", "/org/freedesktop/systemd1/unit/a1_2eservice"],
  ])("%s → %s", (unit, path) => {
    expect(unitObjectPath(unit)).toBe(path);
  });
  it("escapes the empty label and non-ASCII bytes", () => {
    expect(busLabelEscape("")).toBe("_");
    expect(busLabelEscape("é")).toBe("_c3_a9");
  });
  it("validates unit names", () => {
    expect(isValidUnitName("tickets.service")).toBe(true);
    expect(isValidUnitName("getty@tty1.service")).toBe(true);
    expect(isValidUnitName("tickets")).toBe(false);
    expect(isValidUnitName("a b.service")).toBe(false);
    expect(isValidUnitName("x'.service")).toBe(false);
    expect(isValidUnitName("getty@.service")).toBe(false);
  });
});

describe("bus addresses", () => {
  it("system honours DBUS_SYSTEM_BUS_ADDRESS", () => {
    expect(resolveBusAddress("system", {})).toBe("unix:path=/var/run/dbus/system_bus_socket");
    expect(resolveBusAddress("system", { DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/x" })).toBe("unix:path=/x");
    expect(resolveBusAddress("unix:path=/y", {})).toBe("unix:path=/y");
    expect(resolveBusAddress("session", { DBUS_SESSION_BUS_ADDRESS: "unix:path=/s" })).toBe("unix:path=/s");
    expect(() => resolveBusAddress("session", {})).toThrow(InvalidBusAddressError);
  });
  it("picks the first entry dbus-next can use without usocket", () => {
    expect(usableAddress("unix:path=/run/dbus/system_bus_socket")).toEqual({ address: "unix:path=/run/dbus/system_bus_socket", family: "unix" });
    expect(usableAddress("unix:abstract=/tmp/dbus-x,guid=1;unix:path=/p%2dq")).toEqual({ address: "unix:path=/p-q", family: "unix" });
    expect(usableAddress("tcp:host=127.0.0.1,port=5555")).toEqual({ address: "tcp:host=127.0.0.1,port=5555", family: "tcp" });
    expect(() => usableAddress("unix:abstract=/tmp/dbus-x")).toThrow(/usocket/);
    expect(() => usableAddress("launchd:env=X")).toThrow(InvalidBusAddressError);
    expect(() => usableAddress("")).toThrow(InvalidBusAddressError);
  });
});
