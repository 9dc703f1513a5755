/**
 * Broker profiles. STOMP is a protocol, not a broker: the same frames mean different things on
 * RabbitMQ and on ActiveMQ. The CONNECTED frame's `server` header picks a profile, and the profile
 * decides the capabilities and how queues, topics and subjects map onto destinations.
 */
import {
  type Capabilities,
  compilePattern,
  declareCapabilities,
  NO_ADMIN,
  type SubjectMatcher,
} from '@omnibus/core';

export type ProfileName = 'rabbitmq' | 'activemq' | 'generic';

export interface TopicRoute {
  /** SUBSCRIBE destination (ActiveMQ: possibly a composite `a,b`). */
  readonly destination: string;
  /** Set when the broker's match is broader than the pattern: the client filters by subject. */
  readonly filter?: SubjectMatcher | undefined;
}

export interface BrokerProfile {
  readonly name: ProfileName;
  readonly capabilities: Capabilities;
  /** Headers that set the outstanding-delivery window of a subscription. */
  prefetchHeaders(prefetch: number): Record<string, string>;
  /** Where a topic message with this subject is sent. */
  topicDestination(topic: string, subject: string | undefined): string;
  /** Where a subscription with this pattern subscribes. */
  topicRoute(topic: string, pattern: string): TopicRoute;
  /**
   * NACK puts a message back (RabbitMQ). On ActiveMQ a STOMP NACK is a poison ack that sends the
   * message to the broker's DLQ at once, so there the adapter never NACKs: unsettled messages go
   * back when their subscription ends.
   */
  readonly nackRequeues: boolean;
  /** Priority header sent when the application gave none (ActiveMQ's default would be 4). */
  readonly defaultPriority: number | undefined;
  /** `message-id` stays the same for the message's life (a JMS id), so it can be its id. */
  readonly stableIds: boolean;
}

/** Resolves the profile from CONNECTED's `server` header, e.g. `RabbitMQ/3.10.8`, `ActiveMQ/5.17.2`. */
export function profileFor(server: string | undefined): ProfileName {
  const name = (server ?? '').toLowerCase();
  if (name.startsWith('rabbitmq')) return 'rabbitmq';
  // ActiveMQ Classic answers `ActiveMQ/5.x`; Artemis answers `ActiveMQ-Artemis/2.x` and maps
  // destinations differently (prefixes, `#` wildcards), so it gets the conservative profile.
  if (name.startsWith('activemq/')) return 'activemq';
  return 'generic';
}

/** A topic's name as the first word of a routing key: `.` becomes `~` (never valid in a name or subject). */
export function topicWord(topic: string): string {
  return topic.replaceAll('.', '~');
}

const MAX_MESSAGE_BYTES_RABBITMQ = 128 * 1024 * 1024; // RabbitMQ's max_message_size default
const MAX_MESSAGE_BYTES_ACTIVEMQ = 100 * 1024 * 1024 - 64 * 1024; // STOMP maxFrameSize default, less headers

/**
 * A header line is `name:value` with `:`, `\n`, `\r` and `\\` escaped to two bytes each, and an
 * application header the broker would interpret gains core's 12-byte escape prefix: a header of
 * `limit` bytes (name and value) fits a line of `2 * limit + 16` bytes whatever it holds.
 */
const headerLimit = (maxLineBytes: number) => Math.floor((maxLineBytes - 16) / 2);

export const RABBITMQ_CAPABILITIES: Capabilities = declareCapabilities({
  native: ['queue', 'topic', 'log', 'priority', 'replay', 'routing', 'headers', 'durableSubscriptions'],
  emulated: {
    deadLetter:
      'Omnibus sends the copy to the dead-letter queue and then ACKs (no DLX is declared over STOMP)',
    redrive: 'no redrive frame: core consumes the dead-letter queue and sends confirmed copies',
    redriveSubscription:
      'a durable subscription is a queue, so a copy core sends to `/amq/queue/<its queue>` reaches it alone',
  },
  none: {
    delay: 'no delayed delivery over STOMP without a plugin; a retry delay waits in the process',
    consumerGroups: 'STOMP has no offset storage nor group coordination for streams (see README)',
    depth: 'STOMP has no frame that counts a queue',
    purge: 'STOMP has no frame that purges a queue',
    browse: "RabbitMQ's STOMP has no queue browser",
    deleteSubscription:
      'STOMP cannot tell whether a consumer is attached, so a delete could pull a queue from under a live subscriber',
    resetGroup: 'no group commits over STOMP',
    lag: 'no group commits over STOMP',
  },
  ordering: 'key',
  // The STOMP plugin refuses a frame line over 65,536 bytes when it delivers the message, not when
  // it accepts the SEND: such a header would break every consumer of the queue.
  limits: {
    maxPriority: 255,
    maxMessageBytes: MAX_MESSAGE_BYTES_RABBITMQ,
    maxHeaderBytes: headerLimit(65_536),
  },
});

