/**
 * Password redaction for MongoDB connection strings. A registry URL ends up in descriptions,
 * error messages and logs; the password in it must reach none of them.
 */
import { redactUrlPasswords } from "../../log/redact.js";

/** "mongodb://app:s3cret@db:27017/x" → "mongodb://app:***@db:27017/x" (the logger's rule, src/log/redact.ts). */
export const redactUrl = redactUrlPasswords;

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
