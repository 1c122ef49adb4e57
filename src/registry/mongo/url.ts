/** What the store reads from its mongodb:// URL itself (the driver parses the rest). Pure. */

/** Whether the URL names a database (mongodb://host/db). */
export function urlHasDatabase(url: string): boolean {
  const afterScheme = url.replace(/^mongodb(\+srv)?:\/\//, "");
  const hosts = afterScheme.slice(afterScheme.lastIndexOf("@") + 1);
  const path = hosts.split("?")[0]!.split("/")[1];
  return path !== undefined && path !== "";
}

/** The URL's password, as written and percent-decoded, to redact from every message. */
export function urlSecrets(url: string): string[] {
  const secrets: string[] = [];
  // Both readings of an unescaped "@" in the password: up to the first "@" and to the last.
  for (const re of [/^mongodb(?:\+srv)?:\/\/[^:@/]*:([^\s@]*)@/, /^mongodb(?:\+srv)?:\/\/[^:@/]*:(\S*)@/]) {
    const password = re.exec(url)?.[1];
    if (password) secrets.push(password, safeDecode(password));
  }
  return secrets;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
