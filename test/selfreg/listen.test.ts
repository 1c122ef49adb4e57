import { captureLogger } from "../log/capture.js";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigFile, type Config } from "../../src/policy/schema.js";
import { forgetListenFds, listenFd } from "../../src/selfreg/listen-fds.js";
import { createSelfRegistration } from "../../src/selfreg/self-registration.js";
import { useTempDirs } from "../policy/helpers.js";

const tempDir = useTempDirs();

describe("listenFd (sd_listen_fds)", () => {
  it("takes the descriptor named api, or the only one, and only when LISTEN_PID is this process", () => {
    expect(listenFd({ LISTEN_PID: "42", LISTEN_FDS: "1" }, 42)).toBe(3);
    expect(listenFd({ LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "other:api" }, 42)).toBe(4);
    expect(listenFd({ LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "a:b" }, 42)).toBeUndefined();
    expect(listenFd({ LISTEN_PID: "41", LISTEN_FDS: "1" }, 42)).toBeUndefined();
    expect(listenFd({ LISTEN_PID: "42", LISTEN_FDS: "0" }, 42)).toBeUndefined();
    const env: NodeJS.ProcessEnv = { LISTEN_PID: "42", LISTEN_FDS: "1", LISTEN_FDNAMES: "api", PATH: "/bin" };
    forgetListenFds(env);
    expect(env).toEqual({ PATH: "/bin" });
  });
});

describe("the daemon's API socket", () => {
  async function listen(api: string) {
    const dir = await tempDir();
    const { lines, logger } = captureLogger("info", "h");
    const config: Config = { ...ConfigFile.parse({ policies: dir, runtime: join(dir, "run"), api }), host: "h", address: "127.0.0.1", source: undefined };
    const selfreg = createSelfRegistration({ config, logger, env: {}, changed: async () => {}, resolver: { unitOf: async () => ({ unit: "a.service", activeState: "active" }) } });
    return { dir, selfreg, events: (name: string) => lines.filter((line) => line["event"] === name) };
  }

  it("is off when its directory does not exist: the daemon never creates /run/registrar", async () => {
    const t = await listen("/nonexistent-registrar-test/api.sock");
    await t.selfreg.listen();
    expect(t.events("api.disabled")).toMatchObject([{ socket: "/nonexistent-registrar-test/api.sock", reason: "its directory does not exist" }]);
    await t.selfreg.close();
  });

  it("that cannot be bound leaves the daemon running without it, and says why", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "api.sock"), "not a socket");
    const t = await listen(join(dir, "api.sock"));
    await t.selfreg.listen();
    expect(t.events("api.unavailable")).toMatchObject([{ reason: expect.stringMatching(/api\.sock exists and is not a socket; set `api:` in the config to another path, or "off"$/) }]);
    expect(t.events("api.listening")).toEqual([]);
  });
});
