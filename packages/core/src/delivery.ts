/**
 * A base class for adapters' deliveries. It declares the fields of `Delivery` once, in one order, so
 * every delivery has one shape and no adapter repeats the list; a subclass sets in its constructor
 * what its protocol carries and implements `ack` (and `requeue` or `release` where the broker has
 * them) as methods. A class rather than an object literal with closures: one is made per message,
 * and a literal spreading the message with three closures cut the in-memory bench from 0.23 of raw
 * to 0.03.
 * Exported for adapters.
 */
import type { Delivery } from './adapter.js';
import type { Headers, LogPosition } from './types.js';

export abstract class BaseDelivery implements Delivery {
  id: string | undefined = undefined;
  contentType: string | undefined = undefined;
  key: string | undefined = undefined;
  subject: string | undefined = undefined;
  priority: number | undefined = undefined;
  timestamp: number | undefined = undefined;
  attempt: number | undefined = undefined;
  redelivered = false;
  position: LogPosition | undefined = undefined;
  retryAddress: string | undefined = undefined;

  constructor(
    readonly body: Uint8Array,
    readonly headers: Headers,
    readonly raw: unknown,
  ) {}

  abstract ack(): Promise<void>;
}
