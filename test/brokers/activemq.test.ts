// ActiveMQ Classic 5.17 with the raw client: stompit. Besides a round trip, this proves the
// choices in tools/activemq/activemq.xml: priority dispatch, per-queue DLQs, the scheduler.

import { brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartBroker, restartTests, uniqueName } from './helpers.js';
import { type StompConnection, stompConnect, stompDisconnect, stompSend, stompSubscribe } from './stomp.js';

const urls = brokerUrls();
const avail = await brokerAvailable('activemq');
if (!avail.ok) console.warn(`skipping ActiveMQ tests: ${avail.reason}`);

describe.skipIf(!avail.ok)('ActiveMQ Classic over STOMP (stompit)', () => {
  let conn: StompConnection;
  beforeAll(async () => {
    conn = await stompConnect(urls.activemqStomp);
  });
  afterAll(async () => {
    if (conn) await stompDisconnect(conn.client);
  });

  it('sends with a receipt, subscribes and acks', async () => {
    expect(conn.headers.server).toMatch(/^ActiveMQ\/5\./);
    const destination = `/queue/${uniqueName('omnibus.raw')}`;
    await stompSend(conn.client, { destination, persistent: 'true', 'x-test': 'omnibus' }, 'hello activemq');
    const subscription = stompSubscribe(conn.client, { destination });
    const message = await subscription.next();
    expect(message.body).toBe('hello activemq');
    expect(message.headers['x-test']).toBe('omnibus');
    conn.client.ack(message.raw);
    subscription.unsubscribe();
  });

  it('dispatches a queue in priority order (prioritizedMessages)', async () => {
    const destination = `/queue/${uniqueName('omnibus.priority')}`;
    for (const priority of ['1', '9', '4', '7']) {
      await stompSend(conn.client, { destination, persistent: 'true', priority }, `p${priority}`);
    }
    const subscription = stompSubscribe(conn.client, { destination, 'activemq.prefetchSize': '1' });
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const message = await subscription.next();
      bodies.push(message.body);
      conn.client.ack(message.raw);
    }
    subscription.unsubscribe();
    expect(bodies).toEqual(['p9', 'p7', 'p4', 'p1']);
  });

  it('moves a NACKed message to <queue>.DLQ (individualDeadLetterStrategy)', async () => {
    const queue = uniqueName('omnibus.dlq');
    // Non-persistent on purpose: processNonPersistent makes these dead-letter too.
    await stompSend(conn.client, { destination: `/queue/${queue}`, 'x-test': 'poison' }, 'poison');
    const subscription = stompSubscribe(conn.client, { destination: `/queue/${queue}` });
    const message = await subscription.next();
    conn.client.nack(message.raw);
    subscription.unsubscribe();

    const dlq = stompSubscribe(conn.client, { destination: `/queue/${queue}.DLQ` });
    const dead = await dlq.next();
    expect(dead.body).toBe('poison');
    expect(dead.headers['x-test']).toBe('poison');
    conn.client.ack(dead.raw);
    dlq.unsubscribe();
  });

  it('delays delivery with AMQ_SCHEDULED_DELAY (schedulerSupport)', async () => {
    const destination = `/queue/${uniqueName('omnibus.delay')}`;
    const subscription = stompSubscribe(conn.client, { destination });
    const sentAt = Date.now();
    await stompSend(conn.client, { destination, AMQ_SCHEDULED_DELAY: '1500' }, 'later');
    const message = await subscription.next();
    const waited = Date.now() - sentAt;
    expect(message.body).toBe('later');
    expect(waited).toBeGreaterThanOrEqual(1400);
    conn.client.ack(message.raw);
    subscription.unsubscribe();
  });

  it('refuses wrong credentials', async () => {
    const wrong = urls.activemqStomp.replace(/\/\/[^@]*@/, '//admin:wrong@');
    await expect(stompConnect(wrong)).rejects.toThrow(/invalid|denied|authenticat/i);
  });
});

describe.skipIf(!avail.ok || !restartTests)('ActiveMQ restart (OMNIBUS_BROKER_RESTART_TESTS=1)', () => {
  it('keeps a persistent message across brokers.sh restart activemq', { timeout: 180_000 }, async () => {
    const destination = `/queue/${uniqueName('omnibus.restart')}`;
    const before = await stompConnect(urls.activemqStomp);
    await stompSend(before.client, { destination, persistent: 'true' }, 'survives');
    await stompDisconnect(before.client);

    const seconds = await restartBroker('activemq');
    console.warn(`brokers.sh restart activemq took ${seconds.toFixed(1)} s`);

    const after = await stompConnect(urls.activemqStomp);
    try {
      const subscription = stompSubscribe(after.client, { destination });
      const message = await subscription.next();
      expect(message.body).toBe('survives');
      after.client.ack(message.raw);
      subscription.unsubscribe();
    } finally {
      await stompDisconnect(after.client);
    }
  });
});
