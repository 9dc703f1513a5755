/**
 * One STOMP connection that stays up: CONNECT (with heart-beats) to the first host that answers,
 * receipts for every SEND/SUBSCRIBE/UNSUBSCRIBE, and, when the connection is lost, reconnection with
 * backoff and every subscription made again.
 *
 * An ERROR frame ends a STOMP connection, and stompit destroys its client with every subscription on
 * it (gdaws/stompit#18). So the ERROR is read here: the operation it names by `receipt-id` is
 * rejected for good (a refused message, a refused subscription, which is then dropped instead of
 * being retried forever); every other unconfirmed operation is rejected as retriable, and the
 * others subscriptions come back after reconnection. stompit's own ERROR handler is never used: on
 * a `text/plain` ERROR body (RabbitMQ's) it emits an unhandled 'error' and crashes the process.
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ClosedError, ConnectionError, PublishError } from '@omnibus/core';
import type { StompSettings } from './options.js';
import { DEFAULT_PORT } from './options.js';
import {
  type AckMode,
  type CommandHandler,
  type FrameHeaders,
  type IncomingFrame,
  type StompitClient,
  stompitClient,
} from './stompit.js';

const ADAPTER = 'stomp';
const DEFAULT_TLS_PORT = 61614;
/** Header lines up to 64 KiB (stompit's default, 1 KiB, is too short for a dead-letter reason). */
const MAX_LINE_LENGTH = 64 * 1024;
const MAX_HEADERS = 1000;
/** Refusals in a row after which a resubscription is given up. */
const MAX_REFUSALS = 3;

export interface SessionHooks {
  /** The connection was lost (`reconnecting`) or is back with every subscription (`connected`). */
  state(state: 'reconnecting' | 'connected', error?: ConnectionError): void;
  /** An error nobody waits for (an ERROR frame not tied to an operation, a dropped subscription). */
  error(error: Error): void;
}

export interface SessionSubscription {
  readonly id: string;
  /** For errors, e.g. `queue "orders"`. */
  readonly what: string;
  /** SUBSCRIBE headers, computed at each (re)subscription (a log reader resumes at its offset). */
  headers(): Record<string, string>;
  /**
   * A MESSAGE for this subscription, its body read whole. `settle` ACKs or NACKs it; after a
   * reconnection it does nothing (the broker has the message again).
   */
  message(headers: FrameHeaders, body: Buffer, settle: (command: 'ACK' | 'NACK') => void): void;
  /** The broker refused it when it was made again after a reconnection: it is dropped. */
  failed(error: Error): void;
}

interface Pending {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  /** The error for this operation when an ERROR frame names it. */
  readonly refused: (cause: Error) => Error;
}

export class StompSession {
  /** CONNECTED's headers (`server`, `version`, `session`, `heart-beat`). */
  connected: Readonly<Record<string, string>> = {};
  private client: StompitClient | undefined;
  private closed = false;
  private readonly pending = new Map<string, Pending>();
  private readonly subscriptions = new Map<string, SessionSubscription>();
  private reconnecting: Promise<void> | undefined;
  private readonly stopReconnecting = new AbortController();
  private nextId = 1;
  /** Consecutive refusals of a subscription when it is made again. */
  private readonly refusals = new Map<string, number>();
  private readonly prefix = randomBytes(3).toString('hex');

  constructor(
    private readonly settings: StompSettings,
    private readonly hooks: SessionHooks,
    private readonly connectHeaders: Readonly<Record<string, string>> = {},
  ) {}

  get isConnected(): boolean {
    return this.client !== undefined;
  }

  /** A subscription id unique on this session. */
  newId(kind: string): string {
    return `${kind}-${this.prefix}-${this.nextId++}`;
  }

  /** Connects once (every host in turn); rejects with the last host's error. */
  async open(): Promise<void> {
    this.attach(await this.connectAny());
  }

