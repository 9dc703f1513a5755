/**
 * Operations over STOMP, per broker profile. STOMP itself has no admin frames, so each one is what a
 * broker's STOMP extension allows, on a short connection of its own (an ERROR ends only that one):
 *
 * - ActiveMQ: a queue browser (`browser: true` on SUBSCRIBE; the broker sends the queue's messages,
 *   then a MESSAGE with `browser: end`) gives `browse`. It shows messages out with a consumer and
 *   unsettled as well, so what it shows, counted, is not the depth.
 *   A durable topic subscription is deleted by UNSUBSCRIBE with `activemq.subscriptionName` from a
 *   connection with the subscriber's client-id; ActiveMQ refuses that connection while the
 *   subscriber is connected, which is how an attached subscriber is told apart.
 * - RabbitMQ: a durable subscription is a named queue, so a copy sent to `/amq/queue/<name>` reaches
 *   it alone (redrive). STOMP cannot tell whether a consumer is attached to it, nor count, browse or
 *   purge a queue: those stay `none` (see README).
 */
import {
  type BrowsedMessage,
  ConnectionError,
  type QueueSpec,
  type TopicSpec,
  unsupported,
  ValidationError,
  withTimeout,
} from '@omnibus/core';
import type { StompSettings } from './options.js';
import { type BrokerProfile, topicWord } from './profiles.js';
import { clientIdInUse, ErrorFrame, type SessionSubscription, StompSession } from './session.js';
import { boundedName } from './stomp-adapter.js';
import { received } from './wire.js';

const ADAPTER = 'stomp';

/** A durable subscription's queue on RabbitMQ. */
export function rabbitmqDurableQueue(topic: string, durable: string): string {
  return boundedName(`omnibus.dsub.${topicWord(topic)}~${durable}`);
}

/**
 * A durable subscriber's client-id on ActiveMQ, which keys a durable subscription by (client-id,
 * subscription name) and allows one connection per client-id.
 */
export function activemqDurableClientId(topic: string, durable: string): string {
  return boundedName(`omnibus~${topicWord(topic)}~${durable}`);
}

/** The seven operation primitives of the STOMP adapter for one profile. */
export class StompAdmin {
  readonly resetGroup = unsupported(ADAPTER, 'resetGroup');
  readonly groupLag = unsupported(ADAPTER, 'lag');
  readonly purge = unsupported(ADAPTER, 'purge');
  readonly depth = unsupported(ADAPTER, 'depth');

  constructor(
    private readonly settings: StompSettings,
    private readonly profile: BrokerProfile,
  ) {}

  async browse(queue: QueueSpec, limit: number): Promise<BrowsedMessage[]> {
    if (this.profile.capabilities.browse === 'none') return unsupported(ADAPTER, 'browse')();
    return this.browseQueue(queue, limit);
  }

  /**
   * RabbitMQ: `/amq/queue/<subscription queue>`, once a SUBSCRIBE there proves the queue exists (a
   * SEND to a missing queue is dropped without an error). The probe's connection closes at once; a
   * message it was handed meanwhile (prefetch 1) goes back to the queue, flagged redelivered.
   */
  async subscriptionAddress(topic: TopicSpec, durable: string): Promise<string> {
    if (this.profile.capabilities.redriveSubscription === 'none' || this.profile.name !== 'rabbitmq') {
      return unsupported(ADAPTER, 'redriveSubscription')();
    }
    const address = `/amq/queue/${rabbitmqDurableQueue(topic.name, durable)}`;
    const what = `durable subscription "${durable}" of topic "${topic.name}"`;
    const session = await this.open(
      {
        what,
        headers: () => ({ destination: address, ack: 'client-individual', 'prefetch-count': '1' }),
        // Never settled: the DISCONNECT gives it back.
        message: () => undefined,
      },
      {},
      (cause) =>
        /not_found|NOT_FOUND/.test(cause.message) ? new ValidationError(`${what} does not exist`) : undefined,
    );
    await session.close();
    return address;
  }

