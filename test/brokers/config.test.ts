// The broker config files that exist twice (brokers.sh and docker-compose.yml) must agree.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

function settings(conf: string, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of conf.split('\n')) {
    const [key, ...value] = line.trim().split(/\s+/);
    if (key && keys.includes(key)) out[key] = value.join(' ');
  }
  return out;
}

describe('Mosquitto configs', () => {
  it('give docker-compose the same limits and persistence as brokers.sh', () => {
    const keys = [
      'allow_anonymous',
      'max_queued_messages',
      'max_queued_bytes',
      'max_inflight_messages',
      'max_inflight_bytes',
      'set_tcp_nodelay',
      'persistence',
      'autosave_interval',
      'persistent_client_expiration',
    ];
    const local = settings(read('tools/mosquitto/mosquitto.conf'), keys);
    const docker = settings(read('tools/mosquitto/mosquitto.docker.conf'), keys);
    expect(Object.keys(local)).toHaveLength(keys.length);
    expect(docker).toEqual(local);
  });
});
