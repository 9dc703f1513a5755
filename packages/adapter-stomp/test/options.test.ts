import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import { ConfigError, connect, parseUrl } from '@omnibus/core';
import { headingSection } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import { stomp } from '../src/index.js';
import { OPTION_NAMES, resolveSettings } from '../src/options.js';
import { brokerOrSkip, RABBITMQ_STOMP_URL } from './brokers.js';

describe('options', () => {
  it('merges the URL and the options: credentials, vhost from the path, TLS from stomp+ssl', () => {
    const s = resolveSettings(parseUrl('stomp+ssl://u:p%40ss@h1:61614,h2/my-vhost?heartbeatMs=0'), {
      heartbeatMs: '0',
    });
    expect(s).toMatchObject({
      login: 'u',
      passcode: 'p@ss',
      vhost: 'my-vhost',
      heartbeatMs: 0,
      tls: { rejectUnauthorized: true },
      hosts: [
        { host: 'h1', port: 61614 },
        { host: 'h2', port: undefined },
      ],
    });
    expect(resolveSettings(parseUrl('stomp://h'), { login: 'other' })).toMatchObject({
      vhost: '/',
      login: 'other',
    });
  });

  it("takes core's TLS options: files read, TLS on for stomp+ssl:// or tls=true, refused on a plain connection", () => {
    const dir = mkdtempSync(join(tmpdir(), 'omnibus-stomp-opts-'));
    writeFileSync(join(dir, 'ca.pem'), 'CA PEM');
    const query = `caFile=${encodeURIComponent(join(dir, 'ca.pem'))}&servername=broker&rejectUnauthorized=false`;
    const secure = resolveSettings(
      parseUrl(`stomp+ssl://h?${query}`),
      parseUrl(`stomp+ssl://h?${query}`).params,
    );
    expect(secure.tls).toEqual({
      ca: Buffer.from('CA PEM'),
      servername: 'broker',
      rejectUnauthorized: false,
    });
    expect(resolveSettings(parseUrl('stomp://h'), { tls: 'true' }).tls).toEqual({ rejectUnauthorized: true });
    expect(resolveSettings(parseUrl('stomp://h'), {}).tls).toBeUndefined();
    expect(() => resolveSettings(parseUrl('stomp://h'), { ca: 'PEM' })).toThrow(/TLS is off/);
  });

  it('the README documents every option, and only options that exist', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const documented = headingSection(readme, '## Options')
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .flatMap((line) => [...line.split('|')[1]!.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]!));
    expect(documented.sort()).toEqual([...OPTION_NAMES].sort());
  });

  it('reports every invalid option at once, without the password', async () => {
    const error = await connect('stomp://user:secret@127.0.0.1:1?heartbeatMs=-1&profile=kafka&tls=maybe', {
      adapters: [stomp()],
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    const issues = (error as ConfigError).issues.join('\n');
    expect(issues).toMatch(/heartbeatMs/);
    expect(issues).toMatch(/profile/);
    expect(issues).toMatch(/tls/);
    expect((error as Error).message).not.toContain('secret');
  });

  it('a refused login fails at connect with the broker reason and no password', async () => {
    if (!(await brokerOrSkip('login test', RABBITMQ_STOMP_URL))) return;
    const u = parseUrl(RABBITMQ_STOMP_URL);
    const error = await connect(
      `stomp://guest:wrong-secret@${u.hosts[0]!.host}:${u.hosts[0]!.port ?? 61613}`,
      {
        adapters: [stomp()],
      },
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/could not connect/);
    expect(String(error?.cause)).toMatch(/access refused|login|authenti|denied/i);
    expect(error?.message).not.toContain('wrong-secret');
  });
});

describe('TLS', () => {
  it('stomp+ssl:// connects through TLS with a given CA', async () => {
    if (!(await brokerOrSkip('TLS test', RABBITMQ_STOMP_URL))) return;
    let hasOpenssl = true;
    const dir = mkdtempSync(join(tmpdir(), 'omnibus-stomp-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
    } catch {
      hasOpenssl = false;
    }
    if (!hasOpenssl) {
      console.warn('[stomp tests] skipping the TLS test: no openssl to make a certificate');
      return;
    }
    const cert = readFileSync(join(dir, 'cert.pem'));
    const u = parseUrl(RABBITMQ_STOMP_URL);
    // A TLS terminator in front of the broker's plain STOMP port.
    const server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (tlsSocket) => {
      const upstream = netConnect({ host: u.hosts[0]!.host, port: u.hosts[0]!.port ?? 61613 });
      tlsSocket.pipe(upstream).pipe(tlsSocket);
      tlsSocket.on('error', () => upstream.destroy());
      upstream.on('error', () => tlsSocket.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const bus = await connect(
        { adapter: 'stomp', url: `stomp+ssl://guest:guest@localhost:${port}`, ca: cert },
        {
          adapters: [stomp()],
        },
      );
      const queue = bus.queue<string>(`tls-${Math.random().toString(36).slice(2)}`);
      const got: string[] = [];
      await queue.consume((m) => void got.push(m.payload));
      await queue.send('over TLS');
      const dueAt = Date.now() + 10_000;
      while (got.length === 0 && Date.now() < dueAt) await new Promise((r) => setTimeout(r, 10));
      await bus.close();
      expect(got).toEqual(['over TLS']);
      // And without the CA, the self-signed certificate is refused.
      await expect(
        connect(`stomp+ssl://guest:guest@localhost:${port}`, { adapters: [stomp()] }),
      ).rejects.toThrow(/could not connect/);
    } finally {
      server.close();
    }
  });
});
