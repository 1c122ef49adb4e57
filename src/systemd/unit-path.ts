/**
 * systemd's object path of a unit, computed without asking systemd: asking (GetUnit/LoadUnit)
 * would load the unit, and PropertiesChanged match rules must exist before the unit does.
 */

const UNIT_PREFIX = "/org/freedesktop/systemd1/unit/";

/**
 * systemd's bus_label_escape(): every byte that is not [A-Za-z0-9] becomes "_" plus two
 * lower-case hex digits, and so does a leading digit; the empty string becomes "_".
 */
export function busLabelEscape(label: string): string {
  if (label === "") return "_";
  let out = "";
  const bytes = Buffer.from(label, "utf8");
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const alpha = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
    const digit = b >= 0x30 && b <= 0x39;
    out += alpha || (digit && i > 0) ? String.fromCharCode(b) : `_${b.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** "/org/freedesktop/systemd1/unit/tickets_2eservice" for "tickets.service". */
export function unitObjectPath(unit: string): string {
  return UNIT_PREFIX + busLabelEscape(unit);
}

// Unit names as systemd accepts them (unit_name_is_valid, simplified): a name, an optional
// "@instance", and a known type suffix; at most 255 characters. Templates ("x@.service") have no
// state to watch, and ListUnitsByNames fails the whole call on one, so they are refused.
const UNIT_NAME = /^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]+)?\.(service|socket|target|device|mount|automount|swap|timer|path|slice|scope)$/;

export function isValidUnitName(unit: string): boolean {
  return unit.length <= 255 && UNIT_NAME.test(unit);
}
