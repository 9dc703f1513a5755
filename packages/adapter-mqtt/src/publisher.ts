/**
 * The publishing connection: one per bus, separate from every consuming one (a handler that sends
 * must not wait on a connection whose input is waiting on that handler). Publishes resolve on
 * PUBACK/PUBCOMP; at most `maxInflight` (and the broker's receive maximum) await theirs at once, at
 * most `maxPendingPublishes` wait for a slot. While disconnected, a publish fails at once with a
 * retriable `ConnectionError`: core then waits for the connection, bounded, instead of mqtt.js's
 * unbounded offline queue. Publishes already handed to mqtt.js are resent by it after a reconnect.
 */
import { type AdapterContext, CapacityError, ConnectionError, PublishError } from '@omnibus/core';
import { type IPublishPacket, type MqttClient, type Packet, Store } from 'mqtt';
import { assertClientInternals, connectFirst, createClient, endClient } from './client.js';
import type { ResolvedOptions } from './options.js';

/** PUBACK reason code 0x10: the broker took the message but no subscription matched it. */
const NO_MATCHING_SUBSCRIBERS = 16;
/** What a publish resolves with: two constants, not an object per message. */
const ROUTED: { readonly routed: boolean } = Object.freeze({ routed: true });
const UNROUTED: { readonly routed: boolean } = Object.freeze({ routed: false });

export class Publisher {
  readonly client: MqttClient;
  private ready = false;
  private closing = false;
  private inflight = 0;
  private limit: number;
  private readonly waiting: { resolve: () => void; reject: (error: Error) => void }[] = [];
  /**
   * MQTT 5: packet ids whose PUBACK said 0x10. mqtt.js treats 0x10 as success and calls back with
   * the stored PUBLISH (its packet id), not with the PUBACK, so the reason code is read here first.
   */
  private readonly unrouted = new Set<number>();
  /** Publishes handed to mqtt.js and not confirmed: failed (retriably) when the connection drops. */
  private readonly unconfirmed = new Set<(error: Error) => void>();

