import { parseUrl } from '@omnibus/core';
import { resolveSettings, type StompSettings } from '../src/options.js';

/** Settings as the adapter resolves them from a URL, for tests that drive a session directly. */
export function parseOptionsForTest(url: string): StompSettings {
  const parsed = parseUrl(url);
  return resolveSettings(parsed, { reconnectDelayMs: 50, ...parsed.params });
}
