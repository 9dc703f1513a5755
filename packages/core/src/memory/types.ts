import type { OutgoingMessage } from '../adapter.js';

/**
 * A message as the in-memory broker stores it: immutable, shared by every queue it was routed to.
 * The sent message without its delay, every field present (one object shape), a priority always.
 */
export type StoredMessage = {
  readonly [K in
    | 'id'
    | 'body'
    | 'headers'
    | 'contentType'
    | 'key'
    | 'subject'
    | 'timestamp']: OutgoingMessage[K];
} & { readonly priority: number };

/** A message in one queue, with that queue's delivery state. */
export interface QueuedItem {
  readonly message: StoredMessage;
  readonly attempt: number;
  readonly redelivered: boolean;
}
