/**
 * mqtt.js connections: opening one (first connect bounded, errors typed), ending a session for
 * good, and the `Receiver` — a consuming connection whose PUBACK waits for core's settlement.
 *
 * Why the receiver works the way it does (PITFALLS.md): mqtt.js handles incoming packets one at a
 * time and sends the PUBACK of a QoS 1 PUBLISH when `handleMessage` calls back. Calling back only
 * after the handler would make the connection serial (every packet, PINGRESP and SUBACK included,
 * waits for the handler). So `handleMessage` calls back at once *with an error*, which tells
 * mqtt.js to move on without sending the PUBACK (`handlers/publish.js`), and the receiver sends the
 * PUBACK itself when core settles the delivery. Acks are never sent before the handler settled.
 */
import { randomUUID } from 'node:crypto';
import { CONFIRMED, ConnectionError, Outstanding, within } from '@omnibus/core';
import mqtt, { type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { ResolvedOptions } from './options.js';
import type { Publisher } from './publisher.js';

export interface SessionSpec {
  readonly clientId: string;
  /** Persistent session (clean start off, session expiry) or a clean one. */
  readonly persistent: boolean;
  /** MQTT 5 receive maximum: how many unacknowledged QoS 1 messages the broker may send. */
  readonly receiveMaximum?: number;
}

/** An mqtt.js client, not yet connected, with an error listener (an unhandled 'error' would crash). */
export function createClient(
  o: ResolvedOptions,
  spec: SessionSpec,
  onError: (error: Error) => void,
): MqttClient {
  const properties: NonNullable<mqtt.IClientOptions['properties']> = {};
  if (o.protocolVersion === 5) {
    properties.sessionExpiryInterval = spec.persistent ? o.sessionExpirySec : 0;
    if (spec.receiveMaximum !== undefined) {
      properties.receiveMaximum = Math.max(1, Math.min(65535, spec.receiveMaximum));
    }
  }
  const client = mqtt.connect({
    ...o.base,
    clientId: spec.clientId,
    clean: !spec.persistent,
    manualConnect: true,
    ...(o.protocolVersion === 5 ? { properties } : {}),
  });
  client.on('error', onError);
  return client;
}

/** Connects and resolves with the CONNACK; rejects with `ConnectionError` on error or timeout. */
export async function connectFirst(
  client: MqttClient,
  o: ResolvedOptions,
  where: string,
  retriable = false,
): Promise<IConnackPacket> {
  const connecting = new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
    client.connect();
  });
  try {
    const connack = await within(connecting, o.connectTimeoutMs);
    if (connack === undefined) throw new Error(`no CONNACK within ${o.connectTimeoutMs} ms`);
    return connack;
  } catch (error) {
    client.end(true);
    throw new ConnectionError(`cannot connect to ${where}: ${(error as Error).message}`, {
      adapter: 'mqtt',
      cause: error,
      retriable,
    });
  }
}

const noop = () => undefined;

/** Disconnects; a client that cannot say goodbye within `timeoutMs` is cut off. */
export async function endClient(
  client: MqttClient,
  options?: { readonly sessionExpiryInterval?: number },
  timeoutMs = 2000,
): Promise<void> {
  const properties = options === undefined ? undefined : { properties: options };
  await within(client.endAsync(false, properties).catch(noop), timeoutMs);
  if (!client.disconnected) await client.endAsync(true).catch(noop);
}

/**
 * Ends a persistent session for good, so that the broker forgets its subscriptions (an offline
 * share-group member would keep taking its share). MQTT 5 says so in the DISCONNECT; MQTT 3.1.1
 * has to connect once more with a clean session.
 */
export async function endSession(client: MqttClient, o: ResolvedOptions, clientId: string): Promise<void> {
  if (o.protocolVersion === 5 && client.connected) {
    await endClient(client, { sessionExpiryInterval: 0 });
    return;
  }
  await endClient(client);
  const wipe = createClient(o, { clientId, persistent: false }, () => undefined);
  try {
    await connectFirst(wipe, o, clientId);
  } finally {
    await endClient(wipe);
  }
}

/**
 * Runs a SUBSCRIBE or UNSUBSCRIBE (`request`) on `client` while its connection is up, and fails it
 * with a retriable `ConnectionError` when the connection is not up or closes before the broker
 * answers. mqtt.js parks a request made while disconnected in its offline queue and fails parked
 * requests only at the *next* close: on a connection that does not reconnect (a holder's, or one
 * another connection took the session of) it would never settle, not even after `end()`.
 */
export function whileConnected<T>(client: MqttClient, what: string, request: () => Promise<T>): Promise<T> {
  const lost = (why: string) =>
    new ConnectionError(`${what} failed: ${why}`, { adapter: 'mqtt', retriable: true });
  if (!client.connected) return Promise.reject(lost('not connected'));
  return new Promise<T>((resolve, reject) => {
    const onClose = () => reject(lost('the connection closed before the broker answered'));
    client.once('close', onClose);
    request()
      .then(resolve, reject)
      .finally(() => client.off('close', onClose));
  });
}