  constructor(
    private readonly o: ResolvedOptions,
    clientId: string,
    private readonly context: AdapterContext,
    private readonly where: string,
  ) {
    this.limit = o.maxInflight;
    this.client = createClient(o, { clientId, persistent: false }, (error) =>
      this.context.logger.warn({ error: error.message }, `publisher: ${error.message}`),
    );
    this.client.on('packetreceive', (packet: Packet) => {
      if (
        (packet.cmd === 'puback' || packet.cmd === 'pubrec') &&
        packet.reasonCode === NO_MATCHING_SUBSCRIBERS
      )
        this.unrouted.add(packet.messageId!);
    });
    this.client.on('connect', () => {
      // mqtt-packet writes each tick's packets in one go already; with Nagle's algorithm on, a
      // packet written while an earlier one waits for its TCP acknowledgement waits up to 40 ms
      // (the holders' claims, which this connection publishes and receives, took 44 ms each).
      (this.client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.limit = Math.min(o.maxInflight, this.client.serverProperties?.receiveMaximum ?? Infinity);
      this.ready = true;
      this.context.setState('connected');
      this.pump();
    });
    this.client.on('close', () => {
      if (!this.ready) return;
      this.ready = false;
      this.unrouted.clear();
      if (this.closing) return;
      const error = new ConnectionError(`lost the connection to ${this.where}; reconnecting`, {
        adapter: 'mqtt',
      });
      this.context.setState('reconnecting', error);
      for (const waiter of this.waiting.splice(0)) waiter.reject(error);
      this.failUnconfirmed(error);
    });
    this.client.on('disconnect', (packet) => {
      const hint =
        packet.reasonCode === 142
          ? `: session taken over; is another process using client id "${clientId}"?`
          : '';
      this.context.reportError(
        new ConnectionError(
          `the broker disconnected the publisher (reason ${packet.reasonCode ?? 'unknown'}${hint})`,
          {
            adapter: 'mqtt',
          },
        ),
      );
    });
  }

  async connect(): Promise<void> {
    await connectFirst(this.client, this.o, this.where);
    assertClientInternals(this.client);
  }

  /** The broker's largest packet (MQTT 5 CONNACK), when it says. */
  get maximumPacketSize(): number | undefined {
    return this.client.serverProperties?.maximumPacketSize;
  }

  /**
   * Publishes and resolves once the broker has it (PUBACK/PUBCOMP; QoS 0: once written).
   * `routed` is false when an MQTT 5 broker said no subscription matched (the message is gone).
   * `retain` only for the holders' claims (claims.ts).
   */
  publish(
    topic: string,
    payload: Buffer | Uint8Array,
    qos: 0 | 1 | 2,
    properties?: IPublishPacket['properties'],
    retain = false,
  ): Promise<{ routed: boolean }> {
    if (!this.ready) return Promise.reject(this.notConnected());
    // The common case: a slot is free and nobody waits for one; no promise but the publish's own.
    if (this.inflight < this.limit && this.waiting.length === 0) {
      this.inflight++;
      return this.issue(topic, payload, qos, properties, retain);
    }
    return this.slot().then(() => this.issue(topic, payload, qos, properties, retain));
  }

  /** Hands one publish to mqtt.js, its in-flight slot taken; frees the slot once it settles. */
  private issue(
    topic: string,
    payload: Buffer | Uint8Array,
    qos: 0 | 1 | 2,
    properties: IPublishPacket['properties'] | undefined,
    retain: boolean,
  ): Promise<{ routed: boolean }> {
    return new Promise<{ routed: boolean }>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        this.unconfirmed.delete(fail);
        this.release();
        reject(error);
      };
      this.unconfirmed.add(fail);
      const body = Buffer.isBuffer(payload)
        ? payload
        : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      try {
        this.client.publish(
          topic,
          body,
          retain ? { qos, retain, properties } : properties === undefined ? { qos } : { qos, properties },
          (error, packet) => {
            if (error) return fail(this.publishError(topic, error));
            if (settled) return;
            settled = true;
            this.unconfirmed.delete(fail);
            this.release();
            const id = (packet as { messageId?: number } | undefined)?.messageId;
            resolve(id === undefined || !this.unrouted.delete(id) ? ROUTED : UNROUTED);
          },
        );
      } catch (error) {
        fail(this.unwritable(topic, error));
      }
    });
  }

  private release(): void {
    this.inflight--;
    if (this.waiting.length > 0) this.pump();
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const waiter of this.waiting.splice(0)) {
      waiter.reject(new ConnectionError('the bus is closing', { adapter: 'mqtt', retriable: false }));
    }
    await endClient(this.client, undefined, 5000);
  }

  /**
   * After a lost connection mqtt.js would send its unconfirmed publishes again, before anything
   * else — before consumers are subscribed again, and (MQTT 5) without telling us that nobody got
   * them. So they fail retriably instead, and core sends them again through `send`, which knows
   * what to do (holder, reason codes). The broker may have had them: at-least-once, not at-most.
   */
  private failUnconfirmed(error: Error): void {
    for (const reject of this.unconfirmed) reject(error);
    this.unconfirmed.clear();
    // The publisher never subscribes: everything outstanding is a publish.
    this.client.outgoing = {};
    this.client.outgoingStore = new Store();
  }

  /** Waits for an in-flight slot (none is free, or others wait before this one) and takes it. */
  private async slot(): Promise<void> {
    if (this.waiting.length >= this.o.maxPendingPublishes) {
      throw new CapacityError(
        `${this.waiting.length} publishes already wait for one of ${this.limit} in-flight slots; slow down or raise maxPendingPublishes`,
        this.o.maxPendingPublishes,
        { adapter: 'mqtt' },
      );
    }
    await new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    if (!this.ready) {
      this.inflight--;
      this.pump();
      throw this.notConnected();
    }
  }

  private pump(): void {
    while (this.inflight < this.limit && this.waiting.length > 0) {
      this.inflight++;
      this.waiting.shift()!.resolve();
    }
  }

  private notConnected(): ConnectionError {
    return new ConnectionError(`not connected to ${this.where} (reconnecting)`, { adapter: 'mqtt' });
  }

  /**
   * mqtt-packet threw while writing (a field over its length prefix, e.g. an MQTT 5 user property
   * over 65,535 bytes): part of the packet may already sit in the stream, and the broker would wait
   * for the rest forever. So the connection is dropped (mqtt.js reconnects; what was in flight
   * fails retriably) and this publish fails for good.
   */
  private unwritable(topic: string, error: unknown): PublishError {
    this.client.stream?.destroy();
    return new PublishError(
      `mqtt.js could not encode the message for "${topic}" (a field over an MQTT length limit?): ${String(error)}`,
      { adapter: 'mqtt', cause: error },
    );
  }

  private publishError(topic: string, error: Error): Error {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number') {
      return new PublishError(`the broker refused the message for "${topic}": ${error.message}`, {
        adapter: 'mqtt',
        cause: error,
      });
    }
    // mqtt.js fails what it still holds when the client ends.
    return new ConnectionError(`publishing to "${topic}" failed: ${error.message}`, {
      adapter: 'mqtt',
      cause: error,
      retriable: !this.closing,
    });
  }
}
