/**
 * The README's "Twenty lines" runs, as printed, on every set-up of the capability table whose
 * capabilities satisfy its `requires`, and `connect` refuses it on the others, naming what is
 * missing. Only its destination and group names are made unique (shared brokers, repeated runs);
 * `charge` and `notify` are stubs. A broker that is not reachable skips its set-up (fails under
 * OMNIBUS_REQUIRE_BROKERS=1).
 */
import { randomUUID } from 'node:crypto';
import * as core from '@omnibus/core';
import { type Bus, UnsupportedCapabilityError } from '@omnibus/core';
import { type BrokerName, brokerAvailable, brokerUrls } from '@omnibus/test-brokers';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as zod from 'zod';
import { twentyLines } from './readme-snippet.js';

const urls = brokerUrls();
const withQuery = (url: string, query: string) => `${url}${url.includes('?') ? '&' : '?'}${query}`;

interface SetUp {
  readonly name: string;
  /** BROKER_URL; unset for memory, so the example's own default is what runs. */
  readonly url: string | undefined;
  readonly broker: BrokerName | undefined;
  /** The adapter it runs on, or the features `connect` names as missing. */
  readonly expect: { readonly adapter: string } | { readonly missing: readonly string[] };
}

const NO_LOGS = ['log', 'replay', 'consumerGroups'];
const SETUPS: readonly SetUp[] = [
  { name: 'memory', url: undefined, broker: undefined, expect: { adapter: 'memory' } },
  { name: 'rabbitmq', url: urls.amqp, broker: 'rabbitmq', expect: { adapter: 'rabbitmq' } },
  {
    name: 'kafka',
    url: `kafka://${urls.kafkaBrokers.join(',')}`,
    broker: 'kafka',
    expect: { adapter: 'kafka' },
  },
  {
    name: 'mqtt 5',
    url: withQuery(urls.mqtt, 'protocolVersion=5'),
    broker: 'mosquitto',
    expect: { missing: NO_LOGS },
  },
  {
    name: 'mqtt 3.1.1',
    url: withQuery(urls.mqtt, 'protocolVersion=4'),
    broker: 'mosquitto',
    expect: { missing: NO_LOGS },
  },
  {
    name: 'stomp → RabbitMQ',
    url: urls.stomp,
    broker: 'rabbitmq-stomp',
    expect: { missing: ['consumerGroups'] },
  },
  { name: 'stomp → ActiveMQ', url: urls.activemqStomp, broker: 'activemq', expect: { missing: NO_LOGS } },
];

interface ExampleRun {
  readonly run: () => Promise<void>;
  /** Buses the example's `connect` returned. */
  readonly buses: Bus[];
  readonly charged: unknown[];
}

const MODULES: Readonly<Record<string, Record<string, unknown>>> = { '@omnibus/core': core, zod };
type AsyncFunctionConstructor = new (...args: string[]) => (...args: unknown[]) => Promise<void>;
const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as AsyncFunctionConstructor;

/** The example as a function of its imports, its two stubs and its environment. */
function example(url: string | undefined): ExampleRun {
  const buses: Bus[] = [];
  const charged: unknown[] = [];
  const names: string[] = [];
  const values: unknown[] = [];
  const code = twentyLines().replace(
    /^import \{ ([^}]+) \} from '([^']+)';\n/gm,
    (_, imported: string, from: string) => {
      const module = MODULES[from];
      if (module === undefined) throw new Error(`the README example imports ${from}: add it to MODULES`);
      for (const name of imported.split(',').map((n) => n.trim())) {
        names.push(name);
        values.push(
          name === 'connect'
            ? async (...args: Parameters<typeof core.connect>) => {
                const bus = await core.connect(...args);
                buses.push(bus);
                return bus;
              }
            : module[name],
        );
      }
      return '';
    },
  );
  // The brokers are shared and keep what they are given: a fresh queue, topic, log and group per run.
  const suffix = randomUUID().slice(0, 8);
  let renamed = 0;
  const unique = code.replace(
    /(bus\.(?:queue|topic|log)\(|group: )'([^']+)'/g,
    (_, head: string, name: string) => {
      renamed++;
      return `${head}'${name}-${suffix}'`;
    },
  );
  expect(renamed, 'the example names a queue, a topic, a log and a group').toBe(4);
  const js = ts.transpileModule(unique, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  }).outputText;
  const fn = new AsyncFunction(...names, 'charge', 'notify', 'process', 'console', js);
  const env = url === undefined ? {} : { BROKER_URL: url };
  const stubs = [
    async (payload: unknown) => {
      charged.push(payload);
    },
    () => undefined,
    { env },
    { log: () => undefined },
  ];
  return { run: () => fn(...values, ...stubs), buses, charged };
}

const available = new Map<string, Awaited<ReturnType<typeof brokerAvailable>>>();
for (const setUp of SETUPS) {
  const availability =
    setUp.broker === undefined ? { ok: true as const } : await brokerAvailable(setUp.broker);
  if (!availability.ok) console.warn(`[readme example] skipping ${setUp.name}: ${availability.reason}`);
  available.set(setUp.name, availability);
}

describe('the README example', () => {
  it('asks for what it uses', () => {
    expect(twentyLines()).toMatch(
      /requires: \['queue', 'deadLetter', 'topic', 'routing', 'log', 'replay', 'consumerGroups'\]/,
    );
  });

  for (const setUp of SETUPS) {
    const ok = available.get(setUp.name)?.ok === true;
    const outcome = 'adapter' in setUp.expect ? 'runs unchanged' : 'is refused at connect';
    it.skipIf(!ok)(`${outcome} on ${setUp.name}`, { timeout: 90_000 }, async () => {
      const { run, buses, charged } = example(setUp.url);
      try {
        if ('adapter' in setUp.expect) {
          await run();
          expect(buses.map((bus) => [bus.adapter, bus.closed])).toEqual([[setUp.expect.adapter, true]]);
          return;
        }
        const error = await run().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(UnsupportedCapabilityError);
        const missing = (error as UnsupportedCapabilityError).missing.map((m) => m.feature);
        expect(missing.sort()).toEqual([...setUp.expect.missing].sort());
        // Refused by connect itself: no bus was handed to the example, nothing was charged.
        expect(buses).toEqual([]);
        expect(charged).toEqual([]);
      } finally {
        await Promise.allSettled(buses.map((bus) => bus.close()));
      }
    });
  }
});
