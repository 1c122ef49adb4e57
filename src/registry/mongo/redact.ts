/**
 * Password redaction for MongoDB connection strings. A registry URL ends up in descriptions,
 * error messages and logs; the password in it must reach none of them.
 */

// scheme://user:password@hosts…  The password runs to the LAST "@" of the token: an unescaped "@"
// or "/" in a password (wrong, but seen in hand-written configs) must not leak its tail.
const userinfoPassword = /(mongodb(?:\+srv)?:\/\/[^\s:@/"'`]*:)[^\s"'`]*@/gi;

/** "mongodb://app:s3cret@db:27017/x" → "mongodb://app:***@db:27017/x". Other URLs pass unchanged. */
export function redactUrl(url: string): string {
  return url.replace(userinfoPassword, "$1***@");
}

/**
 * Redacts every mongodb URL in free text (a driver message may quote one), and every literal
 * occurrence of the given secrets (a password from a credentials file has no URL around it).
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = redactUrl(text);
  for (const secret of secrets) {
    // Very short secrets would shred ordinary words; they are refused at load time anyway.
    if (secret.length >= 4) out = out.split(secret).join("***");
  }
  return out;
}
