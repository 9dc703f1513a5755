import type { Headers } from '../types.js';

/** A message as the in-memory broker stores it: immutable, shared by every queue it was routed to. */
export interface StoredMessage {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly contentType: string;
  readonly key: string | undefined;
  readonly subject: string | undefined;
  readonly priority: number;
  readonly timestamp: number;
}

/** A message in one queue, with that queue's delivery state. */
export interface QueuedItem {
  readonly message: StoredMessage;
  readonly attempt: number;
  readonly redelivered: boolean;
}
