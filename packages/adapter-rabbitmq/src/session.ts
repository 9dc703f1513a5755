/**
 * The connection: amqplib's opt-in recovery (reconnect with exponential backoff and jitter) plus
 * what it lacks. amqplib reconnects the connection only; channels, consumers and topology die with
 * the old one. So every channel user here is an `Attachable` that is told when the connection goes
 * and attaches itself again to the next one. With several hosts, a failed or lost connection moves
 * to the next host: amqplib reads the connection fields object on every attempt, so it is updated
 * in place.
 */
import type { AdapterContext } from '@omnibus/core';
import { ConfigError, ConnectionError, describeError, OmnibusError } from '@omnibus/core';
import {
  type Options as AmqpOptions,
  type Channel,
  type ChannelModel,
  connect,
  type RecoveringChannelModel,
} from 'amqplib';
import { ADAPTER, type Settings } from './options.js';

/** Something that holds channels: detached when the connection is lost, attached to every new one. */
export interface Attachable {
  /** Opens its channels (and consumers) on `model`. Called again after every reconnection. */
  attach(model: ChannelModel): Promise<void>;
  /** The connection is gone, and its channels with it. */
  detach(): void;
}

const MAX_ATTACH_DELAY_MS = 30_000;

/**
 * One attach per connection at a time: a reconnection, a re-attach timer and a standby reader's
 * poll may all try at once, and two would consume twice.
 */
export class AttachOnce {
  private current: { readonly model: ChannelModel; readonly done: Promise<void> } | undefined;

  run(model: ChannelModel, attach: () => Promise<void>): Promise<void> {
    if (this.current?.model === model) return this.current.done;
    const done = attach().finally(() => {
      if (this.current?.done === done) this.current = undefined;
    });
    this.current = { model, done };
    return done;
  }
}

export class Session {
  /** The live connection, or undefined while reconnecting. */
  model: ChannelModel | undefined;
  private recovering: RecoveringChannelModel | undefined;
  private readonly attachables = new Set<Attachable>();
  private readonly retries = new Map<Attachable, { attempt: number; timer: NodeJS.Timeout | undefined }>();
  private readonly freshListeners: (() => void)[] = [];
  private hostIndex = 0;
  private readonly fields: AmqpOptions.Connect;
  private closing = false;

  constructor(
    private readonly settings: Settings,
    private readonly context: AdapterContext,
  ) {
    this.fields = { ...settings.connectFields(0) };
  }

  get closed(): boolean {
    return this.closing;
  }

  get clientId(): string {
    return this.context.clientId;
  }

  /** Runs on every new connection before attachables are re-attached (e.g. forget declared topology). */
  onFresh(listener: () => void): void {
    this.freshListeners.push(listener);
  }

  async open(): Promise<void> {
    const s = this.settings;
    const recovering = await connect(this.fields, {
      ...s.socket,
      clientProperties: { connection_name: this.context.clientId, product: 'omnibus (amqplib)' },
      recovery: {
        initialDelay: s.reconnectDelayMs,
        maxDelay: s.reconnectMaxDelayMs,
        factor: 2,
        jitter: 0.2,
        maxRetries: Number.POSITIVE_INFINITY,
        initialMaxRetries: s.connectRetries,
        waitForConnect: false,
      },
    });
    this.recovering = recovering;
    const log = this.context.logger;
    recovering.on('error', (error: Error) =>
      log.debug(`[omnibus] [rabbitmq] connection error: ${error.message}`),
    );
    recovering.on('handler-error', (error: Error, event: string) =>
      this.context.reportError(
        new ConnectionError(`internal error in the "${event}" listener: ${error.message}`, {
          adapter: ADAPTER,
          cause: error,
          retriable: false,
        }),
      ),
    );
    recovering.on('connect', (model: ChannelModel) => this.connected(model));
    recovering.on('disconnect', (error: Error) => this.disconnected(error));
    recovering.on('connect-failed', (error: Error) => {
      log.warn(`[omnibus] [rabbitmq] connection attempt to ${this.where()} failed: ${error.message}`);
      this.nextHost();
    });
    recovering.on('blocked', (reason: string) =>
      log.warn(`[omnibus] [rabbitmq] the broker blocks publishing (${reason}); sends wait for it`),
    );
    recovering.on('unblocked', () => log.info('[omnibus] [rabbitmq] the broker unblocked publishing'));
    try {
      await recovering.waitForConnect();
    } catch (error) {
      await recovering.close().catch(() => undefined);
      throw new ConnectionError(`could not connect to ${s.redacted}: ${describeError(error)}`, {
        adapter: ADAPTER,
        cause: error,
        retriable: false,
      });
    }
  }

  /** Registers `a` and attaches it now when connected. Rejects when that first attach fails. */
  async add(a: Attachable): Promise<void> {
    this.attachables.add(a);
    const model = this.model;
    if (model === undefined) return;
    try {
      await a.attach(model);
    } catch (error) {
      this.remove(a);
      throw error;
    }
  }

  remove(a: Attachable): void {
    this.attachables.delete(a);
    const retry = this.retries.get(a);
    if (retry?.timer !== undefined) clearTimeout(retry.timer);
    this.retries.delete(a);
  }

