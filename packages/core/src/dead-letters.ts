/**
 * Dead letters you can work with: count, peek and redrive, written once on top of the adapter's
 * primitives (`depth`, `browse`, `consume`, `send`, `sendTo`, `subscriptionAddress`).
 *
 * Redrive is copy-then-ack: a dead letter leaves the dead-letter queue only once its copy is
 * confirmed where it goes, so a process that dies mid-run loses nothing (the one in hand may be
 * sent twice). Every copy it makes carries the run's id in `x-omnibus-redrive-run`; a delivery that
 * already carries it came back during this run (it failed again, or the filter left it), which ends
 * the run — so a run moves each message once and takes a snapshot of what was there. Where the
 * broker counts (`depth`), the run also stops after the count it started with; where it cannot, the
 * marker and `idleMs` with nothing arriving end it.
 *
 * Two capabilities gate it: `redrive` for copies sent to a queue (a queue's letters to it, anyone's
 * to `to`), which needs only consume and send; `redriveSubscription` for a durable subscription's
 * letters sent back to it alone, which needs an address that subscription, and no other, reads.
 */
import { randomUUID } from 'node:crypto';
import type { BrowsedMessage, Delivery, OutgoingMessage, Subscription } from './adapter.js';
import type { BusImpl, Mutable } from './bus.js';
import { DEAD_LETTER_HEADERS, type EnvelopeSource, HEADER, readEnvelope } from './envelope.js';
import { ValidationError } from './errors.js';
import { positiveInt } from './policy.js';
import { deadLetterName, validateName } from './routing.js';
import type {
  DeadLetter,
  DeadLetterOrigin,
  DeadLetterSource,
  DeadLetters,
  Headers,
  RedriveOptions,
  RedriveResult,
} from './types.js';

const DEFAULT_IDLE_MS = 2000;
const PREFETCH = 16;

/** The dead-letter queue of a source and, when the source says it, where its letters go back. */
interface Resolved {
  readonly queue: string;
  /** Set for a log, or a topic without a durable subscription: their letters need `to`. */
  readonly needsTo?: string;
  /** Set for a durable subscription: without `to`, its letters go back to it alone. */
  readonly subscription?: string;
}

function resolveSource(source: DeadLetterSource): Resolved {
  if (typeof source === 'string') return { queue: validateName('dead-letter queue', source) };
  if (typeof source !== 'object' || source === null) {
    throw new ValidationError(
      'deadLetters() takes a dead-letter queue name, { queue }, { topic, subscription? } or { log, group? }',
    );
  }
  const custom =
    source.deadLetter === undefined ? undefined : validateName('dead-letter queue', source.deadLetter);
  if ('queue' in source) {
    const queue = validateName('queue', source.queue);
    return { queue: custom ?? deadLetterName(queue) };
  }
  if ('topic' in source) {
    const topic = validateName('topic', source.topic);
    const subscription =
      source.subscription === undefined
        ? undefined
        : validateName('durable subscription', source.subscription);
    return {
      queue: custom ?? deadLetterName(topic, subscription),
      ...(subscription === undefined
        ? { needsTo: `the dead letters of a plain subscription of "${topic}"` }
        : { subscription: `durable subscription "${subscription}" of topic "${topic}"` }),
    };
  }
  if ('log' in source) {
    const log = validateName('log', source.log);
    const group = source.group === undefined ? undefined : validateName('consumer group', source.group);
    return {
      queue: custom ?? deadLetterName(log, group),
      needsTo: `the dead letters of log "${log}"`,
    };
  }
  throw new ValidationError(
    'deadLetters() takes a dead-letter queue name, { queue }, { topic, subscription? } or { log, group? }',
  );
}

export class DeadLettersImpl implements DeadLetters {
  readonly queue: string;
  private readonly needsTo: string | undefined;
  private readonly subscription: string | undefined;

  constructor(
    private readonly bus: BusImpl,
    source: DeadLetterSource,
  ) {
    const resolved = resolveSource(source);
    this.queue = resolved.queue;
    this.needsTo = resolved.needsTo;
    this.subscription = resolved.subscription;
  }

  async count(): Promise<number> {
    this.bus.assertOpen();
    this.bus.feature('depth', 'consume the dead-letter queue to see what it holds');
    return this.bus.connection.run(`counting "${this.queue}"`, () =>
      this.bus.driverFor.depth({ name: this.queue }),
    );
  }

  async peek(limit = 10): Promise<DeadLetter[]> {
    this.bus.assertOpen();
    const n = positiveInt('limit', limit, 10, 10_000);
    this.bus.feature('browse', 'consume the dead-letter queue to see what it holds');
    const browsed = await this.bus.connection.run(`browsing "${this.queue}"`, () =>
      this.bus.driverFor.browse({ name: this.queue }, n),
    );
    return browsed.slice(0, n).map(deadLetterOf);
  }

