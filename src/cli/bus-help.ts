/**
 * Turns "cannot reach the bus" into what a person needs: the address tried, why it failed, and
 * what to do — instead of a stack trace (the most common first-run failure on a laptop or in a
 * container without systemd).
 */
export function explainBusError(error: unknown, bus: string): string {
  const err = error as Error & { address?: string; cause?: unknown };
  const address = err.address ?? (bus === "system" ? process.env["DBUS_SYSTEM_BUS_ADDRESS"] ?? "unix:path=/var/run/dbus/system_bus_socket" : bus);
  const cause = err.cause instanceof Error ? err.cause.message : err.message;
  return [
    `registrar: cannot reach systemd over D-Bus.`,
    `  tried:  ${address} (config bus: ${bus})`,
    `  reason: ${cause}`,
    `  what to do: run registrar on a host booted with systemd (it reads unit states from the system bus),`,
    `  or point it at another bus with DBUS_SYSTEM_BUS_ADDRESS or the config key \`bus\`.`,
    `  To see it work without a systemd host, run \`npm run demo\` as root: it boots a private systemd sandbox.`,
  ].join("\n");
}
