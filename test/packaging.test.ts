/**
 * The packages as a user gets them: `pnpm pack` every public package, `npm install` the tarballs
 * into an empty folder, then type-check (strict, nodenext and bundler resolution) and run a program
 * that imports each one, with and without `--conditions=source`. Builds first when dist/ is
 * missing or older than src/ (CI has built already). Needs npm and the registry (or npm's cache).
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { twentyLines } from './readme-snippet.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');

interface Manifest {
  readonly name: string;
  readonly private?: boolean;
  readonly exports?: Record<string, unknown>;
  readonly engines?: Record<string, string>;
  readonly dependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { readonly optional?: boolean }>;
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/** Every public workspace package: its folder and manifest. */
const packages = readdirSync(join(root, 'packages'))
  .map((dir) => ({
    dir: join(root, 'packages', dir),
    manifest: readJson<Manifest>(join(root, 'packages', dir, 'package.json')),
  }))
  .filter((p) => p.manifest.private !== true);
const names = packages.map((p) => p.manifest.name);

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f));
}

function newestMtime(dir: string): number {
  return Math.max(...files(dir).map((f) => statSync(f).mtimeMs));
}

let work = '';
let app = '';
const installed = (name: string) => join(app, 'node_modules', name);

/** The program: each package imported and used, and the README example on memory://. */
const MAIN = `import * as kafka from '@omnibus/adapter-kafka';
import * as mqtt from '@omnibus/adapter-mqtt';
import * as rabbitmq from '@omnibus/adapter-rabbitmq';
import * as stomp from '@omnibus/adapter-stomp';
import { instrumentOmnibus } from '@omnibus/opentelemetry';
import { connect, isOmnibusError, type LogPosition, UnsupportedCapabilityError } from '@omnibus/core';
import { z } from 'zod';

const Order = z.object({ id: z.string(), region: z.string().default('eu'), total: z.string().transform(Number) });
const instrumentation = instrumentOmnibus();
const bus = await connect('memory://', { adapters: [kafka.default(), mqtt.default(), rabbitmq.default(), stomp.default()] });
const orders = bus.queue('orders', { schema: Order });
const got = new Promise<{ id: string; region: string; total: number }>((resolve) => {
  void orders.consume((message) => resolve(message.payload));
});
await orders.send({ id: 'A-1', total: '42' });
const order = await got;
const audit = bus.log<string>('audit');
await audit.append('paid');
const at = new Promise<LogPosition>((resolve) => {
  void audit.read((message) => resolve(message.position));
});
const position: LogPosition = await at;
let code = '';
try {
  bus.queue('');
} catch (error) {
  if (isOmnibusError(error) && error.code === 'OMNIBUS_VALIDATION') code = \`\${error.code}: \${Array.isArray(error.issues)}\`;
}
await bus.close();
const unsupported = new UnsupportedCapabilityError('x', []) instanceof Error;
instrumentation.disable();
console.log(JSON.stringify({ order, position, code, unsupported, traced: typeof instrumentation.disable === 'function' }));
`;

