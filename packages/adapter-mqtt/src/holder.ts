/**
 * Queues are shared subscriptions (`$share/<queue>/<queuePrefix>/<queue>`), and MQTT keeps nothing
 * for a topic nobody subscribes to. So a queue with no consumer gets a *holder*: a persistent
 * session subscribed to the share group and left offline, which stores what is sent meanwhile.
 *
 * Mosquitto 2.0.11 keeps giving an offline share-group member its round-robin share, so a holder
 * must not stay beside live consumers: a consumer that starts *drains* it — connects as the holder,
 * leaves the share group, takes what it stored (in order, ahead of its own live messages), then
 * lets the holder's session go (`letGo`) — and looks again every `holderCheckMs` for a holder that
 * appeared while it was consuming (a race with a sender, or, on 3.1.1, a sender that could not know).
 *
 * When is a holder provisioned? MQTT 5 says so: a PUBACK with reason 0x10 (no matching
 * subscribers) means the message reached nobody, so the sender provisions the holder and sends it
 * again. MQTT 3.1.1 has no reason codes: a sender provisions the holder before its first send to a
 * queue that has no consumer in this bus, and a bus's last consumer of a queue provisions it on close.
 */
import { ConnectionError, Pending, within } from '@omnibus/core';
import { type Claim, HolderClaims } from './claims.js';
import {
  DRAIN_TIMEOUT_MS,
  endClient,
  type OnPublish,
  type Receiver,
  type SessionSpec,
  whileConnected,
} from './client.js';
import type { MqttAdapter } from './mqtt-adapter.js';
import { decode, encode } from './wire.js';

/** A consumer of the queue on this bus; `subscribed` while its member is connected and in the share group. */
export interface HolderConsumer {
  readonly subscribed: boolean;
}

/** A drain in progress on this bus: it holds the holder's session until its messages are settled. */
interface Draining {
  readonly handedOver: Promise<void>;
  readonly done: Promise<void>;
  /** A provision asked for meanwhile, carried out once the drain has let the session go. */
  provisionAfter: boolean;
}

interface QueueState {
  readonly consumers: HolderConsumer[];
  /** 3.1.1: the publisher connection (see `epoch`) for which a holder was provisioned. */
  provisionedEpoch: number;
  /** 3.1.1: the provision under way for a publisher connection, which every send then waits for. */
  provisioning: { readonly epoch: number; readonly done: Promise<void> } | undefined;
  draining: Draining | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Released by the last holder operation: this bus connects as the holder once at a time. */
  lock: Promise<void>;
}

export class Holders {
  private readonly queues = new Map<string, QueueState>();

  readonly claims: HolderClaims;

  constructor(private readonly shared: MqttAdapter) {
    this.claims = new HolderClaims(shared);
  }

  holderId(queue: string): string {
    return `${this.shared.o.clientIdPrefix}omnibus-holder:${this.shared.queueTopic(queue)}`;
  }

  /**
   * Counts the publisher's reconnections. After one, the broker may have restarted, and Mosquitto
   * 2.0.11 does not restore shared subscriptions from persistence: until the consumers subscribe
   * again, only a fresh holder subscription keeps what is sent.
   */
  private epoch = 0;

  publisherReconnected(): void {
    this.epoch++;
  }

  /** 3.1.1: before sending to a queue, make sure something stores the message. */
  async beforeSend(queue: string): Promise<void> {
    const state = this.state(queue);
    if (state.provisionedEpoch === this.epoch) return;
    if (this.epoch === 0 && state.consumers.length > 0) return;
    // One provision per publisher connection, however many sends wait: each would connect as the
    // holder in turn, taking the session from the other buses' drains again and again.
    const epoch = this.epoch;
    if (state.provisioning?.epoch !== epoch) {
      const done = this.provision(queue).then(() => {
        state.provisionedEpoch = epoch;
      });
      const provisioning = { epoch, done };
      state.provisioning = provisioning;
      void done
        .finally(() => {
          if (state.provisioning === provisioning) state.provisioning = undefined;
        })
        .catch(() => undefined);
    }
    await state.provisioning.done;
  }

