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

/**
 * One publish waiting for its confirm. A class with the confirm callback as its only closure: one is
 * made per message. Mandatory ones also wait in their channel's `mandatory` list, in publish order,
 * to be matched with a return.
 */
class Confirm {
  returned: string | undefined = undefined;
  /** Confirmed (or failed): no longer matched with returns. */
  done = false;
  readonly callback = (error: unknown): void => this.confirmed(error);

  constructor(
    private readonly publisher: Publisher,
    readonly open: OpenChannel,
    readonly exchange: string,
    readonly routingKey: string,
    readonly messageId: unknown,
    readonly mandatory: boolean,
    private readonly resolve: () => void,
    private readonly reject: (error: Error) => void,
  ) {}

  private confirmed(error: unknown): void {
    if (this.mandatory) this.open.mandatory.settled(this);
    if (error !== null && error !== undefined)
      this.reject(this.publisher.failure(this.open, target(this), error));
    else if (this.returned === undefined) this.resolve();
    else {
      const why = `the broker returned it as unroutable (${this.returned}); does the queue exist?`;
      this.reject(new PublishError(`${target(this)} did not take the message: ${why}`, { adapter: ADAPTER }));
    }
  }

  /** `publish()` threw: it never reached the channel. */
  failed(error: unknown): void {
    if (this.mandatory) this.open.mandatory.settled(this);
    this.reject(
      error instanceof RangeError
        ? new PublishError(`cannot publish to ${target(this)}: ${error.message}`, {
            adapter: ADAPTER,
            cause: error,
          })
        : lost(`publishing to ${target(this)}`, error),
    );
  }
}

/** What a publish went to, for errors (built only when one happens). */
function target(confirm: Confirm): string {
  return confirm.exchange === '' ? `queue "${confirm.routingKey}"` : `exchange "${confirm.exchange}"`;
}

/**
 * Mandatory publishes awaiting their confirm, oldest first: an array with a moving head, not a Set
 * churned per message. Confirms come (nearly always) in publish order, so the head moves on as they do.
 */
class MandatoryList {
  private readonly items: Confirm[] = [];
  private head = 0;

  add(confirm: Confirm): void {
    this.items.push(confirm);
  }

  settled(confirm: Confirm): void {
    confirm.done = true;
    const items = this.items;
    while (this.head < items.length && items[this.head]!.done) this.head++;
    if (this.head === items.length) {
      items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      items.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The oldest unconfirmed publish that matches a returned message. */
  match(exchange: string, routingKey: string, messageId: unknown): Confirm | undefined {
    for (let i = this.head; i < this.items.length; i++) {
      const c = this.items[i]!;
      if (
        !c.done &&
        c.returned === undefined &&
        c.exchange === exchange &&
        c.routingKey === routingKey &&
        c.messageId === messageId
      )
        return c;
    }
    return undefined;
  }
}

interface OpenChannel {
  readonly channel: ConfirmChannel;
  /** Why the broker closed it, when it did. */
  error: Error | undefined;
  /** Mandatory publishes awaiting their confirm, in publish order, to match returns. */
  readonly mandatory: MandatoryList;
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
   * Publishes and resolves on the broker's confirm. `options.mandatory`: an unroutable message is an
   * error (sends to a queue); without it, routing to no queue is fine (topic publishes). The hot
   * path is synchronous up to amqplib's publish: no async frame while the channel is open and writable.
   */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: AmqpOptions.Publish,
  ): Promise<void> {
    const open = this.current;
    if (open === undefined || open.drained !== undefined)
      return this.publishLater(exchange, routingKey, content, options);
    return new Promise<void>((resolve, reject) => {
      const mandatory = options.mandatory === true;
      const confirm = new Confirm(
        this,
        open,
        exchange,
        routingKey,
        options.messageId,
        mandatory,
        resolve,
        reject,
      );
      if (mandatory) open.mandatory.add(confirm);
      try {
        const writable = open.channel.publish(exchange, routingKey, content, options, confirm.callback);
        if (!writable) open.drained ??= drained(open);
      } catch (error) {
        confirm.failed(error);
      }
    });
  }

  /** Opens the channel, or waits for its buffer to drain, then publishes. */
  private async publishLater(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: AmqpOptions.Publish,
  ): Promise<void> {
    let open = await this.ready();
    while (open.drained !== undefined) {
      await open.drained;
      open = await this.ready();
    }
    return this.publish(exchange, routingKey, content, options);
  }

  close(): void {
    closeQuietly(this.current?.channel);
    this.current = undefined;
  }

  /** Why a publish got no positive confirm. */
  failure(open: OpenChannel, target: string, error: unknown): Error {
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
    const open: OpenChannel = {
      channel,
      error: undefined,
      mandatory: new MandatoryList(),
      drained: undefined,
    };
    channel.on('error', (error: Error) => {
      open.error = error;
      // Something declared earlier is gone (deleted by someone else): declare it again next time.
      if (replyCode(error) === 404) this.onNotFound();
    });
    channel.on('return', (message: Message) => {
      const f = message.fields as { exchange: string; routingKey: string; replyText?: string };
      const confirm = open.mandatory.match(f.exchange, f.routingKey, message.properties.messageId);
      if (confirm !== undefined) confirm.returned = f.replyText ?? 'NO_ROUTE';
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