  /** SEND with a receipt: resolves on RECEIPT, rejects with `PublishError` when an ERROR names it. */
  send(headers: Record<string, string | number>, body: Uint8Array, what: string): Promise<void> {
    const client = this.client;
    if (client === undefined) return Promise.reject(this.notConnected(`sending to ${what}`));
    return this.request(
      client,
      'SEND',
      headers,
      body,
      undefined,
      (cause) =>
        new PublishError(`the broker refused the message for ${what}: ${cause.message}`, {
          adapter: ADAPTER,
          cause,
        }),
    );
  }

  /** SUBSCRIBE and wait for its receipt; the subscription is made again after every reconnection. */
  async subscribe(subscription: SessionSubscription): Promise<void> {
    const client = this.client;
    if (client === undefined) throw this.notConnected(`subscribing to ${subscription.what}`);
    this.subscriptions.set(subscription.id, subscription);
    try {
      await this.sendSubscribe(client, subscription);
    } catch (error) {
      this.subscriptions.delete(subscription.id);
      throw error;
    }
  }

  /** UNSUBSCRIBE (best effort: a lost connection ends the subscription anyway). */
  async unsubscribe(id: string): Promise<void> {
    const client = this.client;
    if (!this.subscriptions.delete(id) || client === undefined) return;
    try {
      await this.request(client, 'UNSUBSCRIBE', { id }, undefined, this.settings.operationTimeoutMs);
      delete (client._subscriptions as Record<string, unknown>)[id];
    } catch {
      // Lost or refused: the broker ends subscriptions with the connection.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopReconnecting.abort();
    const client = this.client;
    this.client = undefined;
    this.failPending(new ClosedError('the connection was closed', { adapter: ADAPTER }));
    this.subscriptions.clear();
    if (client === undefined) return;
    // DISCONNECT with a receipt: the broker has processed every ACK sent before it.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(this.settings.operationTimeoutMs, 3000));
      client.disconnect(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    client.destroy();
  }

  private sendSubscribe(client: StompitClient, subscription: SessionSubscription): Promise<void> {
    const headers: Record<string, string> = { ...subscription.headers(), id: subscription.id };
    client.setImplicitSubscription(subscription.id, (headers.ack ?? 'auto') as AckMode, (error, frame) => {
      if (error === null && frame !== undefined)
        readBody(frame, (body) =>
          subscription.message(frame.headers, body, (command) => {
            // A delivery of a lost connection is the broker's again.
            if (this.client === client) client.sendFrame(command, settleHeaders(frame.headers)).end();
          }),
        );
    });
    return this.request(client, 'SUBSCRIBE', headers, undefined, this.settings.operationTimeoutMs, (cause) =>
      refusal(`the broker refused the subscription to ${subscription.what}`, cause, false),
    );
  }

  private request(
    client: StompitClient,
    command: string,
    headers: Record<string, string | number>,
    body?: Uint8Array,
    timeoutMs?: number,
    refused: (cause: Error) => Error = (cause) => refusal(`${command} failed`, cause, true),
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let receipt = '';
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        this.pending.delete(receipt);
      };
      const frame = client.sendFrame(command, headers, {
        onReceipt: () => {
          done();
          resolve();
        },
      });
      receipt = String(headers.receipt);
      this.pending.set(receipt, {
        resolve,
        reject: (error) => {
          done();
          reject(error);
        },
        refused,
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.pending.delete(receipt);
          reject(
            new ConnectionError(`no receipt for ${command} within ${timeoutMs} ms`, {
              adapter: ADAPTER,
              retriable: true,
            }),
          );
        }, timeoutMs);
      }
      if (body === undefined || body.byteLength === 0) frame.end();
      else frame.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    });
  }

  private attach(client: StompitClient): void {
    this.client = client;
    this.connected = { ...(client.headers ?? {}) };
  }

  /** The connection `client` is gone: fail what waits on it and reconnect. */
  private lost(client: StompitClient, error: Error): void {
    if (client !== this.client) return;
    this.client = undefined;
    this.failPending(
      new ConnectionError(`connection lost before the broker confirmed: ${error.message}`, {
        adapter: ADAPTER,
        cause: error,
        retriable: true,
      }),
    );
    if (this.closed) return;
    // Listeners get a typed error, like every other adapter's state events; stompit's is the cause.
    this.hooks.state(
      'reconnecting',
      new ConnectionError(`connection lost: ${error.message}; reconnecting`, {
        adapter: ADAPTER,
        cause: error,
        retriable: true,
      }),
    );
    this.reconnecting ??= this.reconnect().finally(() => {
      this.reconnecting = undefined;
    });
  }

  private failPending(error: Error): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
  }

  private async reconnect(): Promise<void> {
    let delayMs = this.settings.reconnectDelayMs;
    while (!this.closed) {
      await sleep(delayMs * (0.8 + Math.random() * 0.4), this.stopReconnecting.signal);
      if (this.closed) return;
      delayMs = Math.min(delayMs * 2, this.settings.maxReconnectDelayMs);
      let client: StompitClient;
      try {
        client = await this.connectAny();
      } catch {
        continue;
      }
      if (this.closed) {
        client.destroy();
        return;
      }
      this.attach(client);
      if (await this.resubscribe(client)) {
        this.hooks.state('connected');
        return;
      }
    }
  }

  /**
   * Makes every subscription again; false when the connection was lost meanwhile (the caller
   * reconnects and tries again). A subscription the broker refuses several times in a row (e.g. its
   * queue was redeclared with other arguments) is dropped and reported, so the others come back; a
   * single refusal may be transient (ActiveMQ: the durable subscriber of the lost connection is
   * still registered).
   */
  private async resubscribe(client: StompitClient): Promise<boolean> {
    for (const subscription of [...this.subscriptions.values()]) {
      if (this.client !== client) return false;
      try {
        await this.sendSubscribe(client, subscription);
        this.refusals.delete(subscription.id);
      } catch (error) {
        if (error instanceof ConnectionError && !error.retriable) {
          const refusals = (this.refusals.get(subscription.id) ?? 0) + 1;
          this.refusals.set(subscription.id, refusals);
          if (refusals >= MAX_REFUSALS) {
            this.refusals.delete(subscription.id);
            this.subscriptions.delete(subscription.id);
            subscription.failed(error);
            this.hooks.error(error);
          }
        }
        // The ERROR ended the connection; a missing receipt leaves it in doubt: start again.
        if (this.client === client) client.destroy(error instanceof Error ? error : new Error(String(error)));
        return false;
      }
    }
    return this.client === client;
  }

  private async connectAny(): Promise<StompitClient> {
    let last: unknown;
    for (const host of this.settings.hosts) {
      try {
        return await this.connectTo(host.host, host.port);
      } catch (error) {
        last = error;
      }
    }
    throw last;
  }

  private connectTo(host: string, port: number | undefined): Promise<StompitClient> {
    const s = this.settings;
    return new Promise<StompitClient>((resolve, reject) => {
      // No Nagle: a frame is written in three pieces (headers, body, NUL), and stompit turns Nagle
      // off only when heart-beats are on.
      const socket =
        s.tls === undefined
          ? netConnect({ host, port: port ?? DEFAULT_PORT, noDelay: true })
          : tlsConnect({ host, port: port ?? DEFAULT_TLS_PORT, servername: host, ...s.tls });
      socket.setNoDelay(true);
      const Client = stompitClient();
      const client = new Client(socket, {
        heartbeat: [s.heartbeatMs, s.heartbeatMs],
        // Beat twice per promised interval: a broker allows ~1.5 intervals of silence (ActiveMQ's
        // grace), which a busy event loop would otherwise eat. STOMP allows beating more often.
        heartbeatOutputMargin: Math.floor(s.heartbeatMs / 2),
        // stompit declares the connection dead after one silent interval plus this margin.
        heartbeatDelayMargin: Math.max(1000, s.heartbeatMs),
        maxLineLength: MAX_LINE_LENGTH,
        maxHeaders: MAX_HEADERS,
        resetDisconnect: false,
      });
      let connected = false;
      const fail = (error: Error) => {
        if (connected) return this.lost(client, error);
        clearTimeout(timer);
        client.destroy();
        reject(error);
      };
      installErrorHandler(client, (headers, body) => this.errorFrame(client, headers, body));
      client.on('error', fail);
      client.on('end', () => fail(new Error('the broker closed the connection')));
      const timer = setTimeout(
        () => client.destroy(new Error(`no CONNECTED within ${s.connectTimeoutMs} ms`)),
        s.connectTimeoutMs,
      );
      const headers: Record<string, string> = {
        'accept-version': '1.2,1.1',
        host: s.vhost,
        'heart-beat': `${s.heartbeatMs},${s.heartbeatMs}`,
        ...this.connectHeaders,
      };
      if (s.login !== undefined) headers.login = s.login;
      if (s.passcode !== undefined) headers.passcode = s.passcode;
      socket.once(s.tls === undefined ? 'connect' : 'secureConnect', () => {
        client.connect(headers, (error) => {
          if (error !== null) return;
          connected = true;
          clearTimeout(timer);
          resolve(client);
        });
      });
    });
  }

  private errorFrame(client: StompitClient, headers: FrameHeaders, body: string): void {
    const summary = String(headers.message ?? 'ERROR frame');
    const detail = body.trim();
    const cause = new ErrorFrame(
      detail !== '' && detail !== summary ? `${summary}: ${detail.slice(0, 1000)}` : summary,
    );
    // Without `receipt-id` (RabbitMQ's channel errors, e.g. PRECONDITION_FAILED on a SUBSCRIBE),
    // blame the oldest unconfirmed operation: the broker handles frames in order and has receipted
    // every one before it, and the only frames sent without receipt are ACK/NACK of live deliveries.
    const receipt =
      headers['receipt-id'] === undefined ? this.pending.keys().next().value : String(headers['receipt-id']);
    const pending = receipt === undefined ? undefined : this.pending.get(receipt);
    if (pending !== undefined) {
      this.pending.delete(receipt!);
      pending.reject(pending.refused(cause));
    } else if (client === this.client) {
      this.hooks.error(
        new ConnectionError(`the broker sent ERROR (${cause.message}); reconnecting`, {
          adapter: ADAPTER,
          cause,
        }),
      );
    }
    client.destroy(cause);
  }

  private notConnected(what: string): ConnectionError {
    return new ConnectionError(`${what}: not connected (reconnecting)`, {
      adapter: ADAPTER,
      retriable: true,
    });
  }
}

