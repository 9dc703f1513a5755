/**
 * One holder operation at a time per queue, across every bus (holder.ts). Connecting as a queue's
 * holder takes its session over from whoever holds it: a bus that connects while another has moved
 * the holder's messages but not acknowledged them yet gets them again from the broker, and moves
 * them again (two sweeps at the same moment duplicated every message the holder kept).
 *
 * MQTT has no lock, but the broker forwards what it takes to every subscriber in one order
 * (Mosquitto handles one packet at a time; MQTT itself promises it only per topic and publisher).
 * So each holder operation first publishes a *claim*, retained, on `<queue topic>/~claim/<id>`, a
 * topic every claiming bus subscribes to, and waits for its own claim to come back: the claims that
 * came before it are older, and every bus sees the same ones as older. Retained, so a bus that
 * subscribes later still sees a claim under way; released by an empty retained message.
 *
 * - An older *drain* claim: another bus is taking the holder's messages over right now, for a
 *   consumer of the queue that is in the share group. A drain has nothing left to do, and neither
 *   has a provision (what is sent meanwhile reaches that consumer; it provisions when it leaves). It
 *   skips, instead of waiting for handlers that may run long.
 * - Older *provision* claims only: they take a connect and a subscribe; it waits for their release.
 *
 * A claim is renewed while its operation runs, and lapses when it is not (its bus is gone).
 */
import { randomUUID } from 'node:crypto';
import { ConnectionError, within } from '@omnibus/core';
import type { IPublishPacket } from 'mqtt';
import { DRAIN_TIMEOUT_MS, whileConnected } from './client.js';
import type { MqttAdapter } from './mqtt-adapter.js';

export type ClaimKind = 'drain' | 'provision';

/** A claim this bus holds: `release` ends it (never rejects). */
export interface Claim {
  release(): Promise<void>;
}

/** In the topic of every claim, and of nothing else: queue names cannot hold "~". */
const CLAIM = '/~claim/';
/** How often a held claim is published again, and how long one not published again is trusted. */
const RENEW_MS = 2000;
export const LAPSE_MS = 8000;
/** How often a waiting claim looks for lapsed older ones. */
const RECHECK_MS = 500;
const RESOLVED: Promise<void> = Promise.resolve();

interface Seen {
  /** When this bus first saw it: the broker's order. */
  readonly order: number;
  readonly kind: ClaimKind;
  /** The latest time it is known to have been alive. */
  alive: number;
}

interface QueueClaims {
  readonly prefix: string;
  subscribed: Promise<void> | undefined;
  readonly seen: Map<string, Seen>;
  /** Called on every claim, renewal or release that arrives. */
  readonly listeners: Set<() => void>;
}

export class HolderClaims {
  /** By topic prefix (`<queue topic>/~claim/`). */
  private readonly queues = new Map<string, QueueClaims>();
  private order = 0;
  /** Claims this bus holds, renewed until released. */
  private readonly held = new Map<string, NodeJS.Timeout>();
  /** Acquisitions that have not seen their own claim come back, failed when the connection drops. */
  private readonly pending = new Set<(error: Error) => void>();
  /** Claims this bus released while the connection was down: cleared once it is back. */
  private readonly unreleased = new Set<string>();

  constructor(private readonly shared: MqttAdapter) {
    const { client } = shared.publisher;
    client.on('message', (topic, payload, packet) => this.received(topic, payload, packet));
    client.on('close', () => {
      // The broker's order is lost with the connection (the retained claims come again, in any
      // order, when mqtt.js subscribes again): what waited for its claim tries again later.
      for (const q of this.queues.values()) q.seen.clear();
      const lost = new ConnectionError('lost the connection while claiming a queue holder', {
        adapter: 'mqtt',
        retriable: true,
      });
      for (const fail of [...this.pending]) fail(lost);
    });
    client.on('connect', () => {
      for (const topic of [...this.unreleased]) {
        this.publish(topic, '').then(
          () => this.unreleased.delete(topic),
          () => undefined,
        );
      }
    });
  }