  async redrive(options: RedriveOptions = {}): Promise<RedriveResult> {
    this.bus.assertOpen();
    const limit =
      options.limit === undefined
        ? Number.POSITIVE_INFINITY
        : positiveInt('limit', options.limit, 0, 2 ** 31 - 1);
    const idleMs = positiveInt('idleMs', options.idleMs, DEFAULT_IDLE_MS, 2 ** 31 - 1);
    const to = options.to === undefined ? undefined : validateName('queue', options.to);
    if (options.filter !== undefined && typeof options.filter !== 'function') {
      throw new ValidationError('filter must be a function');
    }
    if (to === undefined && this.subscription !== undefined) {
      this.bus.feature(
        'redriveSubscription',
        `the dead letters of ${this.subscription} cannot reach it alone: redrive them with { to: <queue> } and consume that queue`,
      );
    } else {
      this.bus.feature('redrive', 'consume the dead-letter queue and send its messages back yourself');
    }
    if (to === undefined && this.needsTo !== undefined) {
      throw new ValidationError(
        `${this.needsTo} cannot go back where they failed without reaching every reader: redrive them with { to: <queue> }`,
      );
    }
    const total = this.bus.capabilities.depth === 'none' ? undefined : await this.count();
    const run = new RedriveRun(this.bus, this.queue, {
      runId: randomUUID(),
      total,
      limit,
      idleMs,
      to,
      filter: options.filter,
      onProgress: options.onProgress,
    });
    if (total === 0 || limit === 0) return run.result();
    return run.start();
  }
}

interface RunOptions {
  readonly runId: string;
  readonly total: number | undefined;
  readonly limit: number;
  readonly idleMs: number;
  readonly to: string | undefined;
  readonly filter: RedriveOptions['filter'];
  readonly onProgress: RedriveOptions['onProgress'];
}

/** One redrive: consumes the dead-letter queue one delivery at a time until the snapshot is done. */
class RedriveRun {
  private moved = 0;
  private skipped = 0;
  private failed = 0;
  private error: Error | undefined;
  private seen = 0;
  private done = false;
  private readonly inbox: Delivery[] = [];
  /** The delivery that ended the run unsettled (its marker came back, or it could not be sent back). */
  private held: Delivery | undefined;
  private wake: (() => void) | undefined;
  /** Addresses of durable subscriptions, resolved once per run. */
  private readonly addresses = new Map<string, Promise<string>>();

  constructor(
    private readonly bus: BusImpl,
    private readonly queue: string,
    private readonly o: RunOptions,
  ) {}

  result(): RedriveResult {
    return {
      runId: this.o.runId,
      total: this.o.total,
      moved: this.moved,
      skipped: this.skipped,
      failed: this.failed,
      ...(this.error === undefined ? {} : { error: this.error }),
    };
  }

