import type { Adapter, AdapterFactory } from './adapter.js';
import { BusImpl } from './bus.js';
import { assertRequirements } from './capabilities.js';
import {
  type ConnectOptions,
  type OmnibusConfig,
  type ResolvedConnectOptions,
  type ResolvedTarget,
  resolveConnectOptions,
  resolveTarget,
} from './config.js';
import { Connection } from './connection.js';
import { ConfigError, ConnectionError, isOmnibusError, TimeoutError } from './errors.js';
import { memory } from './memory/adapter.js';
import { knownSchemes, loadAdapter, registerBuiltin } from './registry.js';

registerBuiltin(memory());

import type { Bus } from './types.js';

/**
 * Connects to a broker. The URL's scheme picks the adapter (`memory://`, `kafka://`, `amqp://`,
 * `mqtt://`, `stomp://`…); `requires` makes a broker that lacks a capability fail here, at start-up.
 *
 * @example
 * const bus = await connect(process.env.BROKER_URL ?? 'memory://', { requires: ['replay'] });
 */
export async function connect(
  config: string | OmnibusConfig = 'memory://',
  options?: ConnectOptions,
): Promise<Bus> {
  const { target, resolved } = resolveAll(config, options);
  const factory = await loadAdapter(target, resolved.adapters);
  const connection = new Connection(factory.name, resolved);
  const adapter = await create(factory, target, connection, resolved);
  try {
    if (resolved.requires !== undefined)
      assertRequirements(adapter.name, adapter.capabilities, resolved.requires);
  } catch (error) {
    await adapter.close();
    throw error;
  }
  connection.setState('connected');
  return new BusImpl(adapter, connection, resolved);
}

/** Validates the configuration and the options together, so every problem is reported at once. */
function resolveAll(
  config: string | OmnibusConfig,
  options: ConnectOptions | undefined,
): { target: ResolvedTarget; resolved: ResolvedConnectOptions } {
  const issues: string[] = [];
  let target: ResolvedTarget | undefined;
  let resolved: ResolvedConnectOptions | undefined;
  try {
    resolved = resolveConnectOptions(options);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    issues.push(...error.issues);
  }
  try {
    target = resolveTarget(config, knownSchemes(resolved?.adapters ?? validAdapters(options?.adapters)));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    issues.unshift(...error.issues);
  }
  if (target === undefined || resolved === undefined) throw new ConfigError(issues);
  return { target, resolved };
}

function validAdapters(adapters: unknown): AdapterFactory[] {
  return Array.isArray(adapters)
    ? adapters.filter(
        (a): a is AdapterFactory => typeof a === 'object' && a !== null && Array.isArray(a.schemes),
      )
    : [];
}

async function create(
  factory: AdapterFactory,
  target: ResolvedTarget,
  connection: Connection,
  options: ResolvedConnectOptions,
): Promise<Adapter> {
  const pending = factory.create({ url: target.url, options: target.options }, connection.context());
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // If it connects after all, close it: nobody holds it.
      pending.then((late) => late.close()).catch(() => undefined);
      reject(
        new TimeoutError(
          `could not connect to ${target.url.redacted} within ${options.connectTimeoutMs} ms`,
          options.connectTimeoutMs,
          { adapter: factory.name },
        ),
      );
    }, options.connectTimeoutMs);
  });
  try {
    return await Promise.race([pending, timeout]);
  } catch (error) {
    if (isOmnibusError(error)) throw error;
    throw new ConnectionError(`could not connect to ${target.url.redacted}`, {
      adapter: factory.name,
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}