  /**
   * Claims the holder of `queue` for one operation. Resolves with the claim, or with undefined when
   * an older drain claim says the operation should be skipped. Rejects with a retriable
   * `ConnectionError` when the claim cannot be made or does not come back in time.
   */
  async acquire(queue: string, kind: ClaimKind): Promise<Claim | undefined> {
    const q = this.queue(queue);
    await this.subscribe(q);
    const id = randomUUID();
    const topic = q.prefix + id;
    const claim: Claim = { release: () => this.release(q, id, topic) };
    let listener: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    let fail!: (error: Error) => void;
    try {
      let onArrival!: () => void;
      const arrival = new Promise<void>((resolve) => {
        onArrival = resolve;
      });
      const outcome = new Promise<'skip' | 'held'>((resolve, reject) => {
        fail = reject;
        this.pending.add(fail);
        listener = () => {
          const mine = q.seen.get(id);
          if (mine === undefined) return;
          onArrival();
          const now = Date.now();
          let older = false;
          for (const [other, seen] of q.seen) {
            if (seen.order >= mine.order || this.unreleased.has(q.prefix + other)) continue;
            if (now - seen.alive > LAPSE_MS) {
              // Its bus is gone: forget it, and clear it for buses that subscribe later.
              q.seen.delete(other);
              void this.publish(q.prefix + other, '').catch(() => undefined);
              continue;
            }
            if (seen.kind === 'drain') return resolve('skip');
            older = true;
          }
          if (!older) resolve('held');
        };
        q.listeners.add(listener);
        timer = setInterval(listener, RECHECK_MS);
      });
      // Awaited below; a lost connection may reject it first.
      outcome.catch(() => undefined);
      // The claim's own arrival is what counts, not its PUBACK: Mosquitto (without
      // `set_tcp_nodelay`) holds the PUBACK back behind the PUBLISH it forwards to the same
      // connection until that one's TCP acknowledgement, 40 ms later.
      const published = this.publish(topic, `${Date.now()} ${kind}`);
      const arrived = await within(
        Promise.race([outcome, arrival, published.then(() => arrival)]).then(() => true),
        DRAIN_TIMEOUT_MS,
        false,
      );
      if (!arrived) throw new Error(`the claim did not come back within ${DRAIN_TIMEOUT_MS} ms`);
      if ((await outcome) === 'skip') {
        await claim.release();
        return undefined;
      }
    } catch (error) {
      await claim.release();
      throw new ConnectionError(`could not claim the holder of queue "${queue}": ${String(error)}`, {
        adapter: 'mqtt',
        cause: error,
        retriable: true,
      });
    } finally {
      this.pending.delete(fail);
      if (listener !== undefined) q.listeners.delete(listener);
      clearInterval(timer);
    }
    const renew = setInterval(() => {
      void this.publish(topic, `${Date.now()} ${kind}`).catch(() => undefined);
    }, RENEW_MS);
    renew.unref();
    this.held.set(id, renew);
    return claim;
  }

  close(): void {
    for (const renew of this.held.values()) clearInterval(renew);
    this.held.clear();
  }

  /**
   * Sent, not waited for (its PUBACK comes 40 ms late, see `acquire`): this bus's next claim goes
   * out behind it on the same connection, so every bus sees this one released before it.
   */
  private release(q: QueueClaims, id: string, topic: string): Promise<void> {
    clearInterval(this.held.get(id));
    this.held.delete(id);
    q.seen.delete(id);
    // The connection is down: cleared once it is back (until then, other buses see it lapse).
    this.publish(topic, '').catch(() => this.unreleased.add(topic));
    return RESOLVED;
  }

  private received(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const at = topic.lastIndexOf(CLAIM);
    if (at < 0) return;
    const q = this.queues.get(topic.slice(0, at + CLAIM.length));
    if (q === undefined) return;
    const id = topic.slice(at + CLAIM.length);
    if (payload.length === 0) {
      q.seen.delete(id);
    } else {
      const [stamp, kind] = payload.toString().split(' ');
      const now = Date.now();
      // A retained claim (sent because this bus subscribed) may be old: it was alive when stamped.
      // Another host's clock may run ahead: never later than now.
      const alive = packet.retain ? Math.min(Number(stamp) || 0, now) : now;
      const seen = q.seen.get(id);
      if (seen !== undefined) seen.alive = Math.max(seen.alive, alive);
      else q.seen.set(id, { order: ++this.order, kind: kind === 'drain' ? 'drain' : 'provision', alive });
    }
    for (const listener of [...q.listeners]) listener();
  }

  private queue(queue: string): QueueClaims {
    const prefix = `${this.shared.queueTopic(queue)}${CLAIM}`;
    let q = this.queues.get(prefix);
    if (q === undefined) {
      q = { prefix, subscribed: undefined, seen: new Map(), listeners: new Set() };
      this.queues.set(prefix, q);
    }
    return q;
  }

  /** Subscribes once per queue (mqtt.js subscribes again after a reconnection). */
  private subscribe(q: QueueClaims): Promise<void> {
    const { client } = this.shared.publisher;
    q.subscribed ??= whileConnected(client, `subscribing to the claims on "${q.prefix}+"`, () =>
      client.subscribeAsync(`${q.prefix}+`, { qos: 1 }),
    ).then(
      () => undefined,
      (error: unknown) => {
        q.subscribed = undefined;
        throw error;
      },
    );
    return q.subscribed;
  }

  /** Through the bus's publisher: bounded like every publish, and its PUBACK read as theirs. */
  private publish(topic: string, payload: string): Promise<void> {
    return this.shared.publisher
      .publish(topic, Buffer.from(payload), 1, undefined, true)
      .then(() => undefined);
  }
}