  async start(): Promise<RedriveResult> {
    const driver = this.bus.driverFor;
    const subscription: Subscription = await this.bus.connection.run(`redriving "${this.queue}"`, () =>
      driver.consume({ name: this.queue }, { prefetch: PREFETCH }, async (delivery) => {
        // After the run, what still arrives goes back untouched (as a closing consumer's does).
        if (this.done) delivery.release?.();
        else this.inbox.push(delivery);
        this.wake?.();
      }),
    );
    try {
      await this.loop();
    } finally {
      this.done = true;
      // What was delivered but not handled goes back untouched, in order: released, as a closing
      // consumer gives back what never reached a handler (MQTT resends it), or returned by the close.
      try {
        await subscription.stop?.();
      } finally {
        this.held?.release?.();
        this.held = undefined;
        for (const delivery of this.inbox.splice(0)) delivery.release?.();
        await subscription.close();
      }
    }
    return this.result();
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.moved >= this.o.limit) return;
      if (this.o.total !== undefined && this.seen >= this.o.total) return;
      const delivery = this.inbox.shift() ?? (await this.next());
      if (delivery === undefined) return;
      if (delivery.headers[HEADER.redriveRun] === this.o.runId) {
        // Back during this run (it failed again, or the filter left it): the snapshot is done.
        this.held = delivery;
        return;
      }
      this.seen++;
      const letter = deadLetterOf(delivery);
      const accepted = this.o.filter === undefined || (await this.o.filter(letter));
      try {
        // A letter it cannot send back stops the run untouched (redriveSubscription none).
        const target = accepted ? this.targetOf(letter) : undefined;
        if (target === undefined) {
          await this.send(`leaving a dead letter in "${this.queue}"`, () =>
            this.bus.driverFor.send({ name: this.queue }, this.copy(delivery, false)),
          );
          await delivery.ack();
          this.skipped++;
        } else {
          const copy = this.copy(delivery, true);
          await this.send(`redriving to "${target.name}"`, async () => {
            if (target.address === undefined) await this.bus.driverFor.send({ name: target.name }, copy);
            else await this.bus.driverFor.sendTo(await target.address, copy);
          });
          await delivery.ack();
          this.moved++;
        }
      } catch (error) {
        this.failed++;
        this.error = error instanceof Error ? error : new Error(String(error));
        this.held = delivery;
        return;
      }
      this.o.onProgress?.(this.result());
    }
  }

  private send(what: string, send: () => Promise<void>): Promise<void> {
    return this.bus.connection.run(what, send);
  }

  /** The next delivery, or undefined once none came for `idleMs`. */
  private next(): Promise<Delivery | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(undefined);
      }, this.o.idleMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(this.inbox.shift());
      };
    });
  }

  /** Where a dead letter goes back: `to`, its queue, or its own durable subscription. */
  private targetOf(letter: DeadLetter): { name: string; address?: Promise<string> } | undefined {
    if (this.o.to !== undefined) return { name: this.o.to };
    const origin = letter.origin;
    if (origin === undefined) return undefined;
    if (origin.kind === 'queue') return { name: origin.name };
    if (origin.kind === 'topic' && origin.subscription !== undefined) {
      this.bus.feature(
        'redriveSubscription',
        `a dead letter of durable subscription "${origin.subscription}" of topic "${origin.name}" cannot reach it alone: redrive with { to: <queue> }`,
      );
      const key = `${origin.name}\u0000${origin.subscription}`;
      let address = this.addresses.get(key);
      if (address === undefined) {
        address = this.bus.driverFor.subscriptionAddress({ name: origin.name }, origin.subscription);
        this.addresses.set(key, address);
      }
      return { name: `${origin.name} (subscription ${origin.subscription})`, address };
    }
    return undefined;
  }

  /** A copy with the same id, bytes and fields; going back, without the dead-letter headers. */
  private copy(delivery: Delivery, back: boolean): OutgoingMessage {
    const envelope = readEnvelope(delivery);
    const headers: Record<string, string> = { ...envelope.headers };
    if (back) {
      for (const name of DEAD_LETTER_HEADERS) delete headers[name];
      headers[HEADER.redrives] = String(redrivesOf(envelope.headers) + 1);
    }
    headers[HEADER.redriveRun] = this.o.runId;
    const copy: Mutable<OutgoingMessage> = {
      id: envelope.id,
      body: delivery.body,
      headers,
      contentType: envelope.contentType ?? 'application/octet-stream',
      timestamp: envelope.timestamp,
    };
    if (envelope.key !== undefined) copy.key = envelope.key;
    if (envelope.subject !== undefined) copy.subject = envelope.subject;
    if (envelope.priority !== undefined && envelope.priority > 0) copy.priority = envelope.priority;
    return copy;
  }
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** A dead letter read from its envelope and dead-letter headers. */
function deadLetterOf(
  message: BrowsedMessage | (EnvelopeSource & { readonly body: Uint8Array }),
): DeadLetter {
  const envelope = readEnvelope(message);
  const bag = envelope.headers;
  const headers: Headers = {};
  for (const name in bag) {
    if (!DEAD_LETTER_HEADERS.includes(name)) headers[name] = bag[name]!;
  }
  const kind = bag[HEADER.deadLetterKind];
  const name = bag[HEADER.deadLetterOrigin];
  const origin: DeadLetterOrigin | undefined =
    name !== undefined && (kind === 'queue' || kind === 'topic' || kind === 'log')
      ? {
          kind,
          name,
          ...(bag[HEADER.deadLetterSubscription] === undefined
            ? {}
            : { subscription: bag[HEADER.deadLetterSubscription] }),
          ...(bag[HEADER.deadLetterGroup] === undefined ? {} : { group: bag[HEADER.deadLetterGroup] }),
        }
      : undefined;
  const attempts = Number.parseInt(bag[HEADER.deadLetterAttempts] ?? '', 10);
  return {
    id: envelope.id,
    payload: decode(message.body, envelope.contentType),
    body: message.body,
    contentType: envelope.contentType,
    key: envelope.key,
    subject: envelope.subject,
    priority: envelope.priority,
    headers,
    origin,
    reason: bag[HEADER.deadLetterReason],
    attempts: Number.isInteger(attempts) ? attempts : undefined,
    firstFailure: dateOf(bag[HEADER.deadLetterFirstFailure]),
    failedAt: dateOf(bag[HEADER.deadLetterLastFailure]),
    timestamp: new Date(envelope.timestamp),
    redrives: redrivesOf(bag),
  };
}

function decode(body: Uint8Array, contentType: string | undefined): unknown {
  try {
    if (contentType === undefined || contentType === 'application/json') {
      return JSON.parse(textDecoder.decode(body)) as unknown;
    }
    if (contentType.startsWith('text/')) return textDecoder.decode(body);
  } catch {
    // Not what it claims: the bytes, as they are.
  }
  return body;
}

function dateOf(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

function redrivesOf(headers: Headers): number {
  const n = Number.parseInt(headers[HEADER.redrives] ?? '', 10);
  return Number.isInteger(n) && n > 0 ? n : 0;
}
