/**
 * Which adapter serves a scheme. Core lists no adapters: a factory is passed explicitly
 * (`options.adapters`), registered (`registerAdapter`), or found among the installed packages — any
 * package named `@omnibus/adapter-*`, `omnibus-adapter-*` or `@scope/omnibus-adapter-*` whose
 * package.json declares what it serves:
 *
 * ```json
 * "omnibus": { "adapter": "rabbitmq", "schemes": ["amqp", "amqps"] }
 * ```
 *
 * and whose default export makes the factory. So a new broker's adapter works with no edit to core.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AdapterFactory } from './adapter.js';
import { ConfigError } from './errors.js';

/** What an installed adapter package declares in its package.json `omnibus` field. */
export interface AdapterManifest {
  /** The package to import. */
  readonly packageName: string;
  /** The adapter's name (`bus.adapter`, and `{ adapter }` in object configs). */
  readonly adapter: string;
  /** The URL schemes it serves; the first is the default for object configs. */
  readonly schemes: readonly string[];
  /** True when its URLs need no host (like `memory://`). */
  readonly hostOptional: boolean;
}

const registry = new Map<string, AdapterFactory>();
const builtins = new Map<string, AdapterFactory>();

/** Registers an adapter for its schemes, for every later `connect` in this process. */
export function registerAdapter(factory: AdapterFactory): void {
  for (const scheme of factory.schemes) registry.set(scheme, factory);
  registry.set(`adapter:${factory.name}`, factory);
}

/** Core's own adapters (the in-memory broker): known without a package. */
export function registerBuiltin(factory: AdapterFactory): void {
  builtins.set(factory.name, factory);
}

/** What serves each scheme: scheme → adapter name and whether its URLs need a host. */
export interface SchemeInfo {
  readonly adapter: string;
  readonly hostOptional: boolean;
  /** Set for an installed package not loaded yet. */
  readonly packageName?: string;
}

/** Every scheme known now: explicit factories first, then registered, built-in, then installed packages. */
export function knownSchemes(explicit: readonly AdapterFactory[] = []): Map<string, SchemeInfo> {
  const known = new Map<string, SchemeInfo>();
  const add = (scheme: string, info: SchemeInfo) => {
    if (!known.has(scheme)) known.set(scheme, info);
  };
  const fromFactory = (f: AdapterFactory): SchemeInfo => ({
    adapter: f.name,
    hostOptional: f.hostOptional === true,
  });
  for (const factory of explicit) for (const scheme of factory.schemes) add(scheme, fromFactory(factory));
  for (const [key, factory] of registry) if (!key.startsWith('adapter:')) add(key, fromFactory(factory));
  for (const factory of builtins.values())
    for (const scheme of factory.schemes) add(scheme, fromFactory(factory));
  for (const manifest of installedAdapters()) {
    for (const scheme of manifest.schemes) {
      add(scheme, {
        adapter: manifest.adapter,
        hostOptional: manifest.hostOptional,
        packageName: manifest.packageName,
      });
    }
  }
  return known;
}

/** The default scheme of an adapter, for object configs without a URL. */
export function defaultScheme(adapter: string, known: ReadonlyMap<string, SchemeInfo>): string | undefined {
  for (const [scheme, info] of known) if (info.adapter === adapter) return scheme;
  return undefined;
}

