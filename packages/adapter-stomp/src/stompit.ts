/**
 * The few parts of stompit 1.0.0 this adapter uses, declared here (its @types package types most
 * things as `any`), and a lazy loader so the library is read only when a STOMP URL is used.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { OutgoingFrameStream } from './outgoing.js';

/** Frame headers as stompit parses them: strings, except `content-length`, which becomes a number. */
export type FrameHeaders = Readonly<Record<string, string | number | undefined>>;

/** An incoming frame: its body is a readable stream of Buffers. */
export interface IncomingFrame extends Readable {
  readonly command: string;
  readonly headers: FrameHeaders;
}

export interface StompitClientOptions {
  /** [outgoing, incoming] heart-beat in ms. */
  readonly heartbeat: [number, number];
  readonly heartbeatDelayMargin?: number;
  readonly heartbeatOutputMargin?: number;
  /** Longest header line accepted (stompit's default: 1024). */
  readonly maxLineLength?: number;
  /** Most headers a frame may have (stompit's default is 64). */
  readonly maxHeaders?: number;
  readonly resetDisconnect?: boolean;
  /** What the client writes its frames through (stompit's own `OutgoingFrameStream` by default). */
  readonly outgoingFrameStream?: OutgoingFrameStream;
}

export interface StompitClient extends EventEmitter {
  /** The CONNECTED frame's headers, once connected. */
  headers?: Record<string, string>;
  connect(headers: Record<string, string>, callback: (error: Error | null) => void): void;
  /** Writes a frame; with `onReceipt`, stompit adds a `receipt` header to `headers` and calls back on RECEIPT. */
  sendFrame(
    command: string,
    headers: Record<string, string | number>,
    options?: { readonly onReceipt?: () => void },
  ): Writable;
  setImplicitSubscription(
    id: string,
    ack: string,
    listener: (error: Error | null, frame: IncomingFrame | undefined) => void,
  ): unknown;
  setCommandHandlers(handlers: Record<string, (frame: IncomingFrame) => void>): void;
  disconnect(callback?: (error: Error | null) => void): void;
  destroy(error?: Error): void;
}

export type StompitClientClass = new (socket: Duplex, options: StompitClientOptions) => StompitClient;

let loaded: StompitClientClass | undefined;

/** stompit's Client class, loaded on first use. */
export function stompitClient(): StompitClientClass {
  loaded ??= createRequire(import.meta.url)('stompit/lib/Client') as StompitClientClass;
  return loaded;
}
