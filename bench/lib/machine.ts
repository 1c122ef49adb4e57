/** The machine and versions a result came from, for the RESULTS.md section header. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, totalmem, release } from "node:os";

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "?";
  }
}

/** `server`: the label of the registry server the scenario ran on (BenchServer.label). */
export function machineLine(server: string): string {
  const model = cpus()[0]?.model.trim() ?? "?";
  const nproc = tryRun("nproc", []);
  const memGiB = (totalmem() / 2 ** 30).toFixed(1);
  const systemd = /systemd (\d+\S*)/.exec(tryRun("systemctl", ["--version"]))?.[1] ?? "?";
  const mongodbDriver = (JSON.parse(readFileSync(new URL("../../node_modules/mongodb/package.json", import.meta.url), "utf8")) as { version: string }).version;
  const load = tryRun("cat", ["/proc/loadavg"]).split(" ").slice(0, 3).join(" ");
  return [
    `Machine: ${nproc} CPUs (${model}), ${memGiB} GiB RAM, Linux ${release()}; load average at start ${load}.`,
    `Versions: Node ${process.version}, systemd ${systemd}, registry server ${server}, mongodb driver ${mongodbDriver}. Run ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}.`,
  ].join("  \n");
}