/** Finds the adapter for a target: explicit list, registered, built-in, then the installed package. */
export async function loadAdapter(
  target: { readonly adapter: string; readonly url: { readonly scheme: string } },
  explicit: readonly AdapterFactory[],
): Promise<AdapterFactory> {
  const scheme = target.url.scheme;
  const found =
    explicit.find((f) => f.schemes.includes(scheme)) ??
    explicit.find((f) => f.name === target.adapter) ??
    registry.get(scheme) ??
    registry.get(`adapter:${target.adapter}`) ??
    builtins.get(target.adapter);
  if (found !== undefined) return found;
  const manifest =
    installedAdapters().find((m) => m.schemes.includes(scheme)) ??
    installedAdapters().find((m) => m.adapter === target.adapter);
  if (manifest === undefined) {
    throw new ConfigError(
      `no installed adapter serves ${scheme}:// (adapter "${target.adapter}") — install the adapter package for that broker (e.g. @omnibus/adapter-${target.adapter}, or any package whose package.json declares "omnibus": { "schemes": ["${scheme}"] }), or pass it in options.adapters`,
    );
  }
  const module = await importPackage(manifest.packageName);
  const make = (module as { default?: unknown } | undefined)?.default;
  if (typeof make !== 'function') {
    throw new ConfigError(`${manifest.packageName} does not export an adapter factory as its default export`);
  }
  const factory = (make as () => AdapterFactory)();
  registerAdapter(factory);
  return factory;
}

let installed: readonly AdapterManifest[] | undefined;

/**
 * Adapter packages installed where the application or core can import them from: every
 * `node_modules` folder from the working directory and from core upwards. Read once per process.
 */
export function installedAdapters(): readonly AdapterManifest[] {
  installed ??= scan();
  return installed;
}

/** Forgets what was found, so the next look scans again (after installing a package at run time). */
export function rescanAdapters(): void {
  installed = undefined;
}

function scan(): AdapterManifest[] {
  const found = new Map<string, AdapterManifest>();
  const here = dirname(fileURLToPath(import.meta.url));
  for (const folder of new Set([...nodeModulesUp(process.cwd()), ...nodeModulesUp(here)])) {
    for (const packageName of candidates(folder)) {
      if (found.has(packageName)) continue;
      const manifest = readManifest(join(folder, packageName, 'package.json'), packageName);
      if (manifest !== undefined) found.set(packageName, manifest);
    }
  }
  return [...found.values()].sort((a, b) => a.packageName.localeCompare(b.packageName));
}

function nodeModulesUp(start: string): string[] {
  const out: string[] = [];
  for (let dir = start; ; dir = dirname(dir)) {
    out.push(join(dir, 'node_modules'));
    if (dirname(dir) === dir) return out;
  }
}

/** Package names in a node_modules folder that follow an adapter naming convention. */
function candidates(folder: string): string[] {
  const names: string[] = [];
  for (const entry of list(folder)) {
    if (entry.startsWith('omnibus-adapter-')) names.push(entry);
    else if (entry.startsWith('@')) {
      for (const inner of list(join(folder, entry))) {
        if ((entry === '@omnibus' && inner.startsWith('adapter-')) || inner.startsWith('omnibus-adapter-')) {
          names.push(`${entry}/${inner}`);
        }
      }
    }
  }
  return names;
}

function list(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}

function readManifest(path: string, packageName: string): AdapterManifest | undefined {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  const field = (json as { omnibus?: unknown } | null)?.omnibus as
    | { adapter?: unknown; schemes?: unknown; hostOptional?: unknown }
    | undefined;
  if (typeof field !== 'object' || field === null) return undefined;
  const schemes = Array.isArray(field.schemes)
    ? field.schemes.filter((s): s is string => typeof s === 'string' && /^[a-z][a-z0-9+.-]*$/.test(s))
    : [];
  if (typeof field.adapter !== 'string' || schemes.length === 0) return undefined;
  return { packageName, adapter: field.adapter, schemes, hostOptional: field.hostOptional === true };
}

async function importPackage(packageName: string): Promise<unknown> {
  try {
    return await import(packageName);
  } catch (error) {
    if (!isModuleNotFound(error)) throw error;
  }
  // From a workspace or a global install, core cannot see the application's dependencies:
  // resolve from the application's working directory as well.
  try {
    const resolved = createRequire(join(process.cwd(), 'noop.js')).resolve(packageName);
    return await import(pathToFileURL(resolved).href);
  } catch (error) {
    if (isModuleNotFound(error)) return undefined;
    throw error;
  }
}

function isModuleNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED'
  );
}
