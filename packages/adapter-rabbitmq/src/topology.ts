/**
 * Declarations: queues, topic exchanges, streams and the delay queues, each declared once per
 * connection (cached, forgotten on reconnection) on a throwaway channel, because a declaration the
 * broker refuses (PRECONDITION_FAILED: the queue exists with other arguments) closes its channel.
 * A refusal becomes a clear error naming the destination and what to do.
 */
import { createHash } from 'node:crypto';
import { ConfigError, KeyedOnce, ValidationError } from '@omnibus/core';
import type { Channel } from 'amqplib';
import { ADAPTER, type Settings } from './options.js';
import { brokerError, replyCode, type Session } from './session.js';

/** Delay queues expire this long after their last declaration (their messages are long gone by then). */
const DELAY_QUEUE_LEASE_MS = 60_000;
/** Delay queues are declared again this often, so the lease never runs out under a waiting message. */
const DELAY_REDECLARE_MS = DELAY_QUEUE_LEASE_MS / 2;
export const MAX_NAME_BYTES = 255;

export class Topology {
  private readonly declared = new KeyedOnce();
  /** When each delay stage was last declared. */
  private readonly delaysAt = new Map<number, number>();

  constructor(
    private readonly session: Session,
    private readonly settings: Settings,
  ) {}

  /** Forgets what was declared (a new connection, or something turned out to be deleted). */
  clear(): void {
    this.declared.clear();
  }

  /** True when `queue(name, maxPriority)` already completed on this connection (no need to await it). */
  hasQueue(name: string, maxPriority?: number): boolean {
    return this.declared.done(`q:${name}:${maxPriority ?? ''}`);
  }

  /** True when `stream(name)` already completed on this connection. */
  hasStream(name: string): boolean {
    return this.declared.done(`s:${name}`);
  }

  /** True when `topic(name)` already completed on this connection. */
  hasTopic(name: string): boolean {
    return this.declared.done(`x:${name}`);
  }

  /**
   * A durable queue with the configured arguments and, when given, `x-max-priority`. A queue that
   * exists with other arguments is an error when this declaration asks for something it lacks
   * (priority, quorum, limits); a plain declaration accepts it as it is.
   */
  queue(name: string, maxPriority?: number): Promise<void> {
    checkName('queue', name);
    const args: Record<string, unknown> = { ...this.settings.queueArguments };
    if (maxPriority !== undefined) {
      if (this.settings.quorum) {
        return Promise.reject(
          new ConfigError(
            `queue "${name}": quorum queues have no priorities; drop maxPriority or use queueType 'classic'`,
            { adapter: ADAPTER },
          ),
        );
      }
      args['x-max-priority'] = maxPriority;
    }
    return this.declared.run(`q:${name}:${maxPriority ?? ''}`, async () => {
      try {
        await this.session.withChannel((ch) => ch.assertQueue(name, { durable: true, arguments: args }));
      } catch (error) {
        if (replyCode(error) !== 406 || Object.keys(args).length > 0) throw refused('queue', name, error);
        // A plain declaration of a queue declared with extras (priority, limits): use it as it is.
        await this.declare('queue', name, (ch) => ch.checkQueue(name));
      }
    });
  }

  /** A durable topic exchange named after the topic. */
  topic(name: string): Promise<void> {
    checkName('topic', name);
    return this.declared.run(`x:${name}`, () =>
      this.declare('topic exchange', name, (ch) => ch.assertExchange(name, 'topic', { durable: true })),
    );
  }

  /** A durable subscription: the queue `<topic>.<name>`, bound to the topic with `pattern`. */
  async durableSubscription(topic: string, durable: string, pattern: string): Promise<string> {
    const queue = subscriptionQueue(topic, durable);
    if (Buffer.byteLength(queue) > MAX_NAME_BYTES) {
      throw new ValidationError(
        `durable subscription "${durable}" of topic "${topic}" needs the queue "${queue}", longer than RabbitMQ's 255 bytes; use shorter names`,
        [],
        { adapter: ADAPTER },
      );
    }
    await this.topic(topic);
    await this.queue(queue);
    await this.declared.run(`b:${queue}:${pattern}`, () =>
      this.declare('binding of queue', queue, (ch) => ch.bindQueue(queue, topic, pattern)),
    );
    return queue;
  }

