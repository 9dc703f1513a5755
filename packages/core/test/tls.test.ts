import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, hasTlsOptions, isCertificateError, resolveTls } from '../src/index.js';

describe('TLS options', () => {
  it('reads files, keeps inline PEM, and verifies unless told not to', () => {
    const dir = mkdtempSync(join(tmpdir(), 'omnibus-tls-'));
    writeFileSync(join(dir, 'ca.pem'), 'CA PEM');
    const tls = resolveTls('x', { caFile: join(dir, 'ca.pem'), cert: 'CERT', servername: 'broker' });
    expect(tls).toEqual({
      ca: Buffer.from('CA PEM'),
      cert: 'CERT',
      servername: 'broker',
      rejectUnauthorized: true,
    });
    expect(resolveTls('x', { rejectUnauthorized: false }).rejectUnauthorized).toBe(false);
    expect(hasTlsOptions({})).toBe(false);
    expect(hasTlsOptions({ keyFile: '/k' })).toBe(true);
  });

  it('names the option whose file cannot be read', () => {
    const error = (() => {
      try {
        resolveTls('rabbitmq', { keyFile: '/nonexistent/key.pem' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/keyFile: cannot read "\/nonexistent\/key.pem" \(ENOENT\)/);
  });

  it('refuses a PEM given both inline and as a file', () => {
    expect(() => resolveTls('x', { ca: 'CA', caFile: '/etc/ca.pem', key: 'K', keyFile: '/k' })).toThrow(
      /ca and caFile: give one of them.*key and keyFile: give one of them/s,
    );
  });

  it('tells a refused certificate from a network failure', () => {
    const coded = (code: string) => Object.assign(new Error(code), { code });
    for (const code of ['SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED']) {
      expect(isCertificateError(coded(code)), code).toBe(true);
    }
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']) {
      expect(isCertificateError(coded(code)), code).toBe(false);
    }
    expect(isCertificateError(new Error('no code'))).toBe(false);
    expect(isCertificateError(undefined)).toBe(false);
  });
});
