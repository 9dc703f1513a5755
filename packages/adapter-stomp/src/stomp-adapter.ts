/**
 * The STOMP adapter: a connection (stompit) per bus for sends, one more per subscription (consumer,
 * log reader, log tail: see session.ts and consume.ts for why), a broker profile resolved from
 * CONNECTED's `server` header, and the three semantics mapped onto that broker's destinations.
 */

import { createHash, randomUUID } from 'node:crypto';
import type {
  Adapter,
  AdapterContext,
  AdapterFactory,
  Capabilities,
  ConsumeSpec,
  Deliver,
  LogPosition,
  LogSpec,
  OutgoingMessage,
  QueueSpec,
  ReadSpec,
  Subscription,
  SubscriptionSpec,
  TopicSpec,
} from '@omnibus/core';
import {
  ConnectionError,
  describeError,
  isCertificateError,
  isOmnibusError,
  ReadBack,
  unsupported,
} from '@omnibus/core';
import { activemqDurableClientId, rabbitmqDurableQueue, StompAdmin } from './admin.js';
import { type ConsumerRoute, StompConsumer } from './consume.js';
import { STREAM, StreamReader } from './log.js';
import { resolveSettings, type StompOptions, type StompSettings } from './options.js';
import { type BrokerProfile, PROFILES, profileFor, topicWord, withDelay } from './profiles.js';
import { probeScheduler } from './scheduler.js';
import { ErrorFrame, type OpenSession, StompSession } from './session.js';
import { frameHeaders } from './wire.js';

/** The STOMP adapter for `stomp://` and `stomp+ssl://` URLs. */
export function stomp(defaults: StompOptions = {}): AdapterFactory {
  return {
    name: 'stomp',
    schemes: ['stomp', 'stomp+ssl'],
    async create(target, context) {
      const settings = resolveSettings(target.url, { ...defaults, ...target.options });
      return StompAdapter.connect(settings, context);
    },
  };
}

class StompAdapter implements Adapter {
  readonly name = 'stomp';
  // Operations, per profile: admin.ts.
  readonly depth: Adapter['depth'] = (queue) => this.admin.depth(queue);
  readonly purge: Adapter['purge'] = (queue) => this.admin.purge(queue);
  readonly browse: Adapter['browse'] = (queue, limit) => this.admin.browse(queue, limit);
  readonly subscriptionAddress: Adapter['subscriptionAddress'] = (topic, durable) =>
    this.admin.subscriptionAddress(topic, durable);
  readonly deleteSubscription: Adapter['deleteSubscription'] = (topic, durable) =>
    this.admin.deleteSubscription(topic, durable);
  readonly resetGroup: Adapter['resetGroup'] = (log, group, to) => this.admin.resetGroup(log, group, to);
  readonly groupLag: Adapter['groupLag'] = (log, group) => this.admin.groupLag(log, group);
  private readonly admin: StompAdmin;
  readonly capabilities: Capabilities;
  /** STOMP's RECEIPT says a message is stored but not at which offset: appends read theirs back. */
  private readonly readBack: ReadBack;
  /**
   * The subscriptions' own connections, closed with the adapter: one whose subscribe resolves after
   * core closed its consumer would otherwise stay open.
   */
  private readonly sessions = new Set<StompSession>();

  private constructor(
    private readonly settings: StompSettings,
    private readonly context: AdapterContext,
    private readonly session: StompSession,
    private readonly profile: BrokerProfile,
  ) {
    this.capabilities = profile.capabilities;
    this.readBack = new ReadBack({
      adapter: 'stomp',
      timeoutMs: settings.operationTimeoutMs,
      read: (log, deliver, ended) => {
        const spec = { prefetch: 1000, from: { kind: 'latest' } } as const;
        const reader = new StreamReader(profile, { name: log, partitions: 1 }, spec, deliver);
        return reader.start(`log "${log}"`, spec.prefetch, this.open(), ended);
      },
    });
    this.admin = new StompAdmin(settings, profile);
  }

