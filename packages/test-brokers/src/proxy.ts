/**
 * A fault-injecting TCP proxy on 127.0.0.1 in front of a real broker, so a test can break the
 * network between a client and its broker without touching a broker other tests share:
 * reset (RST both ways), cut (FIN both ways), blackhole (bytes silently dropped, no FIN, no RST —
 * only heart-beats and keepalives can tell), refuse (new connections closed at once).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Resets every open connection: both sides get an RST (ECONNRESET). */
  reset(): void;
  /** Closes every open connection at once: both sides see it end. */
  cut(): void;
  /**
   * From now on, drops every byte in both directions and closes nothing; new connections are
   * accepted and then hear nothing either. What only a heart-beat can detect.
   */
  blackhole(): void;
  /** Ends the blackhole: the connections it swallowed are reset, new ones work again. */
  heal(): void;
  /** While on, new connections are closed as soon as they are accepted. */
  refuse(on: boolean): void;
  close(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Set when the pair lived through a blackhole: its byte stream has gaps and cannot go on. */
  swallowed: boolean;
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const pairs = new Set<Pair>();
  let refusing = false;
  let blackholed = false;
  let accepted = 0;
  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    accepted++;
    const upstream = connect(target);
    const pair: Pair = { client, upstream, swallowed: blackholed };
    pairs.add(pair);
    forward(client, upstream, () => blackholed, pair);
    forward(upstream, client, () => blackholed, pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy has no port');
  const each = (action: (pair: Pair) => void) => {
    for (const pair of [...pairs]) action(pair);
  };
  return {
    host: '127.0.0.1',
    port: address.port,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    reset() {
      each((p) => {
        p.client.resetAndDestroy();
        p.upstream.resetAndDestroy();
      });
    },
    cut() {
      each((p) => {
        p.client.destroy();
        p.upstream.destroy();
      });
    },
    blackhole() {
      blackholed = true;
      each((p) => {
        p.swallowed = true;
      });
    },
    heal() {
      blackholed = false;
      each((p) => {
        if (p.swallowed) {
          p.client.resetAndDestroy();
          p.upstream.resetAndDestroy();
        }
      });
    },
    refuse(on) {
      refusing = on;
    },
    close() {
      each((p) => {
        p.client.destroy();
        p.upstream.destroy();
      });
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Copies `from` to `to` with back-pressure, dropping what arrives while the blackhole is on. */
function forward(from: Socket, to: Socket, dropping: () => boolean, pair: Pair): void {
  from.on('data', (chunk: Buffer) => {
    if (dropping() || pair.swallowed) return;
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => {
    if (!pair.swallowed) to.end();
  });
}
