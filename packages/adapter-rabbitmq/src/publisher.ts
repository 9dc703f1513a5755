/**
 * Every publish goes through one confirm channel per connection, and resolves on the broker's
 * confirm: a nack is a PublishError, a mandatory message the broker returned (no queue to route
 * to) is a PublishError, and a message whose confirm never came because the channel or connection
 * closed is a retriable ConnectionError (core publishes it again after reconnection). Nothing is
 * reported as sent that was not. `publish()` returning false means the socket buffer is full:
 * later publishes wait for `drain` instead of buffering without bound.
 */
import { ConnectionError, describeError, PublishError } from '@omnibus/core';
import type { Options as AmqpOptions, ConfirmChannel, Message } from 'amqplib';
import { ADAPTER } from './options.js';
import { closeQuietly, lost, replyCode, type Session } from './session.js';

interface Pending {
  readonly exchange: string;
  readonly routingKey: string;
  readonly messageId: unknown;
  returned: string | undefined;
}

interface OpenChannel {
  readonly channel: ConfirmChannel;
  /** Why the broker closed it, when it did. */
  error: Error | undefined;
  /** Mandatory publishes awaiting their confirm, in publish order, to match returns. */
  readonly mandatory: Set<Pending>;
  /** Set while `publish()` reported a full buffer; resolves on `drain` (or close). */
  drained: Promise<void> | undefined;
}

export class Publisher {
  private current: OpenChannel | undefined;
  private opening: Promise<OpenChannel> | undefined;

  constructor(
    private readonly session: Session,
    /** Called when the broker closed the channel because something it was told about is gone (404). */
    private readonly onNotFound: () => void,
  ) {}

  /**
   * Publishes and resolves on the broker's confirm. `mandatory`: an unroutable message is an error
   * (sends to a queue); without it, routing to no queue is fine (topic publishes).
   */
  async publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: AmqpOptions.Publish,
    mandatory: boolean,
  ): Promise<void> {
    // The hot path stays synchronous up to amqplib's publish: no await while the channel is open.
    let open = this.current ?? (await this.ready());
    while (open.drained !== undefined) {
      await open.drained;
      open = await this.ready();
    }
    const target = exchange === '' ? `queue "${routingKey}"` : `exchange "${exchange}"`;
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = { exchange, routingKey, messageId: options.messageId, returned: undefined };
      if (mandatory) open.mandatory.add(pending);
      const confirmed = (error: unknown) => {
        open.mandatory.delete(pending);
        if (error !== null && error !== undefined) reject(this.failure(open, target, error));
        else if (pending.returned === undefined) resolve();
        else {
          const why = `the broker returned it as unroutable (${pending.returned}); does the queue exist?`;
          reject(new PublishError(`${target} did not take the message: ${why}`, { adapter: ADAPTER }));
        }
      };
      try {
        const writable = open.channel.publish(
          exchange,
          routingKey,
          content,
          { ...options, mandatory },
          confirmed,
        );
        if (!writable) open.drained ??= drained(open);
      } catch (error) {
        open.mandatory.delete(pending);
        reject(
          error instanceof RangeError
            ? new PublishError(`cannot publish to ${target}: ${error.message}`, {
                adapter: ADAPTER,
                cause: error,
              })
            : lost(`publishing to ${target}`, error),
        );
      }
    });
  }

  close(): void {
    closeQuietly(this.current?.channel);
    this.current = undefined;
  }

  private failure(open: OpenChannel, target: string, error: unknown): Error {
    const message = describeError(error);
    if (message === 'message nacked') {
      return new PublishError(`the broker refused the message for ${target} (negative confirm)`, {
        adapter: ADAPTER,
      });
    }
    const code = replyCode(open.error);
    if (code === 403) {
      return new PublishError(`the broker refused the message for ${target}: ${open.error!.message}`, {
        adapter: ADAPTER,
        cause: open.error,
      });
    }
    return new ConnectionError(
      `no confirm for the message to ${target}: the channel closed (${open.error?.message ?? message})`,
      { adapter: ADAPTER, cause: open.error ?? error, retriable: true },
    );
  }

  private ready(): Promise<OpenChannel> {
    if (this.current !== undefined) return Promise.resolve(this.current);
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(): Promise<OpenChannel> {
    const model = this.session.require();
    const channel = await model.createConfirmChannel().catch((error: unknown) => {
      throw lost('opening the publishing channel', error);
    });
    const open: OpenChannel = { channel, error: undefined, mandatory: new Set(), drained: undefined };
    channel.on('error', (error: Error) => {
      open.error = error;
      // Something declared earlier is gone (deleted by someone else): declare it again next time.
      if (replyCode(error) === 404) this.onNotFound();
    });
    channel.on('return', (message: Message) => {
      const f = message.fields as { exchange: string; routingKey: string; replyText?: string };
      for (const pending of open.mandatory) {
        if (
          pending.returned === undefined &&
          pending.exchange === f.exchange &&
          pending.routingKey === f.routingKey &&
          pending.messageId === message.properties.messageId
        ) {
          pending.returned = f.replyText ?? 'NO_ROUTE';
          break;
        }
      }
    });
    channel.on('close', () => {
      if (this.current === open) this.current = undefined;
    });
    this.current = open;
    return open;
  }
}

/** Resolves when the channel's buffer drained, or the channel closed; `open.drained` is cleared then. */
function drained(open: OpenChannel): Promise<void> {
  return new Promise<void>((done) => {
    const finish = () => {
      open.channel.off('drain', finish);
      open.channel.off('close', finish);
      open.drained = undefined;
      done();
    };
    open.channel.on('drain', finish);
    open.channel.on('close', finish);
  });
}
