/**
 * `createTestBus()`: a bus on an in-memory broker of its own, optionally behaving like another
 * broker (a profile) and suffering seeded faults. Disposable, and resettable between tests.
 */
import {
  type Bus,
  type BusEvents,
  type Capabilities,
  type ConnectOptions,
  connect,
  type DeadLetterSource,
  type DeadLetters,
  type Health,
  type Log,
  type LogOptions,
  type MemoryBroker,
  memoryBroker,
  type Queue,
  type QueueOptions,
  type Topic,
  type TopicOptions,
} from '@omnibus/core';
import { FaultInjector, type FaultOptions, type Faults } from './faults.js';
import type { BrokerProfileName } from './profiles.js';
import { randomSeed } from './random.js';
import { registerSpyTarget } from './spy.js';

export interface TestBusOptions {
  /**
   * Behave like this broker: its adapter's capabilities (core refuses what it lacks) and quirks.
   * @default none: the in-memory broker, every capability native
   */
  readonly profile?: BrokerProfileName | (string & {});
  /** Faults to inject from the start; change them later with `testBus.faults`. @default none */
  readonly faults?: FaultOptions;
  /** Seed of the fault draws, to replay a run. @default a random one, in `testBus.seed` */
  readonly seed?: number;
  /** Options for `connect` (a logger, `requires`, `sendBuffer`…). */
  readonly connect?: Omit<ConnectOptions, 'adapters' | 'clientId'>;
}

export interface TestBus extends Bus {
  /** `memory://<unique name>[?profile=…]`: `connect(url)` reaches the same broker, without faults. */
  readonly url: string;
  /** The broker itself (`restart`, queue depths…). */
  readonly broker: MemoryBroker;
  readonly faults: Faults;
  readonly seed: number;
  /** Shared by every connection of this test bus; `spy(testBus)` matches on it. */
  readonly clientId: string;
  /** Another connection to this broker, with the same faults (closed with the test bus). */
  connect(options?: Omit<ConnectOptions, 'adapters' | 'clientId'>): Promise<Bus>;
  /**
   * Closes every connection, empties the broker and clears the faults' log, then connects again.
   * Handles and consumers taken before are closed: take new ones.
   */
  reset(): Promise<void>;
}

let created = 0;

/** A bus on an isolated in-memory broker (a unique `memory://` name per call). */
export async function createTestBus(options: TestBusOptions = {}): Promise<TestBus> {
  const name = `omnibus-test-${process.pid}-${++created}-${Math.random().toString(36).slice(2, 8)}`;
  const url =
    options.profile === undefined ? `memory://${name}` : `memory://${name}?profile=${options.profile}`;
  const seed = options.seed ?? randomSeed();
  const broker = memoryBroker(name);
  const faults = new FaultInjector(broker, seed, options.faults);
  const testBus = new TestBusImpl(url, broker, faults, seed, `${name}-client`, options.connect ?? {});
  try {
    await testBus.reconnect();
  } catch (error) {
    broker.reset();
    throw error;
  }
  registerSpyTarget(testBus, testBus.clientId);
  return testBus;
}

class TestBusImpl implements TestBus {
  private current: Bus | undefined;
  private readonly others = new Set<Bus>();

  constructor(
    readonly url: string,
    readonly broker: MemoryBroker,
    private readonly injector: FaultInjector,
    readonly seed: number,
    readonly clientId: string,
    private readonly options: Omit<ConnectOptions, 'adapters' | 'clientId'>,
  ) {}

  get faults(): Faults {
    return this.injector;
  }

  get adapter(): string {
    return this.bus.adapter;
  }

  get capabilities(): Capabilities {
    return this.bus.capabilities;
  }

  get closed(): boolean {
    return this.bus.closed;
  }

  queue<T = unknown, TIn = T>(name: string, options?: QueueOptions<T, TIn>): Queue<T, TIn> {
    return this.bus.queue<T, TIn>(name, options);
  }

  topic<T = unknown, TIn = T>(name: string, options?: TopicOptions<T, TIn>): Topic<T, TIn> {
    return this.bus.topic<T, TIn>(name, options);
  }

  log<T = unknown, TIn = T>(name: string, options?: LogOptions<T, TIn>): Log<T, TIn> {
    return this.bus.log<T, TIn>(name, options);
  }

  health(): Health {
    return this.bus.health();
  }

  deadLetters(source: DeadLetterSource): DeadLetters {
    return this.bus.deadLetters(source);
  }

  on<E extends keyof BusEvents>(event: E, listener: BusEvents[E]): () => void {
    return this.bus.on(event, listener);
  }

  async connect(options: Omit<ConnectOptions, 'adapters' | 'clientId'> = {}): Promise<Bus> {
    const bus = await this.open(options);
    this.others.add(bus);
    return bus;
  }

  async reset(): Promise<void> {
    await this.closeAll();
    this.broker.reset();
    this.injector.injected.length = 0;
    await this.reconnect();
  }

  async reconnect(): Promise<void> {
    this.current = await this.open(this.options);
  }

  async close(): Promise<void> {
    await this.closeAll();
    this.broker.reset();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private get bus(): Bus {
    if (this.current === undefined) throw new Error('[omnibus] [testing] the test bus is resetting');
    return this.current;
  }

  private open(options: Omit<ConnectOptions, 'adapters' | 'clientId'>): Promise<Bus> {
    return connect(this.url, { ...options, clientId: this.clientId, adapters: [this.injector.factory()] });
  }

  private async closeAll(): Promise<void> {
    const buses = [...this.others, ...(this.current === undefined ? [] : [this.current])];
    this.others.clear();
    await Promise.all(buses.map((bus) => bus.close()));
  }
}