  /** `a` lost its channel while the connection stayed up (e.g. the broker cancelled its consumer): attach it again soon. */
  reattach(a: Attachable, reason: Error | undefined): void {
    if (this.closing || !this.attachables.has(a) || this.model === undefined) return;
    const retry = this.retries.get(a) ?? { attempt: 0, timer: undefined };
    if (retry.timer !== undefined) return;
    this.retries.set(a, retry);
    const delayMs = Math.min(MAX_ATTACH_DELAY_MS, 250 * 2 ** retry.attempt);
    retry.attempt++;
    if (reason !== undefined && retry.attempt > 1) {
      this.context.logger.warn(
        `[omnibus] [rabbitmq] re-attaching a consumer in ${delayMs} ms: ${reason.message}`,
      );
    }
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      const model = this.model;
      if (model !== undefined && !this.closing && this.attachables.has(a)) void this.attachOne(a, model);
    }, delayMs);
    retry.timer.unref();
  }

  /** A channel on the live connection; rejects with a retriable ConnectionError while reconnecting. */
  async channel(): Promise<Channel> {
    const model = this.require();
    try {
      return await model.createChannel();
    } catch (error) {
      throw lost('opening a channel', error);
    }
  }

  /**
   * Runs `fn` on a throwaway channel and closes it: for calls that may fail with a channel error
   * (a declaration with other arguments, a locked queue), which would otherwise close a channel
   * that consumers live on.
   */
  async withChannel<R>(fn: (channel: Channel) => Promise<R>): Promise<R> {
    const channel = await this.channel();
    // The failing call rejects with the same error; the event must not crash the process.
    channel.on('error', () => undefined);
    try {
      return await fn(channel);
    } finally {
      closeQuietly(channel);
    }
  }

  require(): ChannelModel {
    if (this.model === undefined || this.closing) {
      throw new ConnectionError(
        this.closing
          ? 'the connection is closed'
          : `not connected to ${this.settings.redacted} (reconnecting)`,
        { adapter: ADAPTER, retriable: !this.closing },
      );
    }
    return this.model;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const retry of this.retries.values()) if (retry.timer !== undefined) clearTimeout(retry.timer);
    this.retries.clear();
    this.attachables.clear();
    this.model = undefined;
    await this.recovering?.close().catch(() => undefined);
  }

  private connected(model: ChannelModel): void {
    if (this.closing) return;
    this.model = model;
    for (const listener of this.freshListeners) listener();
    this.context.setState('connected');
    for (const a of this.attachables) void this.attachOne(a, model);
  }

  private disconnected(error: Error): void {
    this.model = undefined;
    if (this.closing) return;
    this.context.setState(
      'reconnecting',
      new ConnectionError(`lost the connection to ${this.where()}: ${error.message}; reconnecting`, {
        adapter: ADAPTER,
        cause: error,
      }),
    );
    for (const retry of this.retries.values()) if (retry.timer !== undefined) clearTimeout(retry.timer);
    this.retries.clear();
    for (const a of this.attachables) a.detach();
    this.nextHost();
  }

  private async attachOne(a: Attachable, model: ChannelModel): Promise<void> {
    try {
      await a.attach(model);
      this.retries.delete(a);
    } catch (error) {
      if (this.closing || this.model !== model || !this.attachables.has(a)) return;
      const reason = error instanceof Error ? error : new Error(describeError(error));
      this.context.reportError(
        new ConnectionError(`could not resume a consumer after reconnecting: ${reason.message}`, {
          adapter: ADAPTER,
          cause: error,
        }),
      );
      this.reattach(a, reason);
    }
  }

  private nextHost(): void {
    if (this.settings.hosts.length < 2) return;
    this.hostIndex++;
    Object.assign(this.fields, this.settings.connectFields(this.hostIndex));
  }

  private where(): string {
    const host = this.settings.hosts[this.hostIndex % this.settings.hosts.length]!;
    return `${host.host}:${host.port}`;
  }
}

/** A channel for a consumer; a failure to open one is the connection's. */
export async function openChannel(model: ChannelModel, what: string): Promise<Channel> {
  try {
    return await model.createChannel();
  } catch (error) {
    throw lost(what, error);
  }
}

/** A broker call failed because the connection or channel went away: worth retrying after reconnection. */
export function lost(what: string, error: unknown): ConnectionError {
  return new ConnectionError(`${what}: ${describeError(error)}`, {
    adapter: ADAPTER,
    cause: error,
    retriable: true,
  });
}

/**
 * Why subscribing failed, as an Omnibus error: the broker refusing the call is a ConfigError (no
 * permission, a queue exclusive to another connection, a stream not there); anything else is the
 * connection, worth retrying. A stream declared a moment ago may not have its replica up on this
 * node yet (PRECONDITION_FAILED "does not have a replica on the local node"): that passes, so it
 * is retriable too.
 */
export function subscribeError(what: string, error: unknown): Error {
  if (error instanceof OmnibusError) return error;
  const text = describeError(error);
  if (!isRefusal(error) || /does not have a replica on the local node/.test(text)) return lost(what, error);
  return new ConfigError(`${what}: the broker refused (${text.replace(/^Operation failed: \w+; /, '')})`, {
    adapter: ADAPTER,
    cause: error,
  });
}

/** The AMQP reply code of a channel or connection error, when there is one. */
export function replyCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' && code >= 300 && code < 600 ? code : undefined;
}

/** Channel-level refusals caused by the call itself, not by the connection: not worth retrying as is. */
export function isRefusal(error: unknown): boolean {
  const code = replyCode(error);
  return code === 403 || code === 404 || code === 405 || code === 406 || code === 311;
}

export function closeQuietly(channel: Channel | undefined): void {
  if (channel === undefined) return;
  try {
    channel.close().catch(() => undefined);
  } catch {
    // Already closed.
  }
}