/** What the broker said in an ERROR frame (a refusal, as opposed to a lost connection). */
export class ErrorFrame extends Error {
  override readonly name = 'ErrorFrame';
}

/** Routes every ERROR frame to `onError`, whatever handlers stompit installs (it swaps them on CONNECTED). */
function installErrorHandler(
  client: StompitClient,
  onError: (headers: FrameHeaders, body: string) => void,
): void {
  const handler: CommandHandler = (frame) =>
    readBody(frame, (body) => onError(frame.headers, body.toString('utf8')));
  const set = client.setCommandHandlers.bind(client);
  client.setCommandHandlers = (handlers) => set({ ...handlers, ERROR: handler });
  set({ ERROR: handler });
}

/** Reads a frame's body at once: a body left unread stalls the socket and starves heart-beats (gdaws/stompit#122). */
function readBody(frame: IncomingFrame, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  frame.on('error', () => undefined);
  frame.on('data', (chunk: Buffer) => chunks.push(chunk));
  frame.on('end', () => done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
}

function refusal(message: string, cause: Error, retriable: boolean): ConnectionError {
  return new ConnectionError(`${message}: ${cause.message}`, { adapter: ADAPTER, cause, retriable });
}

/** ACK/NACK headers for a MESSAGE frame, for STOMP 1.2 (`id`) and 1.1/1.0 (`subscription`, `message-id`). */
function settleHeaders(frame: FrameHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  const ack = frame.ack ?? frame['message-id'];
  if (ack !== undefined) out.id = String(ack);
  if (frame.subscription !== undefined) out.subscription = String(frame.subscription);
  if (frame['message-id'] !== undefined) out['message-id'] = String(frame['message-id']);
  return out;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
