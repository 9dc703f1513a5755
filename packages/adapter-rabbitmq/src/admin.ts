/**
 * Operations: queue depth, purge, and a durable subscription's address and deletion, each on a
 * throwaway channel, because the passive declaration that answers them closes its channel when the
 * queue does not exist (404 NOT_FOUND) or is exclusive to another connection (405).
 *
 * Browsing, a group's reset and its lag are `none` here (see `ADMIN_CAPABILITIES`).
 */
import type { QueueSpec, Support, TopicSpec } from '@omnibus/core';
import { ValidationError } from '@omnibus/core';
import type { Channel } from 'amqplib';
import type { ConsumeContext } from './consume.js';
import { ADAPTER } from './options.js';
import { brokerError, replyCode } from './session.js';
import { MAX_NAME_BYTES, subscriptionQueue } from './topology.js';

/** The operations capabilities (README.md says why for each one that is not `native`). */
export const ADMIN_CAPABILITIES = {
  depth: 'native',
  purge: 'native',
  // basic.get then requeue sets the redelivered flag (and counts a delivery on quorum queues): no look is free.
  browse: 'none',
  // No redrive primitive (a shovel cannot strip headers): core consumes and sends confirmed copies.
  redrive: 'emulated',
  // A durable subscription is a queue: a copy sent to it by the default exchange reaches it alone.
  redriveSubscription: 'emulated',
  deleteSubscription: 'native',
  // Resetting to 'latest' (or past the last entry) needs a stream's end offset, which AMQP 0-9-1 never tells (declare-ok says 0 messages).
  resetGroup: 'none',
  // The same: a group's lag needs the stream's end offset.
  lag: 'none',
} as const satisfies Record<string, Support>;

/** What a passive declaration says about a queue, or undefined when there is none. */
interface QueueState {
  readonly messageCount: number;
  readonly consumerCount: number;
}

export class Admin {
  constructor(private readonly ctx: ConsumeContext) {}

  /** The messages ready in `queue` (not those out with a consumer); 0 for a queue that does not exist. */
  async depth(queue: QueueSpec): Promise<number> {
    return (await this.inspect(queue.name, `counting queue "${queue.name}"`))?.messageCount ?? 0;
  }

  /** Removes what `queue` holds but has not delivered; resolves with how many (0 when there is no queue). */
  async purge(queue: QueueSpec): Promise<number> {
    const what = `purging queue "${queue.name}"`;
    // Purging a queue that does not exist is a 404, which closes the channel: the throwaway one.
    return this.onQueue(queue.name, what, async (ch) => (await ch.purgeQueue(queue.name)).messageCount, 0);
  }

  /** The durable subscription's queue: `sendTo` it, through the default exchange, reaches it alone. */
  async subscriptionAddress(topic: TopicSpec, durable: string): Promise<string> {
    const queue = subscriptionQueue(topic.name, durable);
    const state = await this.inspect(queue, `finding durable subscription "${durable}" of "${topic.name}"`);
    if (state === undefined) {
      throw new ValidationError(`topic "${topic.name}" has no durable subscription "${durable}"`, [], {
        adapter: ADAPTER,
      });
    }
    return queue;
  }

  /**
   * Deletes the durable subscription's queue (its bindings go with it), unless a subscriber is
   * attached on any connection: `queue.delete` with `if-unused` makes the broker check that and
   * delete in one step. Its dead-letter queue stays.
   */
  async deleteSubscription(topic: TopicSpec, durable: string): Promise<boolean> {
    const queue = subscriptionQueue(topic.name, durable);
    const what = `deleting durable subscription "${durable}" of "${topic.name}"`;
    const state = await this.inspect(queue, what);
    if (state === undefined) return false;
    const attached = (count: number) =>
      new ValidationError(
        `durable subscription "${durable}" of "${topic.name}" has ${count} subscriber(s) attached; close them first`,
        [],
        { adapter: ADAPTER },
      );
    if (state.consumerCount > 0) throw attached(state.consumerCount);
    const deleted = await this.ctx.session
      .withChannel((ch) => ch.deleteQueue(queue, { ifUnused: true }))
      .then(
        () => true,
        (error: unknown) => {
          // 406 PRECONDITION_FAILED: a subscriber attached since the look above.
          if (replyCode(error) === 406) throw attached(1);
          throw brokerError(what, error);
        },
      );
    // This connection declared it (and its binding) before: a new subscription must declare it again.
    this.ctx.topology.clear();
    return deleted;
  }

  /** A passive declaration of `queue`: its counts, or undefined when it does not exist. */
  private inspect(queue: string, what: string): Promise<QueueState | undefined> {
    return this.onQueue(queue, what, (ch) => ch.checkQueue(queue), undefined);
  }

  /**
   * Runs `fn` about `queue` on a throwaway channel; `missing` when the queue does not exist (a name
   * longer than RabbitMQ's 255 bytes cannot exist, and would not even encode).
   */
  private async onQueue<R, M>(
    queue: string,
    what: string,
    fn: (ch: Channel) => Promise<R>,
    missing: M,
  ): Promise<R | M> {
    if (Buffer.byteLength(queue) > MAX_NAME_BYTES) return missing;
    try {
      return await this.ctx.session.withChannel(fn);
    } catch (error) {
      if (replyCode(error) === 404) return missing;
      throw brokerError(what, error);
    }
  }
}
