/**
 * TLS settings, the same on every adapter: the same option names in a URL query
 * (`amqps://host?caFile=/etc/ca.pem`) or an object config, read and checked once here. Swapping
 * brokers stays a change of URL, certificates included.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { type OptionsOf, option } from './options.js';

const pem = option.of(z.union([z.string().min(1), z.instanceof(Buffer)]));

/** The TLS options as a spec, to spread into an adapter's options spec. */
export const tlsOptions = {
  /** Trusted CA certificates, PEM. @default the system's */
  ca: pem,
  /** Client certificate, PEM. @default none */
  cert: pem,
  /** Client private key, PEM. @default none */
  key: pem,
  /** Passphrase of `key`. @default none */
  passphrase: option.string({ min: 0 }),
  /** Read `ca` from this file (handy in a URL query). @default none */
  caFile: option.string(),
  /** Read `cert` from this file. @default none */
  certFile: option.string(),
  /** Read `key` from this file. @default none */
  keyFile: option.string(),
  /** Verify the broker's certificate and host name. Turning it off is for tests only. @default true */
  rejectUnauthorized: option.bool(),
  /** Server name for SNI and the certificate check. @default the host */
  servername: option.string(),
};

export type TlsOptions = OptionsOf<typeof tlsOptions>;

/** The names of the TLS options, for option lists and README checks. */
export const TLS_OPTION_NAMES = Object.keys(tlsOptions) as readonly (keyof TlsOptions)[];

/** True when any TLS option is set. */
export function hasTlsOptions(options: TlsOptions): boolean {
  return TLS_OPTION_NAMES.some((name) => options[name] !== undefined);
}

/**
 * Node TLS options from `TlsOptions`: files read (a missing file is a `ConfigError` naming the
 * option, never the content), a PEM given twice (inline and as a file) refused, verification on
 * unless turned off.
 */
export function resolveTls(adapter: string, options: TlsOptions): ConnectionOptions {
  const both = (['ca', 'cert', 'key'] as const).filter(
    (pem) => options[pem] !== undefined && options[`${pem}File`] !== undefined,
  );
  if (both.length > 0) {
    throw new ConfigError(
      both.map((pem) => `${pem} and ${pem}File: give one of them`),
      { adapter },
    );
  }
  const read = (name: 'caFile' | 'certFile' | 'keyFile', path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError([`${name}: cannot read "${path}" (${(error as NodeJS.ErrnoException).code})`], {
        adapter,
      });
    }
  };
  const ca = options.ca ?? read('caFile', options.caFile);
  const cert = options.cert ?? read('certFile', options.certFile);
  const key = options.key ?? read('keyFile', options.keyFile);
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
    ...(options.servername === undefined ? {} : { servername: options.servername }),
    rejectUnauthorized: options.rejectUnauthorized ?? true,
  };
}

/** Node's codes for a broker certificate that fails verification (wrong CA, host name, dates). */
const CERTIFICATE_ERRORS: ReadonlySet<string> = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
]);

/**
 * True when the TLS handshake failed because the broker's certificate was not accepted: no retry
 * can fix that, so adapters report it with `retriable: false`.
 */
export function isCertificateError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CERTIFICATE_ERRORS.has(code);
}
