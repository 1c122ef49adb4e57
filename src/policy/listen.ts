/** Parses the config's `status` ("127.0.0.1:9475", "[::1]:9475", "off"); null when off. */
export function parseListen(value: string): { host: string; port: number } | null {
  if (value === "off" || value === "") return null;
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  if (!match || Number(match[3]) > 65535) throw new TypeError(`status: "${value}" is not HOST:PORT (or "off")`);
  return { host: match[1] ?? match[2]!, port: Number(match[3]) };
}
