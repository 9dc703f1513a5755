/**
 * Where the test Mosquitto is and how to restart it. A tiny TCP probe until `brokerAvailable` from
 * the brokers branch is on main: unreachable skips with a printed reason, or fails under
 * OMNIBUS_REQUIRE_BROKERS=1.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

export async function mosquittoAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const url = new URL(MQTT_URL.replace(/^mqtts?:|^wss?:/, 'http:'));
  const host = url.hostname;
  const port = Number(url.port || 1883);
  const reason = await new Promise<string | undefined>((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => finish(`no TCP connection to ${host}:${port} within 1500 ms`), 1500);
    function finish(why: string | undefined) {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    }
    socket.once('connect', () => finish(undefined));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish(`${error.code ?? error.message} on ${host}:${port}`),
    );
  });
  if (reason === undefined) return { ok: true };
  const text = `Mosquitto is not reachable at ${MQTT_URL} (${reason}); start it with scripts/brokers.sh up`;
  if (/^(1|true|yes)$/i.test(process.env.OMNIBUS_REQUIRE_BROKERS ?? ''))
    throw new Error(`OMNIBUS_REQUIRE_BROKERS=1 and ${text}`);
  return { ok: false, reason: text };
}

/** `scripts/brokers.sh` of this repository, or OMNIBUS_BROKERS_SH; undefined when neither exists. */
function brokersScript(): string | undefined {
  const own = `${repo}scripts/brokers.sh`;
  if (existsSync(own)) return own;
  const other = process.env.OMNIBUS_BROKERS_SH;
  return other !== undefined && existsSync(other) ? other : undefined;
}

export const restartMosquitto: (() => Promise<void>) | undefined = (() => {
  const script = brokersScript();
  if (script === undefined) return undefined;
  return async () => {
    await promisify(execFile)('bash', [script, 'restart', 'mosquitto'], { cwd: repo, timeout: 120_000 });
  };
})();
