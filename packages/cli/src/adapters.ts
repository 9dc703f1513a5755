/**
 * The adapters the CLI ships with, loaded lazily. `connect(url)` finds installed adapter packages
 * by scanning `node_modules` from the working directory and from core upwards; a CLI installed
 * globally or run by `npx` has its dependencies beside itself, where that scan may not look (a
 * pnpm store, a global prefix). So the CLI resolves its own adapter dependencies from here and
 * hands them to `connect` as explicit factories — only the one whose scheme is used is imported,
 * so `omnibus caps kafka://…` never loads amqplib. Adapters the CLI does not ship (a third-party
 * `omnibus-adapter-*` in the working directory) are still found by core's scan.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AdapterFactory } from '@omnibus/core';

const BUNDLED = [
  '@omnibus/adapter-rabbitmq',
  '@omnibus/adapter-kafka',
  '@omnibus/adapter-mqtt',
  '@omnibus/adapter-stomp',
] as const;

/** A factory per bundled adapter that is installed; the package is imported on first `create`. */
export function bundledAdapters(): AdapterFactory[] {
  const require = createRequire(import.meta.url);
  const factories: AdapterFactory[] = [];
  for (const packageName of BUNDLED) {
    const manifest = readManifest(require, packageName);
    if (manifest === undefined) continue;
    factories.push({
      name: manifest.adapter,
      schemes: manifest.schemes,
      async create(target, context) {
        const module = (await import(packageName)) as { default?: unknown };
        if (typeof module.default !== 'function')
          throw new Error(`${packageName} does not export an adapter factory as its default export`);
        return (module.default as () => AdapterFactory)().create(target, context);
      },
    });
  }
  return factories;
}

function readManifest(
  require: NodeJS.Require,
  packageName: string,
): { adapter: string; schemes: string[] } | undefined {
  try {
    const json = JSON.parse(readFileSync(require.resolve(`${packageName}/package.json`), 'utf8')) as {
      omnibus?: { adapter?: unknown; schemes?: unknown };
    };
    const { adapter, schemes } = json.omnibus ?? {};
    if (typeof adapter !== 'string' || !Array.isArray(schemes)) return undefined;
    return { adapter, schemes: schemes.filter((s): s is string => typeof s === 'string') };
  } catch {
    // Not installed (a trimmed install): core's own scan and error message take over.
    return undefined;
  }
}
