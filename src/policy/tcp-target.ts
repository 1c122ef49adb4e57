/** "HOST:PORT" or "[V6]:PORT", a tcp check's target as the policy schema admits it; undefined for anything else. */
export function parseTcpTarget(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]\s]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || !(port >= 1 && port <= 65535)) return undefined;
  return { host: m[1] ?? m[2]!, port };
}