  /**
   * Creates (or refreshes) the holder session: subscribed to the share group, then offline. Fails
   * retriably (core sends again) when another connection takes the holder's client id meanwhile.
   *
   * While this bus drains the holder, it is deferred until the drain ends: connecting as the holder
   * would take the drain's connection over while messages it delivered are still being settled (a
   * consumer closing gives them back as copies, then acks the originals), so those acks would be
   * lost and the broker would keep the originals beside their copies — a duplicate for the next
   * consumer. Nothing needs the holder meanwhile: a drain runs for a consumer of this bus that is
   * in the share group (it joins before draining and leaves only after the drain is done).
   */
  async provision(queue: string): Promise<void> {
    const draining = this.state(queue).draining;
    if (draining !== undefined) {
      draining.provisionAfter = true;
      return;
    }
    const unlock = await this.lock(queue);
    let claim: Claim | undefined;
    try {
      claim = await this.claims.acquire(queue, 'provision');
    } catch (error) {
      unlock();
      throw error;
    }
    if (claim === undefined) {
      // Another bus drains the holder right now, for a consumer in the share group (see claims.ts).
      unlock();
      return;
    }
    // Anything the holder already stores would be sent to this connection; it is never acked
    // here, so the broker keeps it (and sends it again, flagged as a duplicate, to a drainer).
    const holder = this.receiver(queue, { persistent: true, receiveMaximum: 1 }, () => undefined);
    try {
      await holder.connect(this.shared.where);
      // Another bus may take the holder's session over right after this CONNACK (its own provision
      // or drain): then this fails, instead of waiting forever with the queue's holder lock held.
      await this.subscribe(holder, queue);
    } catch (error) {
      throw new ConnectionError(`could not provision the holder of queue "${queue}": ${String(error)}`, {
        adapter: 'mqtt',
        cause: error,
      });
    } finally {
      await endClient(holder.client);
      await claim.release();
      unlock();
    }
  }

  register(queue: string, consumer: HolderConsumer): void {
    const state = this.state(queue);
    state.consumers.push(consumer);
    const every = this.shared.o.holderCheckMs;
    if (state.timer === undefined && every > 0) {
      // Jittered, so that consumers on several buses rarely sweep at the same moment.
      state.timer = setInterval(
        () => {
          this.drain(queue).catch((error: unknown) => this.report(queue, error));
        },
        Math.round(every * (0.75 + Math.random() * 0.5)),
      );
      state.timer.unref();
    }
  }

  /** Returns true when it was this bus's last consumer of the queue. */
  async unregister(queue: string, consumer: HolderConsumer): Promise<boolean> {
    const state = this.state(queue);
    const i = state.consumers.indexOf(consumer);
    if (i >= 0) state.consumers.splice(i, 1);
    if (state.consumers.length > 0) return false;
    clearInterval(state.timer);
    state.timer = undefined;
    state.provisionedEpoch = -1;
    await state.draining?.done.catch(() => undefined);
    return true;
  }

  /**
   * Takes over what a holder stores, if there is one. With `deliver`, a starting consumer handles
   * the holder's messages itself, ahead of its live ones (so messages sent before any consumer keep
   * their order). Without, a sweep (periodic, or after a reconnection) sends them back to the queue
   * — now without the holder — and acknowledges them: quick, so a sweep by another bus taking the
   * holder over at the same moment rarely duplicates. Resolves once its messages have been handed
   * over; ending the holder's session waits in the background until they are all settled.
   */
  drain(queue: string, deliver?: OnPublish): Promise<void> {
    const state = this.state(queue);
    if (state.draining !== undefined) return state.draining.handedOver;
    // A sweep needs a subscribed member to send to (3.1.1 cannot tell when nobody took a message).
    if (deliver === undefined && !state.consumers.some((c) => c.subscribed)) return Promise.resolve();
    let handed!: () => void;
    const handedOver = new Promise<void>((resolve) => {
      handed = resolve;
    });
    // Connecting as the holder takes its session over: one holder operation at a time per queue,
    // until the messages are handed over. Settling them may take long: other buses may take the
    // holder over meanwhile (their unsettled messages come back later), this one defers its
    // provisions until the drain is done (see `provision`).
    const done = this.lock(queue).then(async (unlock) => {
      void handedOver.then(unlock);
      let claim: Claim | undefined;
      try {
        // Held until the drain is done (its messages settled), not only handed over.
        claim = await this.claims.acquire(queue, 'drain');
        // Undefined: another bus drains the holder right now.
        if (claim === undefined) handed();
        else await this.takeOver(queue, deliver, handed);
      } finally {
        await claim?.release();
        unlock();
        const provisionAfter = state.draining?.provisionAfter === true;
        state.draining = undefined;
        if (provisionAfter) await this.provision(queue);
      }
    });
    // Failures after the hand-over are reported here; before it, the caller gets them.
    const draining: Draining = { handedOver: Promise.race([handedOver, done]), done, provisionAfter: false };
    state.draining = draining;
    void handedOver.then(() => done.catch((error: unknown) => this.report(queue, error)));
    return draining.handedOver;
  }

  /** Resolves once this bus may connect as the queue's holder, with the function that lets the next one. */
  private lock(queue: string): Promise<() => void> {
    const state = this.state(queue);
    const previous = state.lock;
    let unlock!: () => void;
    state.lock = new Promise((resolve) => {
      unlock = resolve;
    });
    return previous.then(() => unlock);
  }

