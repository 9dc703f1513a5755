/**
 * A fault-injecting TCP proxy on 127.0.0.1 in front of a real broker, so a test can break the
 * network between a client and its broker without touching a broker other tests share:
 * reset (RST both ways), cut (FIN both ways), blackhole (bytes silently dropped, no FIN, no RST —
 * only heart-beats and keepalives can tell), refuse (new connections closed at once).
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
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
  /**
   * Waits for the next chunk of at least `minBytes` coming from the broker, forwards only its first
   * half, stops forwarding anything, and resets every open connection a moment later: the client
   * is left holding part of a reply, as when a connection breaks mid-transfer. Resolves once done.
   */
  resetMidReply(minBytes?: number): Promise<void>;
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

/** How long `resetMidReply` lets the client read the half reply before the reset. */
const READ_GRACE_MS = 200;

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const pairs = new Set<Pair>();
  let refusing = false;
  let blackholed = false;
  let accepted = 0;
  /** Armed by `resetMidReply`: called with each chunk from the broker, true once it cut one. */
  let cutReply: ((chunk: Buffer, to: Socket) => boolean) | undefined;
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
    forward(
      upstream,
      client,
      () => blackholed,
      pair,
      (chunk) => cutReply?.(chunk, client) ?? false,
    );
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
  const resetAll = () =>
    each((p) => {
      p.client.resetAndDestroy();
      p.upstream.resetAndDestroy();
    });
  return {
    host: '127.0.0.1',
    port: address.port,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    reset: resetAll,
    resetMidReply(minBytes = 2) {
      return new Promise<void>((resolve) => {
        cutReply = (chunk, to) => {
          if (chunk.length < Math.max(2, minBytes)) return false;
          cutReply = undefined;
          // Nothing more flows, or the rest of the reply would follow its half.
          blackholed = true;
          each((p) => {
            p.swallowed = true;
          });
          // An RST makes the client's kernel discard what the client has not read yet: give it a
          // moment to read the half first.
          to.write(chunk.subarray(0, chunk.length >> 1), () =>
            setTimeout(() => {
              blackholed = false;
              resetAll();
              resolve();
            }, READ_GRACE_MS),
          );
          return true;
        };
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

/**
 * Copies `from` to `to` with back-pressure, dropping what arrives while the blackhole is on;
 * `intercept` may take a chunk over instead.
 */
function forward(
  from: Socket,
  to: Socket,
  dropping: () => boolean,
  pair: Pair,
  intercept: (chunk: Buffer) => boolean = () => false,
): void {
  from.on('data', (chunk: Buffer) => {
    if (dropping() || pair.swallowed || intercept(chunk)) return;
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => {
    if (!pair.swallowed) to.end();
  });
}

type NetConnect = (...args: unknown[]) => Socket;

/**
 * Sends this process's TCP connections to each `from` endpoint through its `to` (a fault proxy),
 * until the returned function is called. For clients that connect to addresses a broker advertises
 * rather than the ones they were given (Kafka): node:net's `connect`, which their socket factory
 * calls, is rerouted. A proxy connects upstream with the very endpoint object it was started with:
 * that connection goes to the broker itself.
 */
export function redirectConnections(
  routes: readonly {
    readonly from: { host: string; port: number };
    readonly to: { host: string; port: number };
  }[],
): () => void {
  const net = createRequire(import.meta.url)('node:net') as {
    connect: NetConnect;
    createConnection: NetConnect;
  };
  const original = { connect: net.connect, createConnection: net.createConnection };
  const routed = (fn: NetConnect): NetConnect =>
    function (this: unknown, ...args: unknown[]) {
      const first = args[0] as { host?: string; port?: number } | undefined;
      const route = routes.find((r) => first?.host === r.from.host && Number(first?.port) === r.from.port);
      if (route !== undefined && first !== route.from) {
        args[0] = { ...first, host: route.to.host, port: route.to.port };
      }
      return fn.apply(this, args);
    };
  net.connect = routed(original.connect);
  net.createConnection = routed(original.createConnection);
  syncBuiltinESMExports();
  return () => {
    net.connect = original.connect;
    net.createConnection = original.createConnection;
    syncBuiltinESMExports();
  };
}