  static async connect(settings: StompSettings, context: AdapterContext): Promise<StompAdapter> {
    const session = new StompSession(settings, {
      state: (state, error) => context.setState(state, error),
      error: (error) => context.reportError(error),
    });
    try {
      await session.open();
    } catch (error) {
      if (isOmnibusError(error)) throw error;
      // Say why (a refused certificate, a refused login, nothing listening), as the other adapters do.
      throw new ConnectionError(`could not connect to ${settings.redacted}: ${describeError(error)}`, {
        adapter: 'stomp',
        cause: error,
        retriable: !isCertificateError(error),
      });
    }
    try {
      let profile =
        PROFILES[settings.profile === 'auto' ? profileFor(session.connected.server) : settings.profile];
      if (profile.name === 'activemq' && settings.delay !== 'none') {
        profile = withDelay(profile, settings.delay === 'native' || (await probeScheduler(settings)));
      }
      context.logger.debug(
        { server: session.connected.server, version: session.connected.version, profile: profile.name },
        `connected to ${settings.redacted}`,
      );
      return new StompAdapter(settings, context, session, profile);
    } catch (error) {
      await session.close();
      throw error;
    }
  }

  send(queue: QueueSpec, message: OutgoingMessage): Promise<void> {
    // RabbitMQ declares `/queue/` destinations on first use; the priority range is a queue argument
    // and must be the same on every SEND/SUBSCRIBE that may declare it.
    // Not a spread of frameHeaders' object: that costs microseconds a message on node 20.
    const headers = Object.assign(frameHeaders(`/queue/${queue.name}`, message), this.queueArguments(queue));
    return this.session.send(this.withNative(headers, message), message.body, `queue "${queue.name}"`);
  }

  /** A retry copy: `/queue/<name>`, or on RabbitMQ `/amq/queue/<name>` (an existing queue, not declared again). */
  sendTo(address: string, message: OutgoingMessage): Promise<void> {
    const headers = this.withNative(frameHeaders(address, message), message);
    return this.session.send(headers, message.body, `"${address}"`);
  }

  consume(queue: QueueSpec, spec: ConsumeSpec, deliver: Deliver): Promise<Subscription> {
    const destination = `/queue/${queue.name}`;
    return this.startConsumer(`queue "${queue.name}"`, spec, deliver, {
      subscribe: { destination, ...this.queueArguments(queue) },
      retryAddress: this.profile.name === 'rabbitmq' ? `/amq/queue/${queue.name}` : destination,
    });
  }

  async publish(topic: TopicSpec, message: OutgoingMessage): Promise<void> {
    const destination = this.profile.topicDestination(topic.name, message.subject);
    await this.session.send(frameHeaders(destination, message), message.body, `topic "${topic.name}"`);
  }

  subscribe(topic: TopicSpec, spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    const { destination, filter } = this.profile.topicRoute(topic.name, spec.pattern);
    const what = `topic "${topic.name}" (${spec.pattern}${spec.durable === undefined ? '' : `, durable "${spec.durable}"`})`;
    const word = topicWord(topic.name);
    const base = `/topic/${word}.`;
    const subjectOf = (d: string) => (d.startsWith(base) ? d.slice(base.length) : undefined);
    if (this.profile.name === 'rabbitmq') {
      // A named queue per subscription, so a retried copy can be sent to that subscription alone.
      const queueName =
        spec.durable === undefined
          ? boundedName(`omnibus.sub.${word}-${randomUUID()}`)
          : rabbitmqDurableQueue(topic.name, spec.durable);
      const durable =
        spec.durable === undefined ? {} : { durable: 'true', 'auto-delete': 'false', persistent: 'true' };
      return this.startConsumer(what, spec, deliver, {
        subscribe: { destination, 'x-queue-name': queueName, ...durable },
        retryAddress: `/amq/queue/${queueName}`,
        filter,
        subjectOf,
      });
    }
    // ActiveMQ keys a durable subscription by (client-id, subscription name) and allows one
    // connection per client-id: the consumer's connection gets a stable client-id. An ActiveMQ or
    // generic subscription has no queue of its own to send a copy to: core retries in the process.
    const durable = spec.durable !== undefined && this.profile.name === 'activemq';
    return this.startConsumer(
      what,
      spec,
      deliver,
      {
        subscribe: { destination, ...(durable ? { 'activemq.subscriptionName': spec.durable! } : {}) },
        filter,
        subjectOf,
      },
      durable ? { 'client-id': activemqDurableClientId(topic.name, spec.durable!) } : {},
    );
  }

