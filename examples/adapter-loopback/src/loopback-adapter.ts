/**
 * The loopback adapter (`loopback://name`): an adapter written outside core against the transport
 * interface, on a broker of its own (./broker.ts). It moves frames and settles deliveries; core does
 * the envelope, retries, dead letters, per-key ordering and the subscription lifecycle's states.
 */
import {
  ADMIN_NOT_YET,
  type Adapter,
  type AdapterContext,
  type AdapterFactory,
  type Capabilities,
  ConnectionError,
  type ConsumeSpec,
  type Deliver,
  type Delivery,
  declareCapabilities,
  Lifecycles,
  type OutgoingMessage,
  type QueueSpec,
  readOptions,
  type Subscription,
  type SubscriptionSpec,
  type TopicSpec,
  toHeaders,
  unsupported,
} from '@omnibus/core';
import { type Frame, type LoopbackBroker, loopbackBroker, type Queue, type Session } from './broker.js';

// A queue's dead letters go back through core alone (consume, send): no adapter method needed.
const { redrive: _redrive, ...adminNotYet } = ADMIN_NOT_YET;

export const LOOPBACK_CAPABILITIES: Capabilities = declareCapabilities({
  native: ['queue', 'topic', 'routing', 'delay', 'headers', 'durableSubscriptions'],
  emulated: {
    deadLetter: 'no dead-letter primitive: core sends a copy to the dead-letter queue, then acks',
    redrive: 'core consumes the dead-letter queue and sends confirmed copies',
  },
  none: {
    log: 'the broker keeps no retained stream',
    priority: 'its queues are FIFO',
    replay: 'no log',
    consumerGroups: 'no log',
    ...adminNotYet,
  },
  ordering: 'key', // FIFO queues, requeue to the original place; core keeps keys in order under concurrency
  limits: {}, // in process: no frame or header size to break
});

/** The factory; `loopback://name` connects to the broker called `name` in this process. */
export function loopback(): AdapterFactory {
  return {
    name: 'loopback',
    schemes: ['loopback'],
    hostOptional: true,
    async create(target, context) {
      readOptions('loopback', {}, target.options); // it takes none: any option is refused by name
      return new LoopbackAdapter(loopbackBroker(target.url.hosts[0]?.host ?? 'default'), context);
    },
  };
}

class LoopbackAdapter implements Adapter, Session {
  readonly name = 'loopback';
  // Operations: `none` in its capabilities until this adapter implements them.
  readonly depth = unsupported('loopback', 'depth');
  readonly purge = unsupported('loopback', 'purge');
  readonly browse = unsupported('loopback', 'browse');
  readonly subscriptionAddress = unsupported('loopback', 'redriveSubscription');
  readonly deleteSubscription = unsupported('loopback', 'deleteSubscription');
  readonly resetGroup = unsupported('loopback', 'resetGroup');
  readonly groupLag = unsupported('loopback', 'lag');
  readonly capabilities = LOOPBACK_CAPABILITIES;
  private connections = 1;
  /** The current connection, a new one after each broker restart; undefined while down or closed. */
  private connection: number | undefined = this.connections;
  private readonly lifecycles = new Lifecycles<number>();

  constructor(
    private readonly broker: LoopbackBroker,
    private readonly context: AdapterContext,
  ) {
    broker.join(this);
    this.lifecycles.connected(this.connections);
  }

  async send(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    this.assertConnected();
    this.broker.queue(queue.name).put(frameOf(message), message.delayMs);
  }

  async sendTo(address: string, message: OutgoingMessage): Promise<void> {
    this.assertConnected();
    // A plain subscription that is gone takes its retries with it, as its queue would.
    this.broker.addressed(address)?.put(frameOf(message), message.delayMs);
  }

  consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription> {
    return this.open(() => this.broker.queue(queue.name), spec, deliver);
  }

  async publish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    this.assertConnected();
    this.broker.publish(topic.name, message.subject, frameOf(message));
  }

  subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    // A plain subscription's queue goes when it closes; a durable one keeps collecting.
    const drop =
      spec.durable === undefined ? (queue: Queue) => this.broker.unbind(topic.name, queue) : undefined;
    return this.open(() => this.broker.bind(topic.name, spec.pattern, spec.durable), spec, deliver, drop);
  }

  readonly append = unsupported('loopback', 'log');
  readonly read = unsupported('loopback', 'log');

  async close(): Promise<void> {
    await this.lifecycles.closeAll();
    this.connection = undefined;
    this.broker.leave(this);
  }

  dropped(): void {
    this.connection = undefined;
    this.lifecycles.disconnected();
    this.context.setState('reconnecting', new ConnectionError('broker restarting', { adapter: 'loopback' }));
  }

  restored(): void {
    this.connection = ++this.connections;
    this.context.setState('connected');
    this.lifecycles.connected(this.connection);
  }

  /** A consumer on a queue, attached again by core's lifecycle after each reconnection. */
  private async open(
    source: () => Queue,
    spec: ConsumeSpec,
    deliver: Deliver,
    drop?: (queue: Queue) => void,
  ): Promise<Subscription> {
    this.assertConnected();
    return this.lifecycles.start({
      attach: async () => {
        const queue = source();
        const consumer = {
          credit: spec.prefetch,
          push: (frame: Frame, redelivered: boolean, tag: number) =>
            void deliver(deliveryOf(queue, frame, redelivered, tag)),
        };
        queue.attach(consumer);
        return {
          stop: async () => {
            consumer.credit = Number.NEGATIVE_INFINITY;
          },
          close: async () => {
            queue.detach(consumer);
            drop?.(queue);
          },
        };
      },
      report: (error) => this.context.reportError(error),
    });
  }

  private assertConnected(): void {
    if (this.connection === undefined) {
      throw new ConnectionError(`not connected to loopback broker "${this.broker.name}"`, {
        adapter: 'loopback',
      });
    }
  }
}

/** The envelope rides in the header bag, as on any protocol with headers. */
function frameOf(message: OutgoingMessage): Frame {
  return { body: message.body, headers: toHeaders(message) };
}

function deliveryOf(queue: Queue, frame: Frame, redelivered: boolean, tag: number): Delivery {
  return {
    body: frame.body,
    headers: frame.headers,
    redelivered,
    retryAddress: queue.address,
    raw: frame,
    ack: async () => queue.ack(tag),
    requeue: async () => queue.requeue(tag),
    release: () => queue.requeue(tag),
  };
}