  /**
   * ActiveMQ: UNSUBSCRIBE with `activemq.subscriptionName` from a connection with the subscriber's
   * client-id. The broker allows one connection per client-id, so while the subscriber is
   * connected this connection is refused and nothing is deleted.
   */
  async deleteSubscription(topic: TopicSpec, durable: string): Promise<boolean> {
    if (this.profile.capabilities.deleteSubscription === 'none' || this.profile.name !== 'activemq') {
      return unsupported(ADAPTER, 'deleteSubscription')();
    }
    const what = `durable subscription "${durable}" of topic "${topic.name}"`;
    const session = await this.open(
      undefined,
      { 'client-id': activemqDurableClientId(topic.name, durable) },
      (cause) =>
        clientIdInUse(cause)
          ? new ValidationError(
              `${what} has a subscriber attached: close it before deleting the subscription`,
            )
          : undefined,
    );
    try {
      await session.command('UNSUBSCRIBE', { id: '1', 'activemq.subscriptionName': durable }, (cause) =>
        /no durable subscription exists/i.test(cause.message)
          ? new Missing()
          : new ConnectionError(`the broker refused to delete ${what}: ${cause.message}`, {
              adapter: ADAPTER,
              cause,
              retriable: false,
            }),
      );
      return true;
    } catch (error) {
      if (error instanceof Missing) return false;
      throw error;
    } finally {
      await session.close();
    }
  }

  /**
   * Browses `queue` (ActiveMQ `browser: true`) until `limit` messages or the broker's `browser: end`.
   * Browsing acknowledges nothing and counts no delivery: the messages stay as they were.
   */
  private async browseQueue(queue: QueueSpec, limit: number): Promise<BrowsedMessage[]> {
    const got: BrowsedMessage[] = [];
    let done: (() => void) | undefined;
    let lost: ((error: Error) => void) | undefined;
    const finished = new Promise<void>((resolve, reject) => {
      done = resolve;
      lost = reject;
    });
    const session = await this.open(
      {
        what: `browsing queue "${queue.name}"`,
        headers: () => ({ destination: `/queue/${queue.name}`, browser: 'true', ack: 'auto' }),
        message: (headers, body) => {
          if (headers.browser === 'end') return done?.();
          if (got.length >= limit) return;
          got.push(received(headers, body, this.profile.stableIds));
          if (got.length >= limit) done?.();
        },
      },
      {},
      undefined,
      // A browser made again after a reconnection would start over: the operation fails instead.
      (error) => lost?.(error),
    );
    try {
      const timeoutMs = this.settings.operationTimeoutMs;
      await withTimeout(
        finished,
        timeoutMs,
        () =>
          new ConnectionError(
            `browsing queue "${queue.name}": the broker did not finish within ${timeoutMs} ms`,
            { adapter: ADAPTER, retriable: true },
          ),
      );
    } finally {
      await session.close();
    }
    return got;
  }

  /**
   * A connection of its own (and its subscription, if any); a refusal the operation understands
   * (`understood`) becomes that error, any other stays the connection's.
   */
  private async open(
    subscription: SessionSubscription | undefined,
    connectHeaders: Record<string, string>,
    understood: (cause: Error) => Error | undefined = () => undefined,
    onLost: (error: Error) => void = () => undefined,
  ): Promise<StompSession> {
    const session = new StompSession(
      this.settings,
      {
        state: (state, error) => {
          if (state === 'reconnecting')
            onLost(error ?? new ConnectionError('connection lost', { adapter: ADAPTER }));
        },
        error: onLost,
      },
      subscription,
      connectHeaders,
    );
    try {
      await session.open();
    } catch (error) {
      const cause = refusalOf(error);
      const known = cause === undefined ? undefined : understood(cause);
      if (known !== undefined) throw known;
      throw error;
    }
    return session;
  }
}

/** The broker's words in a refusal: an ERROR frame, itself or as the cause of a refused subscription. */
function refusalOf(error: unknown): Error | undefined {
  if (error instanceof ErrorFrame) return error;
  if (error instanceof Error && error.cause instanceof ErrorFrame) return error.cause;
  return undefined;
}

/** UNSUBSCRIBE named no durable subscription. */
class Missing extends Error {}
