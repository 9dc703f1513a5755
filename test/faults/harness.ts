/**
 * What every fault test shares: the process guard (an unhandled rejection or an uncaught exception
 * fails the test), a send/consume stream that counts sent / confirmed / received, the result line
 * printed per set-up and fault, fault proxies in front of a set-up, and margins measured from the
 * event loop instead of constants that only hold on an idle machine.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type Bus, type ConnectionState, connect } from '@omnibus/core';
import { type FaultProxy, redirectConnections, startFaultProxy } from '@omnibus/test-brokers';
import { afterEach, beforeEach } from 'vitest';
import type { Endpoint, Setup } from './setups.js';

// ---------------------------------------------------------------------------------------------
// The process guard

const escaped: string[] = [];
const onRejection = (reason: unknown) => void escaped.push(`unhandledRejection: ${describe(reason)}`);
const onException = (error: unknown) => void escaped.push(`uncaughtException: ${describe(error)}`);

/**
 * Installs `unhandledRejection` / `uncaughtException` listeners around every test of the file; a
 * test during (or after) which either fired fails with what escaped. Call once per file.
 */
export function guardProcess(): void {
  beforeEach(() => {
    escaped.length = 0;
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
  });
  afterEach(async () => {
    // Late rejections (a timer, a socket closing after close()) get a moment to surface.
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    const seen = escaped.splice(0);
    if (seen.length > 0) throw new Error(`escaped the SDK:\n${seen.join('\n')}`);
  });
}

function describe(value: unknown): string {
  return value instanceof Error ? `${value.name}: ${value.message}` : String(value);
}

// ---------------------------------------------------------------------------------------------
// Waiting and timing

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds (true) or `timeoutMs` passes (false). */
export async function until(condition: () => boolean, timeoutMs: number, everyMs = 25): Promise<boolean> {
  const due = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= due) return false;
    await sleep(everyMs);
  }
  return true;
}

/**
 * The event loop's delay while a test runs: a loaded machine delays timers (heart-beats included),
 * so bounds add a margin proportional to what was measured, not a constant.
 */
export function loopDelay(): { stop(): { maxMs: number; p99Ms: number } } {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return {
    stop() {
      histogram.disable();
      return { maxMs: histogram.max / 1e6, p99Ms: histogram.percentile(99) / 1e6 };
    },
  };
}

/** Margin for a timing bound: 500 ms for the reconnect report, plus three times the worst loop delay. */
export function marginMs(loop: { maxMs: number }): number {
  return Math.round(500 + 3 * loop.maxMs);
}

// ---------------------------------------------------------------------------------------------
// Buses and their state

export interface Watched {
  readonly bus: Bus;
  /** Every state change with the time it happened. */
  readonly states: { state: ConnectionState; at: number }[];
  /** The first time `state` was entered at or after `since`, if it was. */
  firstAt(state: ConnectionState, since: number): number | undefined;
}

export async function open(
  setup: Setup,
  endpoints: readonly Endpoint[],
  options: { clientId?: string; sendBuffer?: { maxMessages?: number; timeoutMs?: number } } = {},
): Promise<Watched> {
  const bus = await connect(setup.url(endpoints), {
    adapters: [setup.adapter()],
    sendBuffer: { timeoutMs: 60_000, maxMessages: 10_000, ...options.sendBuffer },
    ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
  });
  const states: { state: ConnectionState; at: number }[] = [];
  bus.on('state', (state) => void states.push({ state, at: Date.now() }));
  // The error events are the SDK's way to report; they must not escape as exceptions.
  bus.on('error', () => undefined);
  return {
    bus,
    states,
    firstAt: (state, since) => states.find((s) => s.state === state && s.at >= since)?.at,
  };
}

