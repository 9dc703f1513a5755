import { type MissingCapability, UnsupportedCapabilityError } from './errors.js';

/** `native`: the broker does it. `emulated`: Omnibus does it on top, same observable semantics. `none`: not available. */
export type Support = 'native' | 'emulated' | 'none';

/** The admin and dead-letter features added with operations, for tables that list them apart. */
export const ADMIN_FEATURES = [
  'depth',
  'purge',
  'browse',
  'redrive',
  'redriveSubscription',
  'deleteSubscription',
  'resetGroup',
  'lag',
] as const;

/** Features an application can depend on. Each is proven by the contract suite in both directions. */
export const FEATURES = [
  'queue',
  'topic',
  'log',
  'priority',
  'replay',
  'routing',
  'deadLetter',
  'delay',
  'headers',
  'durableSubscriptions',
  'consumerGroups',
  ...ADMIN_FEATURES,
] as const;

export type Feature = (typeof FEATURES)[number];

export interface Capabilities {
  /** Point-to-point work distribution. */
  readonly queue: Support;
  /** Publish/subscribe fan-out. */
  readonly topic: Support;
  /** Append-only, retained, replayable stream. */
  readonly log: Support;
  /** Queue messages with higher priority are delivered first. */
  readonly priority: Support;
  /** Log reads from earliest, a position or a timestamp. */
  readonly replay: Support;
  /** Topic subject patterns with `*` and `#`. */
  readonly routing: Support;
  /** Failed messages go to a dead-letter queue with the reason. */
  readonly deadLetter: Support;
  /** Queue messages invisible until `delayMs` has passed. */
  readonly delay: Support;
  /** Application headers travel with the message. */
  readonly headers: Support;
  /** Named topic subscriptions keep receiving while their subscriber is away. */
  readonly durableSubscriptions: Support;
  /** Log readers in a group share partitions and resume from committed progress. */
  readonly consumerGroups: Support;
  /** Admin: how many messages a queue holds (`queue.depth()`, a dead-letter queue's `count()`). */
  readonly depth: Support;
  /** Admin: remove every message a queue holds (`queue.purge()`). */
  readonly purge: Support;
  /** Admin: look at a queue's first messages without consuming them (a dead-letter queue's `peek(n)`). */
  readonly browse: Support;
  /**
   * Dead letters go back to a queue: a queue's to that queue, any others to the queue given as `to`
   * (the dead-letter queue consumed, each copy confirmed before its letter is acked).
   */
  readonly redrive: Support;
  /** A durable subscription's dead letters go back to that subscription alone, not to the topic's other subscribers. */
  readonly redriveSubscription: Support;
  /** Admin: delete a durable subscription and what it holds (`topic.deleteSubscription(name)`). */
  readonly deleteSubscription: Support;
  /** Admin: move a log group's committed position to earliest, latest or a time (`log.resetGroup`). */
  readonly resetGroup: Support;
  /** Admin: how far a log group is behind the end of the log (`log.lag(group)`). */
  readonly lag: Support;
  /** Which messages keep their relative order: per key, per destination, or none. */
  readonly ordering: 'key' | 'destination' | 'none';
  readonly limits: {
    /** Highest queue priority accepted. */
    readonly maxPriority?: number;
    /** Largest encoded message accepted. */
    readonly maxMessageBytes?: number;
    /**
     * Largest single header the protocol carries, name and value together in UTF-8 bytes (id, key
     * and subject travel as headers on most protocols, so they count too). Core refuses a message
     * that breaks it before it leaves the process.
     */
    readonly maxHeaderBytes?: number;
  };
}

/** An adapter's capabilities as it writes them: each `emulated` or `none` with the broker behaviour that forces it. */
export interface CapabilityDeclaration {
  readonly native: readonly Feature[];
  readonly emulated?: Readonly<Partial<Record<Feature, string>>>;
  readonly none?: Readonly<Partial<Record<Feature, string>>>;
  readonly ordering: Capabilities['ordering'];
  readonly limits?: Capabilities['limits'];
}

/**
 * Capabilities from a declaration that names every feature exactly once (a feature forgotten or
 * given twice throws at load, so a new feature cannot go unanswered) and gives a reason for each
 * `emulated` and `none`.
 */
export function declareCapabilities(declared: CapabilityDeclaration): Capabilities {
  const levels: [Support, readonly string[]][] = [
    ['native', declared.native],
    ['emulated', Object.keys(declared.emulated ?? {})],
    ['none', Object.keys(declared.none ?? {})],
  ];
  const support = new Map<string, Support>();
  const problems: string[] = [];
  for (const [level, features] of levels) {
    for (const feature of features) {
      if (support.has(feature)) problems.push(`${feature} declared twice`);
      support.set(feature, level);
    }
  }
  problems.push(...FEATURES.filter((f) => !support.has(f)).map((f) => `${f} not declared`));
  problems.push(
    ...[...support.keys()]
      .filter((f) => !(FEATURES as readonly string[]).includes(f))
      .map((f) => `${f} is no feature`),
  );
  if (problems.length > 0) throw new TypeError(`capabilities: ${problems.join(', ')}`);
  return {
    ...(Object.fromEntries(support) as Record<Feature, Support>),
    ordering: declared.ordering,
    limits: declared.limits ?? {},
  };
}

