import { connect, parseUrl } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import { rabbitmq } from '../../src/index.js';
import { AMQP_URL } from '../broker.js';

export function connectionTests(): void {
  describe('rabbitmq connection settings (live broker)', () => {
    const url = parseUrl(AMQP_URL);
    const auth = url.username === undefined ? '' : `${url.username}:${url.password ?? ''}@`;
    const host = url.hosts[0]!;

    it('moves on to the next host of a cluster URL when one does not answer', async () => {
      // Port 1 refuses connections: the adapter must try the next host instead of giving up.
      const bus = await connect(`amqp://${auth}127.0.0.1:1,${host.host}:${host.port ?? 5672}`, {
        adapters: [rabbitmq({ reconnectDelayMs: 10 })],
      });
      expect(bus.health().state).toBe('connected');
      await bus.close();
    });

    it('fails at connect with a ConnectionError for an unknown vhost, without the password', async () => {
      const started = Date.now();
      const error = await connect(`amqp://${auth}${host.host}:${host.port ?? 5672}/no-such-vhost-omnibus`, {
        adapters: [rabbitmq({ connectRetries: 1, reconnectDelayMs: 10 })],
      }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'OMNIBUS_CONNECTION' });
      expect(String((error as Error).message)).toContain('no-such-vhost-omnibus');
      if (url.password !== undefined) expect((error as Error).message).not.toContain(`:${url.password}@`);
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it('fails at connect with a ConnectionError when no host answers', async () => {
      const error = await connect('amqp://127.0.0.1:1', {
        adapters: [rabbitmq({ connectRetries: 1, reconnectDelayMs: 10 })],
      }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'OMNIBUS_CONNECTION' });
      expect((error as Error).message).toMatch(/ECONNREFUSED/);
    });
  });
}
