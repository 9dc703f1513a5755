import { ConfigError, connect, installedAdapters } from '@omnibus/core';
import { describe, expect, it } from 'vitest';

describe('the loopback adapter in the open registry', () => {
  it('is listed among the installed adapters, from its package.json', () => {
    expect(installedAdapters()).toContainEqual({
      packageName: 'omnibus-adapter-loopback',
      adapter: 'loopback',
      schemes: ['loopback'],
      hostOptional: true,
    });
  });

  it('serves loopback:// and the object config { adapter: "loopback" }', async () => {
    const byUrl = await connect('loopback://registry');
    const byObject = await connect({ adapter: 'loopback', url: 'loopback://registry' });
    expect([byUrl.adapter, byObject.adapter]).toEqual(['loopback', 'loopback']);
    await Promise.all([byUrl.close(), byObject.close()]);
  });

  it('refuses options it does not have', async () => {
    await expect(connect('loopback://registry?prefetch=5')).rejects.toThrow(
      /unknown option "prefetch"; it takes none/,
    );
  });

  it('names how to install an adapter when none serves an adapter name', async () => {
    const error = await connect({ adapter: 'nosuchbroker' } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/install the adapter package/);
    expect((error as Error).message).toMatch(/"omnibus": \{ "schemes": \["nosuchbroker"\] \}/);
  });

  it('names how to install an adapter when no installed package serves a URL scheme', async () => {
    const error = await connect('nosuchbroker://localhost').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/install/);
    expect((error as Error).message).toMatch(/"omnibus"/);
  });
});