/** Settles one received message. */
export interface Ack {
  /** Sends the PUBACK (once). Resolves when written, or at once when the connection it came on is gone. */
  ack(): Promise<void>;
}

type SendPacket = (packet: Record<string, unknown>, cb?: (error?: Error) => void) => void;

const SESSION_TAKEN_OVER = 142;
const QUICK_CLOSE_MS = 5000;
const QUICK_CLOSES = 3;
/**
 * How long a drain waits for the broker: for its marker to come back (`collect`), and for the
 * PUBACKs of the messages a sweep moved (holder.ts). Past it, what is not confirmed stays where it
 * was for a later drain. Far above a healthy broker's answer (milliseconds).
 */
export const DRAIN_TIMEOUT_MS = 10_000;
/** In the topic of every drain marker, and of nothing else: queue and topic names cannot hold "~". */
const DRAIN_MARKER = '/~drain/';
/**
 * Done at once: core's `CONFIRMED`, so an ack whose PUBACK was written at once (or that has nothing
 * left to do) settles its message without a promise and its async frames.
 */
const RESOLVED: Promise<void> = CONFIRMED;

/** Nothing to acknowledge (QoS 0). */
const NO_ACK: Ack = { ack: () => RESOLVED };

/**
 * The PUBACK of one QoS 1 PUBLISH. A class, not a literal with a closure: one is made per message.
 */
class PubAck implements Ack {
  private acked = false;

  constructor(
    private readonly receiver: Receiver,
    private readonly messageId: number,
    private readonly generation: number,
  ) {}

  ack(): Promise<void> {
    if (this.acked) return RESOLVED;
    this.acked = true;
    return this.receiver.puback(this.messageId, this.generation);
  }
}

/** Tells mqtt.js to go on with the next packet without sending a PUBACK. */
const DEFER = new Error('omnibus: PUBACK deferred until the handler settles');

export type OnPublish = (packet: IPublishPacket, ack: Ack) => void;

/** A consuming connection: hands each PUBLISH over at once and sends its PUBACK when told. */
export class Receiver {
  readonly client: MqttClient;
  /** Bumped on every lost connection: PUBACKs of earlier deliveries are not sent on a new one. */
  private generation = 0;
  /**
   * Set while PUBACKs wait for the socket to drain (mqtt.js waits for 'drain' when a write did not
   * fit its buffer): resolves once they have left, or once the connection is gone. PUBACKs written
   * at once need nothing: no promise per acknowledgement. (mqtt-packet 9 reports every PUBACK as
   * written at once, full buffer or not; this is for a version that does not.)
   */
  private draining: { readonly done: Promise<void>; readonly settle: () => void } | undefined;
  /** Set by `written` when mqtt.js calls back during the write itself (the packet fitted). */
  private writtenAtOnce = false;
  private readonly written = (): void => {
    this.writtenAtOnce = true;
    const draining = this.draining;
    if (draining !== undefined) {
      this.draining = undefined;
      draining.settle();
    }
  };
  private readonly sendPacket: SendPacket;
  private readonly markers = new Map<string, () => void>();
  /** Deliveries not acked yet. */
  private readonly unsettled = new Outstanding();

  constructor(
    private readonly o: ResolvedOptions,
    readonly spec: SessionSpec,
    private readonly onPublish: OnPublish,
    onError: (error: Error) => void,
    /**
     * Called when another connection took this session over, after which this one stops
     * reconnecting (two connections with one client id would take it from each other forever).
     * MQTT 5 brokers may say so (reason 0x8E); Mosquitto 2.0.11 just closes the connection, so
     * three closes in a row within seconds of connecting count as a takeover too.
     */
    private readonly onTakenOver: (why: string) => void = () => undefined,
  ) {
    this.client = createClient(o, spec, onError);
    this.client.on('close', () => {
      // mqtt.js waits for the stream's 'drain' when a write did not fit its buffer; a closed stream
      // never drains, so those writes are settled here (the PUBACKs are lost with the connection).
      const draining = this.draining;
      this.draining = undefined;
      draining?.settle();
      this.generation++;
      this.unsettled.reset();
      this.noticeQuickClose();
    });
    this.client.on('connect', () => {
      this.connectedAt = Date.now();
    });
    this.client.on('disconnect', (packet) => {
      if (packet.reasonCode === SESSION_TAKEN_OVER)
        this.takenOver('the broker said: session taken over (0x8E)');
    });
    this.client.handleMessage = (packet, callback) => this.handle(packet, callback);
    const client = this.client as unknown as { _sendPacket: SendPacket };
    this.sendPacket = (packet, cb) => client._sendPacket(packet, cb);
  }

  private connectedAt = 0;
  private quickCloses = 0;

