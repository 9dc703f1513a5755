/**
 * One STOMP connection that stays up: CONNECT (with heart-beats) to the first host that answers,
 * receipts for every SEND and SUBSCRIBE, and, when the connection is lost, reconnection with backoff
 * and its subscription made again.
 *
 * A session carries at most one subscription, because in STOMP the connection is the unit of
 * failure and of release: an ERROR frame ends it, and stompit destroys its client with every
 * subscription on it (gdaws/stompit#18); a DISCONNECT is the only portable way to give unacked
 * messages back (see consume.ts). So a subscription lives and dies with its connection, and core's
 * `Lifecycle`, which attaches again on a connection that stays, has nothing to retry on: a refused
 * SUBSCRIBE never leaves one.
 *
 * The ERROR is read here: the operation it names by `receipt-id` is rejected for good (a refused
 * message; a refused subscription, dropped after `MAX_REFUSALS` reconnections in a row instead of
 * being retried forever); every other unconfirmed operation is rejected as retriable. stompit's own
 * ERROR handler is never used: on a `text/plain` ERROR body (RabbitMQ's) it emits an unhandled
 * 'error' and crashes the process.
 */
import { isIP, connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import {
  ClosedError,
  ConnectionError,
  delay,
  PublishError,
  retryWithBackoff,
  withTimeout,
} from '@omnibus/core';
import type { StompSettings } from './options.js';
import { FrameWriter } from './outgoing.js';
import { type FrameHeaders, type IncomingFrame, type StompitClient, stompitClient } from './stompit.js';

const ADAPTER = 'stomp';
const DEFAULT_PORT = 61613;
const DEFAULT_TLS_PORT = 61614;
/** Header lines up to 64 KiB (stompit's default, 1 KiB, is too short for a dead-letter reason). */
const MAX_LINE_LENGTH = 64 * 1024;
const MAX_HEADERS = 1000;
/** Refusals in a row after which a resubscription is given up. */
const MAX_REFUSALS = 3;
/** The subscription's id: unique on its connection, the only one there. */
const SUBSCRIPTION_ID = '1';
/**
 * ActiveMQ releases a client-id a moment after it has sent the DISCONNECT's receipt, and refuses a
 * CONNECT with that id meanwhile ("Client: … already connected"): a durable subscription opened
 * again, or deleted, right after its consumer closed. A refusal of a client-id this process let go
 * within this window is tried again; any other is final at once (another subscriber holds it).
 */
const CLIENT_ID_RELEASE_MS = 5000;
const CLIENT_ID_RETRY_MS = 25;
/** Client-ids this process disconnected, and when: process-wide, as buses share the broker. */
const released = new Map<string, number>();

export interface SessionHooks {
  /** The connection was lost (`reconnecting`) or is back with its subscription (`connected`). */
  state(state: 'reconnecting' | 'connected', error?: ConnectionError): void;
  /** An error nobody waits for (an ERROR frame not tied to an operation, a dropped subscription). */
  error(error: Error): void;
  /** The session is closed: by `close`, or after its subscription was dropped. */
  closed?(): void;
}

export interface SessionSubscription {
  /** For errors, e.g. `queue "orders"`. */
  readonly what: string;
  /** SUBSCRIBE headers, computed at each (re)subscription (a log reader resumes at its offset). */
  headers(): Record<string, string>;
  /**
   * A MESSAGE, its body read whole. `settle` ACKs or NACKs it; after a reconnection it does nothing
   * (the broker has the message again).
   */
  message(headers: FrameHeaders, body: Buffer, settle: (command: 'ACK' | 'NACK') => void): void;
}

/** Opens a connection of its own for a subscription; `closed` is called once it is closed. */
export type OpenSession = (subscription: SessionSubscription, closed?: () => void) => Promise<StompSession>;

interface Pending {
  /** Resolves the operation, or rejects it with `error`. */
  readonly settle: (error?: Error) => void;
  /** The error for this operation when an ERROR frame names it. */
  readonly refused: (cause: Error) => Error;
}

export class StompSession {
  /** CONNECTED's headers (`server`, `version`, `session`, `heart-beat`). */
  connected: Readonly<Record<string, string>> = {};
  private client: StompitClient | undefined;
  /** True once closed: by `close`, or after its subscription was dropped. */
  closed = false;
  private readonly pending = new Map<string, Pending>();
  private readonly stopReconnecting = new AbortController();
  private reconnecting = false;
  /** Consecutive refusals of the subscription when it is made again. */
  private refusals = 0;

  constructor(
    private readonly settings: StompSettings,
    private readonly hooks: SessionHooks,
    private readonly subscription?: SessionSubscription,
    private readonly connectHeaders: Readonly<Record<string, string>> = {},
  ) {}

  /** Connects (every host in turn) and subscribes; rejects with the last host's error or the refusal. */
  async open(): Promise<void> {
    try {
      const client = await this.connectAny();
      this.attach(client);
      await this.subscribe(client);
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** SEND with a receipt: resolves on RECEIPT, rejects with `PublishError` when an ERROR names it. */
  send(headers: Record<string, string | number>, body: Uint8Array, what: string): Promise<void> {
    const client = this.client;
    if (client === undefined) {
      return Promise.reject(
        new ConnectionError(`sending to ${what}: not connected (reconnecting)`, {
          adapter: ADAPTER,
          retriable: true,
        }),
      );
    }
    return this.request(client, 'SEND', headers, body, (cause) => {
      return new PublishError(`the broker refused the message for ${what}: ${cause.message}`, {
        adapter: ADAPTER,
        cause,
      });
    });
  }

  /**
   * Another frame with a receipt (an admin operation's UNSUBSCRIBE): resolves on RECEIPT, rejects
   * with `refused(cause)` when an ERROR names it (which also ends the connection).
   */
  command(command: string, headers: Record<string, string>, refused: (cause: Error) => Error): Promise<void> {
    const client = this.client;
    if (client === undefined) {
      return Promise.reject(
        new ConnectionError(`${command}: not connected`, { adapter: ADAPTER, retriable: true }),
      );
    }
    return this.request(client, command, headers, undefined, refused);
  }

  /** DISCONNECT (with a receipt: the broker has processed every ACK sent before it); idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopReconnecting.abort();
    const client = this.client;
    this.client = undefined;
    this.failPending(new ClosedError('the connection was closed', { adapter: ADAPTER }));
    if (client !== undefined) {
      await disconnect(client, Math.min(this.settings.operationTimeoutMs, 3000));
      const clientId = this.connectHeaders['client-id'];
      if (clientId !== undefined) noteReleased(clientId);
    }
    this.hooks.closed?.();
  }

  private subscribe(client: StompitClient): Promise<void> {
    const subscription = this.subscription;
    if (subscription === undefined) return Promise.resolve();
    const headers: Record<string, string> = { ...subscription.headers(), id: SUBSCRIPTION_ID };
    client.setImplicitSubscription(SUBSCRIPTION_ID, headers.ack ?? 'auto', (error, frame) => {
      if (error === null && frame !== undefined)
        readBody(frame, (body) =>
          subscription.message(frame.headers, body, (command) => {
            // A delivery of a lost connection is the broker's again.
            if (this.client === client) {
              hold(client);
              client.sendFrame(command, settleHeaders(frame.headers)).end();
            }
          }),
        );
    });
    // A refusal is final; a missing receipt leaves the subscription in doubt (the caller drops the connection).
    const refused = (cause: Error) =>
      new ConnectionError(`the broker refused the subscription to ${subscription.what}: ${cause.message}`, {
        adapter: ADAPTER,
        cause,
        retriable: false,
      });
    const timeoutMs = this.settings.operationTimeoutMs;
    const late = () =>
      new ConnectionError(`no receipt for SUBSCRIBE within ${timeoutMs} ms`, {
        adapter: ADAPTER,
        retriable: true,
      });
    return withTimeout(this.request(client, 'SUBSCRIBE', headers, undefined, refused), timeoutMs, late);
  }

  private request(
    client: StompitClient,
    command: string,
    headers: Record<string, string | number>,
    body: Uint8Array | undefined,
    refused: (cause: Error) => Error,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        this.pending.delete(receipt);
        if (error === undefined) resolve();
        else reject(error);
      };
      hold(client);
      const frame = client.sendFrame(command, headers, { onReceipt: () => settle() });
      const receipt = String(headers.receipt);
      this.pending.set(receipt, { settle, refused });
      frame.end(body?.byteLength ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : undefined);
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
    const retriable = { adapter: ADAPTER, cause: error, retriable: true };
    this.failPending(
      new ConnectionError(`connection lost before the broker confirmed: ${error.message}`, retriable),
    );
    if (this.closed) return;
    // Listeners get a typed error, like every other adapter's state events; stompit's is the cause.
    this.hooks.state(
      'reconnecting',
      new ConnectionError(`connection lost: ${error.message}; reconnecting`, retriable),
    );
    void this.reconnect();
  }

  private failPending(error: Error): void {
    for (const pending of [...this.pending.values()]) pending.settle(error);
  }

  /** Reconnects with backoff until connected and subscribed again, or closed. */
  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    const { reconnectDelayMs: firstDelayMs, maxReconnectDelayMs: maxDelayMs } = this.settings;
    await retryWithBackoff(
      async () => {
        const client = await this.connectAny();
        if (this.closed) return client.destroy();
        this.attach(client);
        try {
          await this.subscribe(client);
        } catch (error) {
          this.resubscribeFailed(client, error as Error);
          throw error;
        }
        this.refusals = 0;
        this.reconnecting = false;
        this.hooks.state('connected');
      },
      { firstDelayMs, maxDelayMs, signal: this.stopReconnecting.signal },
    );
  }

  /**
   * The ERROR ended the connection; a missing receipt leaves it in doubt: start again. A
   * subscription the broker refuses several times in a row (e.g. its queue was redeclared with other
   * arguments) is dropped, reported, and its connection closed; a single refusal may be transient
   * (ActiveMQ: the durable subscriber of the lost connection is still registered).
   */
  private resubscribeFailed(client: StompitClient, error: Error): void {
    if (this.client === client) client.destroy(error);
    if (error instanceof ConnectionError && !error.retriable && ++this.refusals >= MAX_REFUSALS) {
      this.hooks.error(error);
      void this.close();
    }
  }

  private async connectAny(): Promise<StompitClient> {
    const clientId = this.connectHeaders['client-id'];
    for (;;) {
      let last: unknown;
      for (const { host, port } of this.settings.hosts) {
        try {
          return await this.connectTo(host, port);
        } catch (error) {
          last = error;
        }
      }
      if (!releasing(clientId, last) || this.closed) throw last;
      await delay(CLIENT_ID_RETRY_MS);
    }
  }

  private connectTo(host: string, port: number | undefined): Promise<StompitClient> {
    const s = this.settings;
    return new Promise<StompitClient>((resolve, reject) => {
      // No Nagle: a frame is written in three pieces (headers, body, NUL), and stompit turns Nagle
      // off only when heart-beats are on.
      const socket =
        s.tls === undefined
          ? netConnect({ host, port: port ?? DEFAULT_PORT, noDelay: true })
          : // SNI takes host names only (RFC 6066); the certificate is still checked against an IP.
            tlsConnect({
              host,
              port: port ?? DEFAULT_TLS_PORT,
              ...(isIP(host) ? {} : { servername: host }),
              ...s.tls,
            });
      socket.setNoDelay(true);
      const Client = stompitClient();
      const client: StompitClient = new Client(socket, {
        heartbeat: [s.heartbeatMs, s.heartbeatMs],
        // Beat twice per promised interval: a broker allows ~1.5 intervals of silence (ActiveMQ's
        // grace), which a busy event loop would otherwise eat. STOMP allows beating more often.
        heartbeatOutputMargin: Math.floor(s.heartbeatMs / 2),
        // stompit declares the connection dead after one silent interval plus this margin.
        heartbeatDelayMargin: Math.max(1000, s.heartbeatMs),
        maxLineLength: MAX_LINE_LENGTH,
        maxHeaders: MAX_HEADERS,
        resetDisconnect: false,
        // Frames written whole, one write each (see outgoing.ts).
        outgoingFrameStream: new FrameWriter(socket),
      });
      corkers.set(client, corkPerTick(socket));
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
        ...(s.login === undefined ? {} : { login: s.login }),
        ...(s.passcode === undefined ? {} : { passcode: s.passcode }),
        ...this.connectHeaders,
      };
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
    const pending =
      headers['receipt-id'] === undefined
        ? this.pending.values().next().value
        : this.pending.get(String(headers['receipt-id']));
    if (pending !== undefined) pending.settle(pending.refused(cause));
    else if (client === this.client) {
      this.hooks.error(
        new ConnectionError(`the broker sent ERROR (${cause.message}); reconnecting`, {
          adapter: ADAPTER,
          cause,
        }),
      );
    }
    client.destroy(cause);
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
  const handler = (frame: IncomingFrame) =>
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

/**
 * Frames written in one turn of the event loop leave in one write: stompit writes every frame in
 * pieces (headers, body, NUL), each its own system call on a socket without Nagle. The socket is
 * corked at the first frame of a turn and uncorked on the next tick (`process.nextTick`), so this
 * adds no delay. The sockets are this module's own.
 */
const corkers = new WeakMap<StompitClient, () => void>();

function corkPerTick(socket: Duplex): () => void {
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return () => {
    if (corked) return;
    corked = true;
    socket.cork();
    process.nextTick(uncork);
  };
}

/** Corks the connection of `client` for the rest of this tick (see `corkPerTick`). */
function hold(client: StompitClient): void {
  corkers.get(client)?.();
}

/** ActiveMQ's refusal of a CONNECT whose client-id another connection holds. */
export function clientIdInUse(error: unknown): boolean {
  return error instanceof Error && /already connected/i.test(error.message);
}

function noteReleased(clientId: string): void {
  const now = Date.now();
  for (const [id, at] of released) if (now - at >= CLIENT_ID_RELEASE_MS) released.delete(id);
  released.set(clientId, now);
}

/** True when `error` refuses `clientId` as in use and this process let that id go a moment ago. */
function releasing(clientId: string | undefined, error: unknown): boolean {
  if (clientId === undefined || !clientIdInUse(error)) return false;
  const at = released.get(clientId);
  return at !== undefined && Date.now() - at < CLIENT_ID_RELEASE_MS;
}

/** DISCONNECT with a receipt (bounded: a lost connection never sends it), then the socket closed. */
async function disconnect(client: StompitClient, timeoutMs: number): Promise<void> {
  const disconnected = new Promise<void>((resolve) => client.disconnect(() => resolve()));
  await withTimeout(disconnected, timeoutMs, () => new Error('no DISCONNECT receipt')).catch(() => undefined);
  client.destroy();
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