/** What an application needs: a list of features (at least `emulated`), or a minimum level per feature. */
export type Requirements = readonly Feature[] | Partial<Record<Feature, Support>>;

const RANK: Record<Support, number> = { none: 0, emulated: 1, native: 2 };

/** True when `actual` is at least `required`. */
export function satisfies(actual: Support, required: Support): boolean {
  return RANK[actual] >= RANK[required];
}

/** Every requirement the capabilities do not meet. */
export function missingCapabilities(capabilities: Capabilities, requires: Requirements): MissingCapability[] {
  const wanted: [Feature, Support][] = Array.isArray(requires)
    ? (requires as readonly Feature[]).map((feature): [Feature, Support] => [feature, 'emulated'])
    : (Object.entries(requires) as [Feature, Support][]);
  return wanted
    .filter(([feature, required]) => !satisfies(capabilities[feature], required))
    .map(([feature, required]) => ({ feature, required, actual: capabilities[feature] }));
}

/** Throws one error listing every requirement the connected broker does not meet. */
export function assertRequirements(
  adapter: string,
  capabilities: Capabilities,
  requires: Requirements,
): void {
  const missing = missingCapabilities(capabilities, requires);
  if (missing.length === 0) return;
  const list = missing
    .map((m) => `${m.feature} (needs ${m.required}, ${adapter} has ${m.actual})`)
    .join(', ');
  throw new UnsupportedCapabilityError(`this broker lacks what the application requires: ${list}`, missing, {
    adapter,
  });
}

/** Throws `UnsupportedCapabilityError` when `feature` is `none`: never ignore an option silently. */
export function assertCapability(
  adapter: string,
  capabilities: Capabilities,
  feature: Feature,
  hint: string,
): void {
  if (capabilities[feature] !== 'none') return;
  throw new UnsupportedCapabilityError(
    `${feature} is not supported on ${adapter}: ${hint}`,
    [{ feature, required: 'emulated', actual: 'none' }],
    { adapter },
  );
}

/** A capability table as Markdown rows, for docs and READMEs (a test keeps them in sync). */
export function capabilityTable(columns: Readonly<Record<string, Capabilities>>): string {
  const names = Object.keys(columns);
  const header = `| capability | ${names.join(' | ')} |\n|---|${names.map(() => '---').join('|')}|`;
  const rows: string[] = [...FEATURES, 'ordering' as const].map(
    (feature) => `| ${feature} | ${names.map((name) => columns[name]?.[feature] ?? '').join(' | ')} |`,
  );
  rows.push(`| maxPriority | ${names.map((name) => columns[name]?.limits.maxPriority ?? '—').join(' | ')} |`);
  return [header, ...rows].join('\n');
}

/**
 * The adapter method for a semantic its capabilities mark `none`. Core never calls it (it checks
 * the capability first); if something else does, it rejects with `UnsupportedCapabilityError`.
 */
export function unsupported(
  adapter: string,
  feature: Feature,
): (...args: readonly unknown[]) => Promise<never> {
  return async () => {
    throw new UnsupportedCapabilityError(
      `${feature} is not supported on ${adapter}`,
      [{ feature, required: 'emulated', actual: 'none' }],
      { adapter },
    );
  };
}

/**
 * Features whose use needs another one to be there first (a queue to send to, a log to read):
 * where the other is `none`, using this one cannot even be tried.
 */
export const FEATURE_NEEDS: Readonly<Partial<Record<Feature, Feature>>> = {
  priority: 'queue',
  delay: 'queue',
  headers: 'queue',
  deadLetter: 'queue',
  replay: 'log',
  consumerGroups: 'log',
  routing: 'topic',
  durableSubscriptions: 'topic',
  depth: 'queue',
  purge: 'queue',
  browse: 'queue',
  redrive: 'deadLetter',
  redriveSubscription: 'durableSubscriptions',
  deleteSubscription: 'durableSubscriptions',
  resetGroup: 'consumerGroups',
  lag: 'consumerGroups',
};

type AdminFeature = (typeof ADMIN_FEATURES)[number];

function eachAdmin<T>(value: T): Readonly<Record<AdminFeature, T>> {
  return Object.fromEntries(ADMIN_FEATURES.map((feature) => [feature, value])) as Record<AdminFeature, T>;
}

/** Every admin feature `none`: for capability literals (profiles, tests) without them. */
export const NO_ADMIN: Readonly<Record<AdminFeature, Support>> = eachAdmin<Support>('none');

/** The `none` reasons of an adapter that does not implement the admin features yet (`declareCapabilities`). */
export const ADMIN_NOT_YET: Readonly<Record<AdminFeature, string>> = eachAdmin(
  'not implemented on this adapter yet',
);
