/**
 * The connection: amqplib's opt-in recovery (reconnect with exponential backoff and jitter) plus
 * what it lacks. amqplib reconnects the connection only; channels, consumers and topology die with
 * the old one, so every consumer is a core `Lifecycle` that this session tells when the connection
 * comes and goes. With several hosts, a failed or lost connection moves to the next host: amqplib
 * reads the connection fields object on every attempt, so it is updated in place.
 */
import type { AdapterContext, Attached, Lifecycle } from '@omnibus/core';
import { ConfigError, ConnectionError, describeError, Lifecycles, OmnibusError } from '@omnibus/core';
import {
  type Options as AmqpOptions,
  type Channel,
  type ChannelModel,
  connect,
  type RecoveringChannelModel,
} from 'amqplib';
import { ADAPTER, type Settings } from './options.js';
import { coalesceWrites } from './writes.js';

export class Session {
  /** The live connection, or undefined while reconnecting. */
  model: ChannelModel | undefined;
  private recovering: RecoveringChannelModel | undefined;
  private readonly lifecycles = new Lifecycles<ChannelModel>();
  /** Runs on every new connection before consumers attach again (to forget declared topology). */
  onFresh: () => void = () => undefined;
  private hostIndex = 0;
  private readonly fields: AmqpOptions.Connect;
  private closing = false;

  constructor(
    private readonly settings: Settings,
    readonly context: AdapterContext,
  ) {
    this.fields = { ...settings.connectFields(0) };
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
      log.debug({ error: error.message }, `connection error: ${error.message}`),
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
      log.warn({ error: error.message }, `connection attempt to ${this.where()} failed: ${error.message}`);
      this.nextHost();
    });
    recovering.on('blocked', (reason: string) =>
      log.warn({ reason }, `the broker blocks publishing (${reason}); sends wait for it`),
    );
    recovering.on('unblocked', () => log.info({}, 'the broker unblocked publishing'));
    try {
      await recovering.waitForConnect();
    } catch (error) {
      await recovering.close().catch(() => undefined);
      throw new ConnectionError(`could not connect to ${s.redacted}: ${this.explainRefusal(error)}`, {
        adapter: ADAPTER,
        cause: error,
        retriable: false,
      });
    }
  }

  /**
   * amqplib reports a ConnectionClose in answer to ConnectionOpen (the login was accepted, the vhost
   * was not) as "Expected ConnectionOpenOk; got <ConnectionClose channel:0>", without the broker's
   * reason: say what it means.
   */
  private explainRefusal(error: unknown): string {
    const text = describeError(error);
    if (!/Expected ConnectionOpenOk; got <ConnectionClose/.test(text)) return text;
    const vhost = decodeURIComponent(this.fields.vhost ?? '/');
    return `the broker refused vhost "${vhost}": it does not exist, or this user has no permission on it (${text})`;
  }

  /**
   * Starts a subscription that `attach` opens on the live connection now (rejecting when that
   * fails) and on every later one.
   */
  subscribe(
    attach: (model: ChannelModel, broken: (reason?: Error) => void) => Promise<Attached>,
  ): Promise<Lifecycle<ChannelModel>> {
    const report = (error: Error) =>
      this.context.reportError(
        new ConnectionError(`could not resume a consumer: ${error.message}`, {
          adapter: ADAPTER,
          cause: error,
        }),
      );
    return this.lifecycles.start({ attach, report }, this.require());
  }

  /**
   * Runs `fn` on a throwaway channel and closes it: for calls that may fail with a channel error
   * (a declaration with other arguments, a locked queue), which would otherwise close a channel
   * that consumers live on.
   */
  async withChannel<R>(fn: (channel: Channel) => Promise<R>): Promise<R> {
    const channel = await openChannel(this.require(), 'opening a channel');
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
    this.model = undefined;
    await this.lifecycles.closeAll();
    await this.recovering?.close().catch(() => undefined);
  }

  private connected(model: ChannelModel): void {
    if (this.closing) return;
    if (this.settings.coalesceWrites) coalesceWrites(model);
    this.model = model;
    this.onFresh();
    this.context.setState('connected');
    this.lifecycles.connected(model);
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
    this.lifecycles.disconnected();
    this.nextHost();
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
 * A broker call's failure as an Omnibus error: the broker refusing the call itself is a ConfigError
 * saying `hint` (no permission, a queue exclusive to another connection, other arguments, a stream
 * not there); anything else is the connection, worth retrying. A stream declared a moment ago may
 * not have its replica up on this node yet (PRECONDITION_FAILED "does not have a replica on the
 * local node"): that passes, so it is retriable too.
 */
export function brokerError(what: string, error: unknown, hint = 'the broker refused'): Error {
  if (error instanceof OmnibusError) return error;
  const text = describeError(error);
  if (!isRefusal(error) || /does not have a replica on the local node/.test(text)) return lost(what, error);
  return new ConfigError(`${what}: ${hint} (${text.replace(/^Operation failed: \w+; /, '')})`, {
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
function isRefusal(error: unknown): boolean {
  const code = replyCode(error);
  return code === 403 || code === 404 || code === 405 || code === 406 || code === 311;
}

/** Closes a channel; one closed already is fine. */
export function closeQuietly(channel: Channel | undefined): void {
  void channel?.close().catch(() => undefined);
}
