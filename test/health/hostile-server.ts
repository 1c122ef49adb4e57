import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A real HTTP server on 127.0.0.1 with the endpoints health checks meet in the wild, good and bad.
 * `hits` counts requests per path so tests can prove what was (not) contacted.
 */
export interface HostileServer {
  readonly base: string;
  readonly hits: Map<string, number>;
  /** What /flip answers: "ok" (200), "error" (500) or "hang" (never). */
  flip: "ok" | "error" | "hang";
  close(): Promise<void>;
}

export async function startHostileServer(redirectTarget = "http://127.0.0.1:9/elsewhere"): Promise<HostileServer> {
  const hits = new Map<string, number>();
  const state = { flip: "ok" as "ok" | "error" | "hang" };
  const server: Server = createServer((request, response) => {
    const path = request.url ?? "/";
    hits.set(path, (hits.get(path) ?? 0) + 1);
    switch (path) {
      case "/ok":
        response.end("ok");
        return;
      case "/no-content":
        response.writeHead(204).end();
        return;
      case "/500-json":
        response.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: "database down" }));
        return;
      case "/hang":
        return; // never answers
      case "/stall-body":
        response.writeHead(200, { "content-type": "text/plain", "content-length": "1000" });
        response.write("partial");
        return; // headers sent, body never finishes
      case "/big": {
        // 50 MB, written as fast as the client reads; the probe must stop early.
        response.writeHead(200, { "content-type": "application/octet-stream" });
        const chunk = Buffer.alloc(64 * 1024, 120);
        let sent = 0;
        const pump = () => {
          while (sent < 50 * 1024 * 1024) {
            sent += chunk.length;
            if (!response.write(chunk)) return void response.once("drain", pump);
          }
          response.end();
        };
        response.on("close", () => (sent = Number.POSITIVE_INFINITY));
        pump();
        return;
      }
      case "/redirect-loop":
        response.writeHead(302, { location: "/redirect-loop" }).end();
        return;
      case "/redirect-off-host":
        response.writeHead(302, { location: redirectTarget }).end();
        return;
      case "/reset":
        request.socket.resetAndDestroy();
        return;
      case "/flip":
        if (state.flip === "ok") response.end("ok");
        else if (state.flip === "error") response.writeHead(500).end("failing");
        return;
      default:
        response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    get flip() {
      return state.flip;
    },
    set flip(value) {
      state.flip = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