  private noticeQuickClose(): void {
    if (this.client.disconnecting || this.connectedAt === 0) return;
    // Only connections that got their CONNACK count: failed attempts while the broker is down do not.
    this.quickCloses = Date.now() - this.connectedAt < QUICK_CLOSE_MS ? this.quickCloses + 1 : 0;
    this.connectedAt = 0;
    if (this.quickCloses >= QUICK_CLOSES) {
      this.takenOver(
        `the broker closed the connection ${QUICK_CLOSES} times in a row right after connecting`,
      );
    }
  }

  private takenOver(why: string): void {
    if (this.client.options.reconnectPeriod === 0) return;
    this.client.options.reconnectPeriod = 0;
    this.onTakenOver(why);
  }

  /** A consumer's connection fails retriably: the broker may be restarting, core tries again. */
  connect(where: string): Promise<IConnackPacket> {
    return connectFirst(this.client, this.o, where, true);
  }

  /**
   * Leaves `filter` and waits until everything the broker had queued for this session has arrived:
   * messages reach a client in order, so once a marker it published to itself arrives (acked at
   * once, never handed over), nothing older is left. Resolves false when the marker is late.
   */
  async collect(filter: string, topic: string, publisher: Publisher): Promise<boolean> {
    const { client } = this;
    await whileConnected(client, `leaving "${filter}"`, () => client.unsubscribeAsync(filter));
    const marker = `${topic}${DRAIN_MARKER}${randomUUID()}`;
    let gone!: () => void;
    const seen = new Promise<boolean>((resolve) => {
      this.markers.set(marker, () => resolve(true));
      // A connection that does not come back (the holder's, or one whose session another connection
      // took over) cannot receive the marker: its session's new owner gets it (and drops it, see
      // `handle`). Waiting out the timeout would hold a starting consumer's live messages that long.
      gone = () => {
        if (client.options.reconnectPeriod === 0) resolve(false);
      };
      client.on('close', gone);
    });
    let arrived = false;
    try {
      await whileConnected(client, 'subscribing to the drain marker', () =>
        client.subscribeAsync(marker, { qos: 1 }),
      );
      await publisher.publish(marker, Buffer.alloc(0), 1);
      arrived = await within(seen, DRAIN_TIMEOUT_MS, false);
    } finally {
      client.off('close', gone);
      this.markers.delete(marker);
    }
    // A session may outlive this connection (the 3.1.1 holder's does): leave no subscription in it.
    if (arrived) {
      await whileConnected(client, 'leaving the drain marker', () => client.unsubscribeAsync(marker)).catch(
        noop,
      );
    }
    return arrived;
  }

  /** Resolves when every delivery handed over has been acked (or its connection lost). */
  idle(): Promise<void> {
    return this.unsettled.idle();
  }

  /** Resolves when every PUBACK written so far has left. */
  flushed(): Promise<void> {
    return this.draining?.done ?? RESOLVED;
  }

  /**
   * Writes the PUBACK of a delivery of connection `generation` (nothing when that connection is
   * gone: the broker sends the message again). Resolves once written.
   */
  puback(messageId: number, generation: number): Promise<void> {
    if (generation !== this.generation) return RESOLVED;
    this.unsettled.done();
    if (!this.client.connected) return RESOLVED;
    this.writtenAtOnce = false;
    // mqtt.js calls back at once when the packet fitted the socket's buffer, else on 'drain'.
    this.sendPacket({ cmd: 'puback', messageId, reasonCode: 0 }, this.written);
    if (this.writtenAtOnce) return RESOLVED;
    if (this.draining === undefined) {
      let settle!: () => void;
      const done = new Promise<void>((resolve) => {
        settle = resolve;
      });
      this.draining = { done, settle };
    }
    return this.draining.done;
  }

  private handle(packet: IPublishPacket, callback: (error?: Error) => void): void {
    const marker = this.markers.get(packet.topic);
    if (marker !== undefined) {
      this.markers.delete(packet.topic);
      callback();
      marker();
      return;
    }
    if (packet.topic.includes(DRAIN_MARKER)) {
      // Another connection's marker: it subscribed in this session, then lost the session to this
      // connection (two buses draining one holder). Never a message (names cannot hold "~"): acked
      // and dropped, or a sweep would move it to the queue as a message with an empty body.
      callback();
      return;
    }
    if (packet.qos !== 1) {
      // QoS 0 has no acknowledgement; QoS 2 is never granted (subscriptions use QoS 1 at most).
      callback();
      this.onPublish(packet, NO_ACK);
      return;
    }
    this.unsettled.add();
    callback(DEFER);
    this.onPublish(packet, new PubAck(this, packet.messageId!, this.generation));
  }
}

/** Both private members the receiver relies on exist in this mqtt.js (checked once at connect). */
export function assertClientInternals(client: MqttClient): void {
  if (typeof (client as unknown as { _sendPacket?: unknown })._sendPacket !== 'function') {
    throw new ConnectionError(
      'this mqtt.js version has no _sendPacket: install mqtt 5.x as @omnibus/adapter-mqtt declares',
      { adapter: 'mqtt', retriable: false },
    );
  }
}
