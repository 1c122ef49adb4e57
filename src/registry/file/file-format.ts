import type { Instance, RegistryDocument } from "../document.js";

/**
 * The on-disk form of the embedded registry: the same documents as the MongoDB collection, dates
 * as ISO strings. Versioned so a later format can be told apart instead of misread.
 */
export interface RegistryFile {
  format: "registrar-registry/1";
  services: RegistryDocument[];
}

export function serialize(documents: Iterable<RegistryDocument>): string {
  const services = [...documents].sort((a, b) => a.name.localeCompare(b.name));
  return `${JSON.stringify({ format: "registrar-registry/1", services } satisfies RegistryFile, null, 2)}\n`;
}

export class RegistryFileFormatError extends Error {
  override readonly name = "RegistryFileFormatError";
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}

export function deserialize(path: string, text: string): Map<string, RegistryDocument> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new RegistryFileFormatError(path, "not valid JSON", { cause });
  }
  const file = parsed as Partial<RegistryFile>;
  if (file?.format !== "registrar-registry/1" || !Array.isArray(file.services)) {
    throw new RegistryFileFormatError(path, 'expected { "format": "registrar-registry/1", "services": [...] }');
  }
  const documents = new Map<string, RegistryDocument>();
  for (const raw of file.services) {
    const doc = reviveDocument(raw);
    documents.set(doc.name, doc);
  }
  return documents;
}

function reviveDocument(raw: RegistryDocument): RegistryDocument {
  return {
    ...raw,
    updatedAt: new Date(raw.updatedAt),
    instances: raw.instances.map(
      (instance): Instance => ({
        ...instance,
        since: new Date(instance.since),
        leaseExpiresAt: new Date(instance.leaseExpiresAt),
      }),
    ),
  };
}