export function uniqueName(what: string): string {
  return `fault-${what}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

// ---------------------------------------------------------------------------------------------
// Fault proxies, Kafka included

export interface Proxies {
  readonly endpoints: readonly Endpoint[];
  reset(): void;
  blackhole(): void;
  heal(): void;
  close(): Promise<void>;
}

/**
 * One fault proxy per broker endpoint. Kafka clients connect to the addresses the cluster
 * advertises, not to the bootstrap list, so for Kafka the connections to those addresses are
 * redirected to the proxies (node:net's `connect`, which kafkajs's socket factory calls).
 */
export async function proxiesFor(setup: Setup): Promise<Proxies> {
  const proxies: FaultProxy[] = [];
  for (const target of setup.endpoints) proxies.push(await startFaultProxy(target));
  const restore =
    setup.process === 'kafka'
      ? redirectConnections(setup.endpoints.map((from, i) => ({ from, to: proxies[i]! })))
      : () => undefined;
  const all = (action: (p: FaultProxy) => void) => {
    for (const p of proxies) action(p);
  };
  return {
    endpoints:
      setup.process === 'kafka' ? setup.endpoints : proxies.map((p) => ({ host: p.host, port: p.port })),
    reset: () => all((p) => p.reset()),
    blackhole: () => all((p) => p.blackhole()),
    heal: () => all((p) => p.heal()),
    async close() {
      restore();
      await Promise.all(proxies.map((p) => p.close()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A stream of sends and deliveries, and its counts

export interface Stream {
  readonly sent: () => number;
  readonly confirmed: Set<string>;
  readonly failures: Map<string, number>;
  /** Deliveries per payload. */
  readonly received: Map<string, number>;
  /** Time of the last confirmation. */
  lastConfirmedAt(): number;
  /** Confirmations at or after `since`. */
  confirmedSince(since: number): number;
  /** The longest time without a confirmation between `from` and `to` (the pause a fault caused). */
  longestPause(from: number, to: number): number;
  /** Stops sending and waits for the sends in flight to settle (confirmed or failed). */
  stop(): Promise<void>;
}

export interface StreamOptions {
  /** Sequential senders. @default 4 */
  readonly senders?: number;
  /** Pause between one sender's sends, in ms (2 cores shared: keep the load modest). @default 10 */
  readonly pauseMs?: number;
}

/**
 * Sends `m<n>` to a queue from `producer` with several sequential senders while `consumer`
 * consumes it (ack on return). Each send is counted when it resolves (confirmed by the broker) or
 * rejects (with the error's name).
 */
export async function startStream(
  producer: Bus,
  consumer: Bus,
  queue: string,
  options: StreamOptions = {},
): Promise<Stream> {
  const received = new Map<string, number>();
  await consumer
    .queue<string>(queue)
    .consume((m) => void received.set(m.payload, (received.get(m.payload) ?? 0) + 1), { concurrency: 8 });
  return sendStream(producer, queue, received, options);
}

export function sendStream(
  producer: Bus,
  queue: string,
  received: Map<string, number>,
  { senders = 4, pauseMs = 10 }: StreamOptions = {},
): Stream {
  const confirmed = new Set<string>();
  const confirmedAt: number[] = [];
  const failures = new Map<string, number>();
  let n = 0;
  let stopping = false;
  const q = producer.queue<string>(queue);
  const sender = async () => {
    while (!stopping) {
      const id = `m${n++}`;
      try {
        await q.send(id);
        confirmed.add(id);
        confirmedAt.push(Date.now());
      } catch (error) {
        const name = error instanceof Error ? error.name : 'unknown';
        failures.set(name, (failures.get(name) ?? 0) + 1);
      }
      await sleep(pauseMs);
    }
  };
  const running = Array.from({ length: senders }, sender);
  return {
    sent: () => n,
    confirmed,
    failures,
    received,
    lastConfirmedAt: () => confirmedAt.at(-1) ?? 0,
    confirmedSince: (since) => confirmedAt.filter((t) => t >= since).length,
    longestPause(from, to) {
      let longest = 0;
      let last = from;
      for (const t of confirmedAt) {
        if (t < from) continue;
        if (t > to) break;
        longest = Math.max(longest, t - last);
        last = t;
      }
      return Math.max(longest, Math.min(to, Date.now()) - last);
    },
    async stop() {
      stopping = true;
      await Promise.all(running);
    },
  };
}

export interface Counts {
  readonly sent: number;
  readonly confirmed: number;
  readonly lost: number;
  readonly duplicates: number;
  /** Deliveries of sends that failed (the broker had them after all): allowed, counted. */
  readonly unconfirmedArrived: number;
}

export function countsOf(
  stream: Pick<Stream, 'sent' | 'confirmed' | 'received'>,
): Counts & { missing: string[] } {
  const missing = [...stream.confirmed].filter((id) => !stream.received.has(id));
  let duplicates = 0;
  let unconfirmedArrived = 0;
  for (const [id, times] of stream.received) {
    duplicates += times - 1;
    if (!stream.confirmed.has(id)) unconfirmedArrived++;
  }
  return {
    sent: stream.sent(),
    confirmed: stream.confirmed.size,
    lost: missing.length,
    duplicates,
    unconfirmedArrived,
    missing,
  };
}

/** Waits (bounded) until every confirmed send was delivered. */
export async function drain(
  stream: Pick<Stream, 'confirmed' | 'received'>,
  timeoutMs = 60_000,
): Promise<void> {
  await until(() => [...stream.confirmed].every((id) => stream.received.has(id)), timeoutMs, 100);
}

/** What a fault test measured, for its result line and the table at the end of the run. */
export interface Result {
  readonly setup: string;
  readonly fault: string;
  readonly counts: Counts;
  /** How long until confirmed sends flowed again, and from what (e.g. "after the reset"); undefined: never. */
  readonly recover: { readonly ms: number | undefined; readonly from: string };
  /** The figure the fault is about, when it is not the recovery (e.g. the blackhole's detection time and bound). */
  readonly key?: string;
  readonly timings?: Record<string, number | undefined>;
  readonly notes?: string;
}

export const seconds = (ms: number | undefined): string =>
  ms === undefined || Number.isNaN(ms) ? '—' : `${(ms / 1000).toFixed(2)} s`;

/**
 * One result line, in a fixed shape the CI log can be grepped for (`[faults]`), which the suite's
 * reporter (`table-reporter.ts`) also reads to print the table at the end:
 * set-up | fault | sent | confirmed | lost | duplicates | unconfirmed-but-delivered | recover | key | timings | notes.
 */
export function report({ setup, fault, counts, recover, key = '', timings = {}, notes = '' }: Result): void {
  const times = Object.entries(timings)
    .map(([k, v]) => `${k} ${seconds(v)}`)
    .join(', ');
  console.info(
    `[faults] ${setup} | ${fault} | sent ${counts.sent} | confirmed ${counts.confirmed} | lost ${counts.lost} | ` +
      `duplicates ${counts.duplicates} | unconfirmed-but-delivered ${counts.unconfirmedArrived} | ` +
      `recover ${recover.ms === undefined ? 'never' : `${seconds(recover.ms)} ${recover.from}`} | ${key} | ${times}` +
      (notes === '' ? '' : ` | ${notes}`),
  );
}

/**
 * When confirmed sends did not reach the live consumer: closes it, attaches a fresh consumer
 * straight to the broker and says how many of the missing ones it gets within `timeoutMs` — stored
 * but stuck behind a wedged consumer, or not stored at all (truly lost).
 */
export async function diagnoseMissing(
  setup: Setup,
  oldConsumer: Bus,
  queue: string,
  missing: readonly string[],
  timeoutMs = 30_000,
): Promise<string> {
  if (missing.length === 0) return '';
  const h = oldConsumer.health();
  const stuck = h.consumers
    .map(
      (c) =>
        `live consumer: bus ${h.state}, in flight ${c.inFlight}, handled ${c.handled}, last delivery ` +
        `${c.lastDeliveryAt === undefined ? 'never' : `${((Date.now() - c.lastDeliveryAt.getTime()) / 1000).toFixed(1)} s ago`}, lag ${c.lag ?? '?'}`,
    )
    .join('; ');
  await Promise.race([oldConsumer.close().catch(() => undefined), sleep(15_000)]);
  const fresh = await connect(setup.url(setup.endpoints), { adapters: [setup.adapter()] });
  fresh.on('error', () => undefined);
  try {
    const found = new Set<string>();
    await fresh.queue<string>(queue).consume((m) => void found.add(m.payload), { concurrency: 8 });
    await until(() => missing.every((id) => found.has(id)), timeoutMs, 100);
    const stored = missing.filter((id) => found.has(id)).length;
    return `${stuck}; of ${missing.length} missing, a fresh consumer got ${stored} (stored, stuck behind the live consumer) and ${missing.length - stored} never (not stored)`;
  } finally {
    await fresh.close().catch(() => undefined);
  }
}