const README_STUBS = `// The README's "Twenty lines", with its two application functions stubbed.
const charge = async (_order: { id: string; region: string; total: number }): Promise<void> => undefined;
const notify = (_subject: string | undefined, _payload: unknown): void => undefined;
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    skipLibCheck: false,
    outDir: 'out',
  },
  files: ['main.ts', 'readme.ts'],
};

async function node(args: string[]): Promise<string> {
  const { BROKER_URL: _, ...env } = process.env;
  const { stdout } = await exec(process.execPath, args, { cwd: app, env, timeout: 30_000 });
  return stdout;
}

describe('packed and installed with npm into an empty folder', () => {
  beforeAll(async () => {
    const stale = packages.filter(
      (p) =>
        !existsSync(join(p.dir, 'dist/index.js')) ||
        newestMtime(join(p.dir, 'src')) > statSync(join(p.dir, 'dist/index.js')).mtimeMs,
    );
    if (stale.length > 0) await exec('pnpm', ['build'], { cwd: root, timeout: 240_000 });
    work = mkdtempSync(join(tmpdir(), 'omnibus-packaging-'));
    app = join(work, 'app');
    const tarballs = join(work, 'tarballs');
    for (const p of packages) {
      await exec('pnpm', ['pack', '--pack-destination', tarballs], { cwd: p.dir, timeout: 60_000 });
    }
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'omnibus-packaging-check', private: true, type: 'module' }),
    );
    const tgz = readdirSync(tarballs).map((f) => join(tarballs, f));
    expect(tgz).toHaveLength(packages.length);
    await exec(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...tgz,
        'zod@^4',
        '@types/node@^20',
      ],
      { cwd: app, timeout: 120_000 },
    );
    writeFileSync(join(app, 'main.ts'), MAIN);
    writeFileSync(join(app, 'readme.ts'), README_STUBS + twentyLines());
  }, 300_000);

  afterAll(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('installs one copy of core, shared by every package, and no vitest', () => {
    expect(readdirSync(join(app, 'node_modules/@omnibus')).sort()).toEqual(
      names.map((n) => n.replace('@omnibus/', '')).sort(),
    );
    for (const name of names)
      expect(existsSync(join(installed(name), 'node_modules/@omnibus/core'))).toBe(false);
    expect(existsSync(installed('vitest'))).toBe(false);
  });

  it('manifests: core as a peer, engines, no "source" condition, vitest an optional peer of contract', () => {
    for (const name of names) {
      const manifest = readJson<Manifest>(join(installed(name), 'package.json'));
      expect(manifest.engines?.node, name).toMatch(/^>=\d/);
      expect(JSON.stringify(manifest.exports), name).not.toContain('"source"');
      if (name === '@omnibus/core') continue;
      expect(manifest.dependencies?.['@omnibus/core'], name).toBeUndefined();
      expect(manifest.peerDependencies?.['@omnibus/core'], name).toMatch(/^\^\d/);
    }
    const contract = readJson<Manifest>(join(installed('@omnibus/contract'), 'package.json'));
    expect(contract.peerDependencies?.vitest).toBeDefined();
    expect(contract.peerDependenciesMeta?.vitest?.optional).toBe(true);
  });

  it('ships no src/, and every source map carries its sources', () => {
    for (const name of names) {
      expect(existsSync(join(installed(name), 'src')), name).toBe(false);
      const maps = files(installed(name)).filter((f) => f.endsWith('.map'));
      expect(maps.length, name).toBeGreaterThan(0);
      for (const file of maps) {
        const map = readJson<{ sources: string[]; sourcesContent?: (string | null)[] }>(file);
        const dir = join(file, '..');
        // Either the source is in the map, or the file it points at is installed.
        map.sources.forEach((source, i) => {
          const inline = typeof map.sourcesContent?.[i] === 'string';
          expect(inline || existsSync(join(dir, source)), `${file}: ${source}`).toBe(true);
        });
      }
    }
  });

  for (const resolution of ['nodenext', 'bundler'] as const) {
    it(`type-checks a strict program using every package, and the README example (${resolution})`, async () => {
      const module = resolution === 'nodenext' ? 'nodenext' : 'preserve';
      const config = {
        ...TSCONFIG,
        compilerOptions: { ...TSCONFIG.compilerOptions, module, moduleResolution: resolution },
      };
      writeFileSync(join(app, `tsconfig.${resolution}.json`), JSON.stringify(config));
      const args = [
        tsc,
        '-p',
        `tsconfig.${resolution}.json`,
        ...(resolution === 'bundler' ? ['--noEmit'] : []),
      ];
      const output = await exec(process.execPath, args, { cwd: app, timeout: 60_000 }).then(
        () => '',
        (error: { stdout?: string }) => error.stdout ?? String(error),
      );
      // Without skipLibCheck, so our .d.ts files are checked too; mqtt's worker-timers dependencies
      // declare DOM types a Node program does not load: those errors are theirs, not ours.
      const ours = output
        .split('\n')
        .filter((line) => /error TS/.test(line))
        .filter((line) => !line.startsWith('node_modules/') || line.startsWith('node_modules/@omnibus/'));
      expect(ours).toEqual([]);
    });
  }

  for (const conditions of [[], ['--conditions=source']]) {
    it(`runs with node ${conditions.join(' ')}`.trim(), async () => {
      expect(existsSync(join(app, 'out/main.js')), 'the nodenext type-check emits out/').toBe(true);
      const out = JSON.parse(await node([...conditions, 'out/main.js']));
      expect(out).toEqual({
        order: { id: 'A-1', region: 'eu', total: 42 },
        position: { partition: 0, offset: 0 },
        code: 'OMNIBUS_VALIDATION: true',
        unsupported: true,
        traced: true,
      });
      // The README example on memory://: it resolves and leaves nothing running.
      await node([...conditions, 'out/readme.js']);
    });
  }

  it('the omnibus bin runs from the install: caps on a profile, and the bundled adapters load by scheme', async () => {
    const bin = join(app, 'node_modules/.bin/omnibus');
    const caps = JSON.parse(await node([bin, 'caps', 'memory://?profile=kafka', '--json'])) as {
      capabilities: { priority: string };
    };
    expect(caps.capabilities.priority).toBe('none');
    // Nothing listens on port 9: the adapter is found and tries (exit 4), it is not "not installed" (2).
    const refused = await node([bin, 'caps', 'amqp://u:pw@127.0.0.1:9', '--connect-timeout', '3000']).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code?: number; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? '' }),
    );
    expect(refused).toMatchObject({
      code: 4,
      stderr: expect.stringContaining('could not connect to amqp://u:***@'),
    });
  });

  it('the contract suite entry needs vitest, which a user adds: then it loads', async () => {
    const script =
      "import('@omnibus/contract').then((m) => console.log(typeof m.runContractSuite), (e) => console.log(e.message))";
    expect(await node(['--input-type=module', '-e', script])).toMatch(/Cannot find package 'vitest'/);
    await exec(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', 'vitest@^4'],
      {
        cwd: app,
        timeout: 120_000,
      },
    );
    expect((await node(['--input-type=module', '-e', script])).trim()).toBe('function');
  });
});
