/**
 * Broker profiles for the in-memory broker: `memory://?profile=kafka` behaves with the capabilities
 * of another adapter, so an application's tests on memory fail where that broker would. Core lists
 * no profiles (it never imports an adapter): whoever has the adapter's declarations registers them
 * — `@omnibus/testing` does for every adapter package it depends on.
 */
import type { Capabilities } from '../capabilities.js';
import { ConfigError } from '../errors.js';

export interface MemoryProfile {
  /** What the in-memory broker reports (and so what core allows) under this profile. */
  readonly capabilities: Capabilities;
}

const profiles = new Map<string, MemoryProfile>();

/** Makes `memory://?profile=<name>` available in this process. Registering a name again replaces it. */
export function registerProfile(name: string, profile: MemoryProfile): void {
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(name)) {
    throw new ConfigError(`profile name "${name}" must be lower-case letters, digits, "." and "-"`, {
      adapter: 'memory',
    });
  }
  profiles.set(name, profile);
}

/** The profiles registered so far. */
export function memoryProfiles(): readonly string[] {
  return [...profiles.keys()];
}

/** The profile called `name`; a `ConfigError` saying how to get it when none is registered. */
export function memoryProfile(name: string): MemoryProfile {
  const profile = profiles.get(name);
  if (profile !== undefined) return profile;
  const known = profiles.size === 0 ? 'none is registered' : `registered: ${memoryProfiles().join(', ')}`;
  throw new ConfigError(
    `unknown profile "${name}" (${known}) — import "@omnibus/testing" (it registers kafka, rabbitmq, mqtt5, mqtt311, stomp-rabbitmq and stomp-activemq from the installed adapter packages), or call registerProfile("${name}", { capabilities }) from @omnibus/core first`,
    { adapter: 'memory' },
  );
}
