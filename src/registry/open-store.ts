import { fileURLToPath } from "node:url";
import type { Logger } from "../log/logger.js";
import { UnsupportedRegistryError } from "./errors.js";
import { FileStore } from "./file/file-store.js";
import type { InvalidDocumentListener } from "./invalid-documents.js";
import type { RegistryStore } from "./store.js";

export interface StoreSettings {
  readonly url: string;
  readonly collection: string;
  readonly credentialsFile?: string | undefined;
  /** This host's name, for the daemon's own store only (see MongoStoreOptions.writer). */
  readonly writer?: string | undefined;
  /** Told about stored documents that do not fit the schema (once per problem) and their repairs. */
  readonly onInvalidDocument?: InvalidDocumentListener | undefined;
}

type StoreFactory = (settings: StoreSettings, logger?: Logger) => Promise<RegistryStore>;

/**
 * Stores by URL scheme (habit 4: the core never switches on the backend). The MongoDB driver is
 * only loaded when a mongodb URL asks for it, so the embedded store starts light.
 */
const factories: ReadonlyMap<string, StoreFactory> = new Map<string, StoreFactory>([
  ["file:", async (settings) => new FileStore(filePath(settings.url), { onInvalidDocument: settings.onInvalidDocument })],
  ["mongodb:", mongo],
  ["mongodb+srv:", mongo],
]);

async function mongo(settings: StoreSettings, logger?: Logger): Promise<RegistryStore> {
  const { MongoStore } = await import("./mongo/mongo-store.js");
  return new MongoStore({
    url: settings.url,
    collection: settings.collection,
    ...(settings.credentialsFile ? { credentialsFile: settings.credentialsFile } : {}),
    ...(settings.writer !== undefined ? { writer: settings.writer } : {}),
    ...(logger ? { logger } : {}),
    ...(settings.onInvalidDocument ? { onInvalidDocument: settings.onInvalidDocument } : {}),
  });
}

export async function openStore(settings: StoreSettings, logger?: Logger): Promise<RegistryStore> {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(settings.url)?.[0]?.toLowerCase();
  const factory = scheme ? factories.get(scheme) : undefined;
  if (!factory) throw new UnsupportedRegistryError(settings.url);
  return factory(settings, logger);
}

/** `file:/var/lib/x.json` (the config's form) and `file:///var/lib/x.json` (a standard file URL). */
function filePath(url: string): string {
  return url.startsWith("file://") ? fileURLToPath(url) : url.slice("file:".length);
}