export const ACTIVEMQ_CAPABILITIES: Capabilities = {
  ...RABBITMQ_CAPABILITIES,
  // ActiveMQ Classic keeps no retained, replayable log.
  log: 'none',
  replay: 'none',
  // A STOMP NACK dead-letters to the broker's DLQ without a reason: Omnibus sends the copy itself.
  deadLetter: 'emulated',
  // A queue browser (`browser: true`) shows a queue without consuming it — messages out with a
  // consumer and unsettled too, so counting what it shows is not the depth (README). A durable
  // subscription is deleted by UNSUBSCRIBE from the subscriber's client-id.
  browse: 'native',
  deleteSubscription: 'native',
  // A queue's dead letters go back through core (consume the dead-letter queue, send copies), but a
  // copy cannot reach one durable topic subscription alone (they have no address of their own).
  redrive: 'emulated',
  redriveSubscription: 'none',
  // Resolved at connect: native when the broker's scheduler answers (see `withDelay`).
  delay: 'none',
  // ActiveMQ's STOMP transport reads header lines of at most 10,240 bytes.
  limits: {
    maxPriority: 9,
    maxMessageBytes: MAX_MESSAGE_BYTES_ACTIVEMQ,
    maxHeaderBytes: headerLimit(10_240),
  },
};

export const GENERIC_CAPABILITIES: Capabilities = {
  ...ACTIVEMQ_CAPABILITIES,
  // Unknown broker: nothing beyond STOMP 1.2 itself is assumed.
  priority: 'none',
  // One destination per topic; Omnibus filters subjects on the client.
  routing: 'emulated',
  durableSubscriptions: 'none',
  // Only ActiveMQ's STOMP has browsers and durable-subscription removal; with no durable
  // subscriptions, dead letters go back to queues only, through core.
  ...NO_ADMIN,
  redrive: 'emulated',
  redriveSubscription: 'none',
  // The smallest header line of the servers above.
  limits: { maxHeaderBytes: headerLimit(10_240) },
};

const rabbitmq: BrokerProfile = {
  name: 'rabbitmq',
  capabilities: RABBITMQ_CAPABILITIES,
  prefetchHeaders: (prefetch) => ({ 'prefetch-count': String(prefetch) }),
  // `/topic/` is the amq.topic exchange: the topic is the first word of the routing key, and the
  // broker matches `*` and `#` (zero or more words) itself.
  topicDestination: (topic, subject) =>
    subject === undefined ? `/topic/${topicWord(topic)}` : `/topic/${topicWord(topic)}.${subject}`,
  topicRoute: (topic, pattern) => ({ destination: `/topic/${topicWord(topic)}.${pattern}` }),
  nackRequeues: true,
  defaultPriority: undefined,
  stableIds: false,
};

const activemq: BrokerProfile = {
  name: 'activemq',
  capabilities: ACTIVEMQ_CAPABILITIES,
  prefetchHeaders: (prefetch) => ({ 'activemq.prefetchSize': String(prefetch) }),
  topicDestination: rabbitmq.topicDestination,
  topicRoute: activemqRoute,
  nackRequeues: false,
  // Omnibus's "no priority" is the lowest, as on the other brokers; JMS's default would be 4.
  defaultPriority: 0,
  stableIds: true,
};

const generic: BrokerProfile = {
  name: 'generic',
  capabilities: GENERIC_CAPABILITIES,
  prefetchHeaders: () => ({}),
  topicDestination: (topic) => `/topic/${topicWord(topic)}`,
  topicRoute: (topic, pattern) => ({
    destination: `/topic/${topicWord(topic)}`,
    filter: pattern === '#' ? undefined : compilePattern(pattern),
  }),
  nackRequeues: false,
  defaultPriority: undefined,
  stableIds: false,
};

export const PROFILES: Readonly<Record<ProfileName, BrokerProfile>> = { rabbitmq, activemq, generic };

/** ActiveMQ's scheduler is on: the profile with `delay: 'native'`. */
export function withDelay(profile: BrokerProfile, delay: boolean): BrokerProfile {
  if (!delay) return profile;
  return { ...profile, capabilities: { ...profile.capabilities, delay: 'native' } };
}

/**
 * ActiveMQ wildcards: `*` is one word, `>` one or more words at the end. Our `#` is zero or more
 * words anywhere, so a trailing `#` becomes the composite `prefix,prefix.>` (the prefix alone
 * covers "zero words"), and a `#` elsewhere subscribes to everything under the words before it and
 * filters on the client.
 */
function activemqRoute(topic: string, pattern: string): TopicRoute {
  const base = `/topic/${topicWord(topic)}`;
  const words = pattern.split('.');
  const firstHash = words.indexOf('#');
  if (firstHash === -1) return { destination: `${base}.${pattern}` };
  const prefix = words.slice(0, firstHash);
  const rest = words.slice(firstHash + 1);
  const head = prefix.length === 0 ? base : `${base}.${prefix.join('.')}`;
  if (rest.every((w) => w === '#')) return { destination: `${head},${head}.>` };
  // Something other than `#` follows, so at least one more word is needed: `head.>` covers it.
  return { destination: `${head}.>`, filter: compilePattern(pattern) };
}