  /** A non-durable subscription: a server-named queue of this connection, deleted with its consumer. */
  async exclusiveSubscription(channel: Channel, topic: string, pattern: string): Promise<string> {
    await this.topic(topic);
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, topic, pattern);
    return queue;
  }

  /** A stream (`x-queue-type: stream`) for a log. */
  stream(name: string): Promise<void> {
    checkName('log', name);
    const args = { ...this.settings.streamArguments };
    return this.declared.run(`s:${name}`, () =>
      this.declare('stream', name, (ch) => ch.assertQueue(name, { durable: true, arguments: args })),
    );
  }

  /** A log group's offsets queue: it keeps only its latest message, the committed offset. */
  groupOffsets(name: string): Promise<void> {
    const args = { 'x-max-length': 1, 'x-overflow': 'drop-head' };
    return this.declared.run(`o:${name}`, () =>
      this.declare('offsets queue', name, (ch) => ch.assertQueue(name, { durable: true, arguments: args })),
    );
  }

  /**
   * The delay stage for `ms`, whose exchange this resolves with: a fanout exchange
   * `omnibus.delay.<ms>` bound to a queue of the same name whose messages expire after `ms` and are
   * then dead-lettered to the default exchange with their own routing key, the target queue. One TTL
   * for the whole queue keeps expiry in FIFO order, so every message waits exactly `ms`. Unused
   * delay queues expire, and their exchange with them.
   */
  async delay(ms: number): Promise<string> {
    const exchange = `omnibus.delay.${ms}`;
    if (Date.now() - (this.delaysAt.get(ms) ?? 0) >= DELAY_REDECLARE_MS) {
      this.declared.forget(exchange);
      this.delaysAt.set(ms, Date.now());
    }
    const args = {
      'x-message-ttl': ms,
      'x-dead-letter-exchange': '',
      'x-expires': ms + DELAY_QUEUE_LEASE_MS,
    };
    await this.declared.run(exchange, () =>
      this.declare('delay queue', exchange, async (ch) => {
        await ch.assertExchange(exchange, 'fanout', { durable: true, autoDelete: true });
        await ch.assertQueue(exchange, { durable: true, arguments: args });
        await ch.bindQueue(exchange, exchange, '');
      }),
    );
    return exchange;
  }

  /** Runs a declaration on a throwaway channel; a refusal becomes an error naming it. */
  private async declare(
    what: string,
    name: string,
    fn: (channel: Channel) => Promise<unknown>,
  ): Promise<void> {
    await this.session.withChannel(fn).catch((error: unknown) => {
      throw refused(what, name, error);
    });
  }
}

/** The queue of the durable subscription `durable` of `topic`. */
export function subscriptionQueue(topic: string, durable: string): string {
  return `${topic}.${durable}`;
}

/** Names of the queues that hold a log group's committed offset and its reader lock. */
export function groupQueueName(kind: 'offsets' | 'lock', log: string, group: string): string {
  // ":" cannot appear in Omnibus names, so log "a.b" + group "c" never meets log "a" + group "b.c".
  const name = `omnibus.${kind}:${log}:${group}`;
  if (Buffer.byteLength(name) <= MAX_NAME_BYTES) return name;
  return `omnibus.${kind}:${createHash('sha256').update(`${log}:${group}`).digest('hex')}`;
}

function checkName(kind: string, name: string): void {
  if (name.startsWith('amq.')) {
    throw new ValidationError(
      `${kind} name "${name}" starts with "amq.", which RabbitMQ reserves for itself`,
      [],
      { adapter: ADAPTER },
    );
  }
}

function refused(what: string, name: string, error: unknown): Error {
  const code = replyCode(error);
  const hint =
    code === 406
      ? 'it already exists with other arguments: declare it the same way everywhere (maxPriority, queueType, limits), or delete it'
      : code === 403
        ? 'the user may not configure it: check its permissions on this vhost'
        : 'the broker refused it';
  return brokerError(`cannot declare ${what} "${name}"`, error, hint);
}
