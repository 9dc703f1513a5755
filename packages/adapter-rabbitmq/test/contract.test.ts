/**
 * Everything that needs the broker, in one file so it runs in order: the contract suite, then this
 * adapter's own tests, then the broker restart (which would break tests running beside it).
 */
import { type Inject, runContractSuite } from '@omnibus/contract';
import { connect, parseUrl } from '@omnibus/core';
import { connect as amqpConnect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { afterAll, describe, it, vi } from 'vitest';
import { rabbitmq } from '../src/index.js';
import { resolveSettings } from '../src/options.js';
import { Session } from '../src/session.js';
import { Topology } from '../src/topology.js';
import { AMQP_URL, restartBroker, unavailable } from './broker.js';
import { ackTests } from './live/acks.js';
import { adminTests } from './live/admin.js';
import { behaviourTests } from './live/behaviour.js';
import { connectionTests } from './live/connection.js';
import { logTests } from './live/logs.js';
import { restartTests } from './live/restart.js';

/** One plain amqplib connection for foreign messages, opened on first use (after any restart). */
let foreign: Promise<{ model: ChannelModel; channel: ConfirmChannel }> | undefined;
afterAll(async () => {
  const opened = foreign;
  foreign = undefined;
  if (opened !== undefined) await (await opened).model.close().catch(() => undefined);
});

/**
 * As a non-Omnibus AMQP producer: a confirmed publish to the default exchange, routing key = the
 * queue (declared by the consumer the test attached first), no message-id, no x-omnibus- header.
 */
const inject: Inject = async (target, message) => {
  foreign ??= (async () => {
    const model = await amqpConnect(AMQP_URL);
    model.on('error', () => undefined);
    model.on('close', () => {
      foreign = undefined;
    });
    return { model, channel: await model.createConfirmChannel() };
  })();
  const { channel } = await foreign;
  await new Promise<void>((resolve, reject) => {
    channel.publish(
      '',
      target.name,
      Buffer.from(message.body),
      {
        persistent: true,
        headers: { ...message.headers },
        ...(message.contentType === undefined ? {} : { contentType: message.contentType }),
      },
      (error: unknown) => (error ? reject(error) : resolve()),
    );
  });
};

const reason = await unavailable();
if (reason !== undefined) {
  describe.skip(`rabbitmq (${reason})`, () => {
    it('needs RabbitMQ', () => undefined);
  });
} else {
  // Every test uses new names; delete what they declared, or each run leaves hundreds of queues
  // and streams behind (each stream holds open files on the broker).
  const queues = [
    vi.spyOn(Topology.prototype, 'queue'),
    vi.spyOn(Topology.prototype, 'stream'),
    vi.spyOn(Topology.prototype, 'groupOffsets'),
  ];
  const exchanges = vi.spyOn(Topology.prototype, 'topic');
  afterAll(async () => {
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const context = { clientId: 'omnibus-cleanup', logger: silent, setState() {}, reportError() {} };
    const session = new Session(resolveSettings(parseUrl(AMQP_URL), {}), context);
    await session.open();
    const names = (spy: { mock: { calls: unknown[][] } }) =>
      new Set(spy.mock.calls.map((call) => String(call[0])));
    for (const queue of new Set(queues.flatMap((spy) => [...names(spy)]))) {
      await session.withChannel((ch) => ch.deleteQueue(queue)).catch(() => undefined);
    }
    for (const exchange of names(exchanges)) {
      await session.withChannel((ch) => ch.deleteExchange(exchange)).catch(() => undefined);
    }
    await session.close();
  }, 120_000);

  await runContractSuite({
    name: 'rabbitmq',
    // A full restart of the node takes ~30 s here (brokers.sh waits for every plugin): sends may
    // wait that long for the reconnection, so the send buffer waits longer than its 30 s default.
    connect: (options) =>
      connect(AMQP_URL, { sendBuffer: { timeoutMs: 120_000 }, ...options, adapters: [rabbitmq()] }),
    ...(restartBroker === undefined ? {} : { restartBroker }),
    inject,
    testTimeoutMs: 180_000,
  });
  connectionTests();
  behaviourTests();
  ackTests();
  logTests();
  adminTests();
  restartTests();
}