  async close(): Promise<void> {
    this.readBack.close();
    // The subscriptions' connections, the read-back's included.
    await Promise.allSettled([...this.sessions].map((s) => s.close()));
    await this.session.close();
  }

  append(log: LogSpec, message: OutgoingMessage): Promise<LogPosition> {
    if (this.capabilities.log === 'none') return unsupported(this.name, 'log')();
    return this.readBack.append(log.name, (extra) => {
      const headers = Object.assign(frameHeaders(`/queue/${log.name}`, message, extra), STREAM);
      return this.session.send(headers, message.body, `log "${log.name}"`);
    });
  }

  async read(log: LogSpec, spec: ReadSpec, deliver: Deliver): Promise<Subscription> {
    if (this.capabilities.log === 'none') return unsupported(this.name, 'log')();
    const reader = new StreamReader(this.profile, log, spec, deliver);
    return reader.start(`log "${log.name}"`, spec.prefetch, this.open());
  }

  private queueArguments(queue: QueueSpec): Record<string, string> {
    return this.profile.name === 'rabbitmq' && queue.maxPriority !== undefined
      ? { 'x-max-priority': String(queue.maxPriority) }
      : {};
  }

  /** The priority (ActiveMQ: 0 when none, not JMS's 4) and native delay headers of a queue message. */
  private withNative(headers: Record<string, string | number>, message: OutgoingMessage) {
    const priority = message.priority ?? this.profile.defaultPriority;
    if (priority !== undefined) headers.priority = String(priority);
    if (message.delayMs !== undefined && message.delayMs > 0) {
      headers.AMQ_SCHEDULED_DELAY = String(message.delayMs);
    }
    return headers;
  }

  private startConsumer(
    what: string,
    spec: ConsumeSpec,
    deliver: Deliver,
    route: ConsumerRoute,
    connectHeaders: Record<string, string> = {},
  ): Promise<Subscription> {
    return new StompConsumer(this.profile, route, deliver).start(
      what,
      spec.prefetch,
      this.open(connectHeaders),
    );
  }

  /** Opens connections of their own for subscriptions, their state logged, closed with the adapter. */
  private open(connectHeaders: Record<string, string> = {}): OpenSession {
    return async (subscription, closed) => {
      const { logger } = this.context;
      const { what } = subscription;
      const session = new StompSession(
        this.settings,
        {
          state: (state, error) =>
            logger[state === 'connected' ? 'info' : 'warn'](
              error === undefined ? {} : { error: error.message },
              `${what}: ${state}`,
            ),
          error: (error) => this.context.reportError(error),
          closed: () => {
            this.sessions.delete(session);
            closed?.();
          },
        },
        subscription,
        connectHeaders,
      );
      this.sessions.add(session);
      try {
        await session.open();
      } catch (error) {
        if (error instanceof ConnectionError) throw error;
        // Refused by an ERROR frame (credentials, an ActiveMQ client-id in use by the same durable
        // subscription) is final; anything else (the broker is restarting) is worth another try.
        throw new ConnectionError(`could not open a connection for ${what}: ${(error as Error).message}`, {
          adapter: 'stomp',
          cause: error,
          retriable: !(error instanceof ErrorFrame),
        });
      }
      return session;
    };
  }
}

/** Broker names have limits (RabbitMQ: 255 bytes): long ones keep a readable start and a hash. */
export function boundedName(name: string): string {
  if (name.length <= 200) return name;
  return `${name.slice(0, 160)}~${createHash('sha256').update(name).digest('hex').slice(0, 32)}`;
}