  close(): void {
    this.claims.close();
    for (const state of this.queues.values()) clearInterval(state.timer);
  }

  private async takeOver(
    queue: string,
    deliver: OnPublish | undefined,
    handedOver: () => void,
  ): Promise<void> {
    const { o, where, publisher } = this.shared;
    const moves = new Pending();
    let kept = false;
    const holder = this.receiver(
      queue,
      // No receive maximum: Mosquitto 2.0.11 then holds back the marker of a resumed session
      // while the quota is taken by messages whose handlers wait (seen in the contract suite).
      { persistent: true },
      deliver ??
        ((packet, ack) => {
          // Moved as it is: the same bytes and header bag.
          const move = this.shared
            .sendToConsumers(queue, encode(o.protocolVersion, decode(o.protocolVersion, packet), true))
            .then((routed) => {
              if (routed) return ack.ack();
              // Nobody took it (the consumers left meanwhile): it stays in the holder.
              kept = true;
            })
            .catch((error: unknown) => {
              kept = true;
              this.report(queue, error);
            });
          void moves.track(move);
        }),
    );
    const connack = await holder.connect(where);
    if (connack.sessionPresent !== true) {
      await this.letGo(holder);
      return;
    }
    let drained = false;
    try {
      drained = await holder.collect(
        this.shared.shareFilter(queue),
        this.shared.queueTopic(queue),
        publisher,
      );
    } finally {
      handedOver();
    }
    // A move waits for the broker's PUBACK. Mosquitto 2.0.11 was seen never to send one for the
    // first move after a restart (the publisher connected, later moves confirmed): the drain, its
    // queue's lock and a closing consumer waited on it until core's close timeout. Moves not
    // confirmed in time leave their messages unacknowledged in the holder, for a later drain.
    if (
      !(await within(
        moves.settled().then(() => true),
        DRAIN_TIMEOUT_MS,
        false,
      ))
    ) {
      kept = true;
      this.report(
        queue,
        new Error(
          `${moves.size} message(s) moved out of the holder not confirmed within ${DRAIN_TIMEOUT_MS} ms; they stay in the holder`,
        ),
      );
    } else {
      await holder.idle();
      await holder.flushed();
    }
    if (drained && !kept && holder.client.connected) {
      await this.letGo(holder);
      return;
    }
    // Messages still wait in the holder (no marker, or a move nobody took): it goes on holding.
    if (kept) await this.subscribe(holder, queue).catch(() => undefined);
    await endClient(holder.client);
  }

  /**
   * Disconnects from the holder's session once it is out of the share group and empty. MQTT 5 ends
   * the session in the DISCONNECT (which the broker never sees if another bus took the session over
   * first). MQTT 3.1.1 could end it only by connecting once more with a clean session, and every bus
   * shares the holder's client id: another one may provision the holder, and a sender fill it,
   * between this disconnect and that connect, which would then delete what it stored (the SIGKILL
   * fault test lost messages that way). So on 3.1.1 the session stays, empty and subscribed to
   * nothing: it takes no share of the queue, and the next drain finds it present and empty.
   */
  private async letGo(holder: Receiver): Promise<void> {
    const end = this.shared.o.protocolVersion === 5 && holder.client.connected;
    await endClient(holder.client, end ? { sessionExpiryInterval: 0 } : undefined);
  }

  private async subscribe(holder: Receiver, queue: string): Promise<void> {
    const filter = this.shared.shareFilter(queue);
    await whileConnected(holder.client, `the holder of "${queue}" subscribing`, () =>
      holder.client.subscribeAsync(filter, { qos: 1 }),
    );
  }

  /** A connection as the holder. It does not reconnect: the holder's session keeps what was not acked. */
  private receiver(queue: string, spec: Omit<SessionSpec, 'clientId'>, onPublish: OnPublish): Receiver {
    const holder = this.shared.receiver(
      { ...spec, clientId: this.holderId(queue) },
      `holder of "${queue}"`,
      onPublish,
    );
    holder.client.options.reconnectPeriod = 0;
    return holder;
  }

  private state(queue: string): QueueState {
    let state = this.queues.get(queue);
    if (state === undefined) {
      state = {
        consumers: [],
        provisionedEpoch: -1,
        provisioning: undefined,
        draining: undefined,
        timer: undefined,
        lock: Promise.resolve(),
      };
      this.queues.set(queue, state);
    }
    return state;
  }

  private report(queue: string, error: unknown): void {
    this.shared.context.reportError(
      new ConnectionError(
        `checking the holder of queue "${queue}" failed: ${error instanceof Error ? error.message : String(error)}`,
        { adapter: 'mqtt', cause: error },
      ),
    );
  }
}
