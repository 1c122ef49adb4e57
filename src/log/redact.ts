/**
 * The one rule for hiding a password in URL-shaped text, used by the logger (every string it
 * writes) and by the MongoDB store (descriptions, driver messages).
 *
 * scheme://user:password@hosts…  The password runs to the LAST "@" of the token: an unescaped "@"
 * or "/" in a password (wrong, but seen in hand-written configs) must not leak its tail.
 */
const userinfoPassword = /([a-z][a-z0-9+.-]*:\/\/[^\s:@/"'`]*:)[^\s"'`]*@/gi;

/** "mongodb://app:s3cret@db:27017/x" → "mongodb://app:***@db:27017/x", anywhere in `text`. */
export function redactUrlPasswords(text: string): string {
  return text.replace(userinfoPassword, "$1***@");
}
