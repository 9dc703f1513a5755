import { describe, expect, it } from 'vitest';
import { ConfigError, declareCapabilities, FEATURES, option, readOptions, tlsOptions } from '../src/index.js';

const spec = {
  retries: option.int({ max: 10, default: 3 }),
  timeoutMs: option.ms(),
  verbose: option.bool(false),
  mode: option.oneOf(['fast', 'safe'], 'safe'),
  level: option.oneOf([0, 1, 2]),
  prefix: option.string({ max: 8, pattern: [/^[a-z]+$/, 'use lower-case letters'] }),
  ...tlsOptions,
};

const read = (raw: Record<string, unknown>, extras: Parameters<typeof readOptions<typeof spec>>[3] = {}) =>
  readOptions('x', spec, raw, extras);

function issuesOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^\[omnibus\] \[x\]/);
    return (error as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('readOptions', () => {
  it('applies defaults and coerces URL query strings', () => {
    expect(read({}).options).toEqual({
      retries: 3,
      timeoutMs: undefined,
      verbose: false,
      mode: 'safe',
      level: undefined,
      prefix: undefined,
      ca: undefined,
      cert: undefined,
      key: undefined,
      passphrase: undefined,
      caFile: undefined,
      certFile: undefined,
      keyFile: undefined,
      rejectUnauthorized: undefined,
      servername: undefined,
    });
    const { options } = read({ retries: '7', timeoutMs: '250', verbose: 'yes', level: '2', prefix: 'ab' });
    expect(options).toMatchObject({ retries: 7, timeoutMs: 250, verbose: true, level: 2, prefix: 'ab' });
  });

  it('reports every problem at once, naming the closest known option for a typo', () => {
    const issues = issuesOf(() =>
      read({
        retries: 11,
        timeoutMs: 0,
        verbose: 'maybe',
        mode: 'slow',
        level: 3,
        prefix: 'A',
        retires: 1,
        zzz: 1,
      }),
    );
    expect(issues.map((i) => i.split(/[:;]/)[0])).toEqual([
      'unknown option "retires"',
      'unknown option "zzz"',
      'retries',
      'timeoutMs',
      'verbose',
      'mode',
      'level',
      'prefix',
    ]);
    expect(issues[0]).toMatch(/did you mean "retries"\?$/);
    expect(issues[1]).not.toMatch(/did you mean/);
    expect(issues.find((i) => i.startsWith('mode'))).toBe('mode: must be fast or safe');
    expect(issues.find((i) => i.startsWith('level'))).toBe('level: must be 0, 1 or 2');
    expect(issues.find((i) => i.startsWith('prefix'))).toBe('prefix: use lower-case letters');
  });

  it('runs the checks across options once every option is valid', () => {
    const check = (o: { retries: number; verbose: boolean }): (string | false)[] => [
      o.retries > 5 && o.verbose && 'verbose: not with more than 5 retries',
      false,
    ];
    expect(issuesOf(() => read({ retries: 6, verbose: true }, { check }))).toEqual([
      'verbose: not with more than 5 retries',
    ]);
    expect(read({ retries: 5, verbose: true }, { check }).options.retries).toBe(5);
    // An invalid option is reported alone: the checks never see a half-read configuration.
    expect(issuesOf(() => read({ retries: 'many', verbose: true }, { check }))).toHaveLength(1);
  });

  it('maps the TLS options when TLS is on, and refuses them by name when it is off', () => {
    const on = read(
      { servername: 'broker', rejectUnauthorized: 'false' },
      { tls: { on: true, needs: 'xs://' } },
    );
    expect(on.tls).toEqual({ servername: 'broker', rejectUnauthorized: false });
    expect(read({}, { tls: { on: true, needs: 'xs://' } }).tls).toEqual({ rejectUnauthorized: true });
    expect(read({}, { tls: { on: false, needs: 'xs://' } }).tls).toBeUndefined();
    const tlsOff = { tls: { on: (o: { verbose: boolean }) => o.verbose, needs: 'an xs:// URL' } };
    expect(issuesOf(() => read({ caFile: '/ca.pem', servername: 'b', mode: 'fast' }, tlsOff))).toEqual([
      'caFile: TLS options need an xs:// URL (TLS is off: they would be ignored)',
      'servername: TLS options need an xs:// URL (TLS is off: they would be ignored)',
    ]);
    expect(read({ servername: 'b', verbose: true }, tlsOff).tls).toEqual({
      servername: 'b',
      rejectUnauthorized: true,
    });
  });

  it('never echoes a password from a URL in a value it refuses', () => {
    const issues = issuesOf(() => read({ prefix: 'amqp://user:s3cret@host' }));
    expect(issues.join('\n')).not.toContain('s3cret');
  });
});

describe('declareCapabilities', () => {
  it('gives every feature its level, with ordering and limits', () => {
    const capabilities = declareCapabilities({
      native: FEATURES.filter((f) => f !== 'delay' && f !== 'log'),
      emulated: { delay: 'timers in the process' },
      none: { log: 'no retained stream' },
      ordering: 'destination',
    });
    expect(capabilities).toMatchObject({
      queue: 'native',
      delay: 'emulated',
      log: 'none',
      ordering: 'destination',
    });
    expect(capabilities.limits).toEqual({});
  });

  it('refuses a declaration that forgets a feature or names one twice', () => {
    expect(() =>
      declareCapabilities({ native: FEATURES.filter((f) => f !== 'delay'), ordering: 'key' }),
    ).toThrow(/delay not declared/);
    expect(() =>
      declareCapabilities({ native: FEATURES, none: { delay: 'twice' }, ordering: 'key' }),
    ).toThrow(/delay declared twice/);
  });
});
