/**
 * STOMP state events carry a typed error: a lost connection is reported as a `ConnectionError`
 * whose cause is the socket's error, like on every other adapter.
 */
import { waitFor } from '@omnibus/contract';
import { type Bus, ConnectionError, connect, parseUrl } from '@omnibus/core';
import { type FaultProxy, startFaultProxy } from '@omnibus/test-brokers';
import { afterEach, describe, expect, it } from 'vitest';
import { stomp } from '../src/index.js';
import { brokerOrSkip, RABBITMQ_STOMP_URL } from './brokers.js';

const available = await brokerOrSkip('state events', RABBITMQ_STOMP_URL);
describe.skipIf(!available)('stomp: state events', () => {
  const open: Bus[] = [];
  const proxies: FaultProxy[] = [];
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((b) => b.close()));
    await Promise.allSettled(proxies.splice(0).map((p) => p.close()));
  });

  it('a lost connection is reported as reconnecting with a ConnectionError that keeps the cause', async () => {
    const u = parseUrl(RABBITMQ_STOMP_URL);
    const proxy = await startFaultProxy({ host: u.hosts[0]!.host, port: u.hosts[0]!.port ?? 61613 });
    proxies.push(proxy);
    const auth =
      u.username === undefined
        ? ''
        : `${encodeURIComponent(u.username)}:${encodeURIComponent(u.password ?? '')}@`;
    const bus = await connect(`stomp://${auth}127.0.0.1:${proxy.port}?reconnectDelayMs=50`, {
      adapters: [stomp()],
    });
    open.push(bus);
    const events: { state: string; error: Error | undefined }[] = [];
    bus.on('state', (state, error) => events.push({ state, error }));
    proxy.cut();
    await waitFor(() => events.some((e) => e.state === 'connected'), 'reconnection');
    const lost = events.find((e) => e.state === 'reconnecting');
    expect(lost?.error).toBeInstanceOf(ConnectionError);
    const error = lost!.error as ConnectionError;
    expect(error.code).toBe('OMNIBUS_CONNECTION');
    expect(error.adapter).toBe('stomp');
    expect(error.retriable).toBe(true);
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.message).toContain((error.cause as Error).message);
  });
});
