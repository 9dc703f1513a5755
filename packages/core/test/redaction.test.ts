/**
 * Passwords never reach an error, a cause, a redacted URL or `toString()`, whatever characters
 * they hold: generated secrets mix every URL-special character, written percent-encoded (the URL
 * parses) and raw (it usually does not), for every scheme.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AdapterFactory,
  ConfigError,
  ConnectionError,
  connect,
  isOmnibusError,
  parseUrl,
  redactUrl,
} from '../src/index.js';

const SCHEMES = ['memory', 'amqp', 'amqps', 'kafka', 'mqtt', 'mqtts', 'ws', 'stomp', 'stomp+ssl'] as const;
/** Every character with a meaning in a URL, plus the ones generated secrets and shells like. */
const SPECIALS = [...'/?#@:% +&=;,[]!$\'()*~"\\<>{}|^`'];

/**
 * A secret is distinctive words (`Qz` and six letters or digits) joined by special characters:
 * a leak of any piece of it, not only of the whole, shows up as one of its words.
 */
const secretArb = fc
  .tuple(
    fc.array(fc.stringMatching(/^[A-Za-z0-9]{6}$/), { minLength: 2, maxLength: 4 }),
    fc.array(fc.array(fc.constantFrom(...SPECIALS), { minLength: 1, maxLength: 3 }), {
      minLength: 3,
      maxLength: 3,
    }),
  )
  .map(([words, separators]) => {
    const pieces = words.map((w, i) => `Qz${w}${i}`);
    const secret = pieces.map((p, i) => (i === 0 ? p : `${separators[(i - 1) % 3]!.join('')}${p}`)).join('');
    return { secret, pieces };
  });

const hostsFor = (scheme: string) =>
  scheme === 'kafka' ? '127.0.0.1:9092,localhost:9093' : scheme === 'memory' ? 'box' : '127.0.0.1:1';

/** Every string an error exposes: message, issues, stack and the whole cause chain. */
function errorTexts(error: unknown): string[] {
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 10; depth++) {
    if (current instanceof Error) {
      texts.push(current.message, String(current), current.stack ?? '');
      const issues = (current as { issues?: unknown }).issues;
      if (Array.isArray(issues)) texts.push(...issues.map(String));
      current = current.cause;
    } else {
      texts.push(String(current));
      break;
    }
  }
  return texts;
}

function expectNoPiece(texts: readonly string[], pieces: readonly string[], url: string): void {
  for (const text of texts) {
    for (const piece of pieces) {
      if (text.includes(piece)) {
        throw new Error(`a piece of the secret (${piece}) leaked for ${JSON.stringify(url)}: ${text}`);
      }
    }
  }
}

/** An adapter whose connection always fails, so connect() wraps its error (no broker involved). */
const failing: AdapterFactory = {
  name: 'failing',
  schemes: SCHEMES.filter((s) => s !== 'memory'),
  create: () => Promise.reject(new Error('connection refused')),
};

describe('redaction holds for any password', () => {
  it('a raw (unencoded) password leaks nowhere: parse errors, connect errors, redactUrl', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...SCHEMES), secretArb, async (scheme, { secret, pieces }) => {
        const url = `${scheme}://guest:${secret}@${hostsFor(scheme)}/vh?heartbeat=5`;
        const texts: string[] = [redactUrl(url), redactUrl(`failed: ${url}`), redactUrl(`"${url}"`)];
        try {
          const parsed = parseUrl(url);
          texts.push(parsed.redacted, String(parsed), `${parsed}`);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          texts.push(...errorTexts(error));
        }
        try {
          const bus = await connect(url, { adapters: [failing], connectTimeoutMs: 1000 });
          texts.push(JSON.stringify(bus.health()));
          await bus.close();
        } catch (error) {
          expect(isOmnibusError(error)).toBe(true);
          texts.push(...errorTexts(error));
        }
        expectNoPiece(texts, pieces, url);
      }),
      { numRuns: 400 },
    );
  });

  it('a percent-encoded password parses, is kept for the adapter, and leaks nowhere', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...SCHEMES), secretArb, async (scheme, { secret, pieces }) => {
        const url = `${scheme}://guest:${encodeURIComponent(secret)}@${hostsFor(scheme)}/vh`;
        const parsed = parseUrl(url);
        expect(parsed.password).toBe(secret);
        expect(parsed.username).toBe('guest');
        const texts = [parsed.redacted, String(parsed), redactUrl(url), redactUrl(`at ${url}: refused`)];
        expect(parsed.redacted).toMatch(new RegExp(`^${scheme.replace('+', '\\+')}://guest:\\*\\*\\*@`));
        if (scheme !== 'memory') {
          const error = await connect(url, { adapters: [failing] }).then(
            () => expect.unreachable(),
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(ConnectionError);
          texts.push(...errorTexts(error));
        }
        expectNoPiece(texts, pieces, url);
      }),
      { numRuns: 300 },
    );
  });

  it('the example from the issue: no piece of "Zk9s/Qw+e" in the error', () => {
    const url = 'amqp://guest:Zk9s/Qw+e@rabbit:5672';
    let error: unknown;
    try {
      parseUrl(url);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = errorTexts(error).join('\n');
    expect(text).not.toContain('Zk9s');
    expect(text).not.toContain('Qw+e');
    expect(text).toContain('amqp://guest:***@rabbit:5672');
    expect(text).toMatch(/percent-encode/i);
  });

  it('redacts the whole userinfo when the user name is not plain, and keeps hosts when it can', () => {
    expect(redactUrl('amqp://guest:Zk9s/Qw+e@rabbit:5672/vh')).toBe('amqp://guest:***@rabbit:5672/vh');
    expect(redactUrl('amqp://gu/est:pw@rabbit')).toBe('amqp://***@rabbit');
    expect(redactUrl('mqtt://u:a b@c@h:1883')).toBe('mqtt://u:***@h:1883');
    expect(redactUrl('kafka://k1:9092,k2:9092')).toBe('kafka://k1:9092,k2:9092');
    expect(redactUrl('amqp://guest@h')).toBe('amqp://guest@h');
    expect(redactUrl(redactUrl('amqp://u:p@h'))).toBe('amqp://u:***@h');
    expect(redactUrl('no url: a@b')).toBe('no url: a@b');
  });

  it('a string that is not a URL shows nothing before its "@"', () => {
    expect(() => parseUrl('amqp:/guest:Zk9s/Qw@host')).toThrow(ConfigError);
    try {
      parseUrl('amqp:/guest:Zk9s/Qw@host');
    } catch (error) {
      expect((error as Error).message).not.toContain('Zk9s');
    }
  });
});
