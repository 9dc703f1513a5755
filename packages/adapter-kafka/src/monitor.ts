/**
 * Connection state for core. kafkajs reconnects by itself but never says that it lost a broker,
 * so the adapter watches the sockets kafkajs opens (through its `socketFactory` hook): an
 * established connection that the other side closes means `reconnecting`; a probe (a metadata
 * request with no retries) then polls until the cluster answers again, which means `connected`.
 * While `reconnecting`, core holds sends in its bounded buffer instead of failing them.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ConnectionError } from '@omnibus/core';
import type { ISocketFactory } from 'kafkajs';

const KEEP_ALIVE_DELAY_MS = 60_000;

interface MonitorOptions {
  /** Asks the cluster whether it answers; resolves on success, rejects otherwise. */
  readonly probe: () => Promise<void>;
  readonly onDown: (error: Error) => void;
  readonly onUp: () => void;
}

export class ConnectionMonitor {
  private down = false;
  private closed = false;
  private probing = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: MonitorOptions) {}

  /** The socket factory kafkajs uses; same sockets as its default one, plus the watch. */
  readonly socketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
    let established = false;
    let local = false;
    const connected = () => {
      established = true;
      onConnect();
    };
    const socket = ssl
      ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, connected)
      : net.connect({ host, port }, connected);
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
    // kafkajs closes its own sockets with end(); those closes are expected.
    const end = socket.end.bind(socket);
    socket.end = ((...args: Parameters<typeof socket.end>) => {
      local = true;
      return end(...args);
    }) as typeof socket.end;
    const destroy = socket.destroy.bind(socket);
    socket.destroy = ((error?: Error) => {
      local = true;
      return destroy(error);
    }) as typeof socket.destroy;
    // The broker going away shows as 'end' (it closed) or 'error' (reset) before kafkajs, reacting
    // to either, ends the socket itself.
    let remote = false;
    socket.once('end', () => {
      if (!local) remote = true;
    });
    socket.once('error', () => {
      if (!local) remote = true;
    });
    socket.once('close', () => {
      if (established && (remote || !local)) {
        this.lost(new Error(`the connection to ${host}:${port} was closed by the broker`));
      }
    });
    return socket;
  };

  /** A request failed in a way that says the cluster is unreachable. */
  lost(cause: Error): void {
    if (this.closed) return;
    if (!this.down) {
      this.down = true;
      this.o.onDown(
        new ConnectionError(`lost the connection to the Kafka cluster: ${cause.message}`, {
          adapter: 'kafka',
          cause,
        }),
      );
    }
    this.startProbing();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private startProbing(delayMs = 250): void {
    if (this.probing || this.closed) return;
    this.probing = true;
    const attempt = async (wait: number): Promise<void> => {
      if (this.closed) return;
      try {
        await this.o.probe();
      } catch {
        this.timer = setTimeout(() => void attempt(Math.min(wait * 2, 2000)), wait);
        return;
      }
      this.probing = false;
      if (this.down && !this.closed) {
        this.down = false;
        this.o.onUp();
      }
    };
    this.timer = setTimeout(() => void attempt(delayMs), delayMs);
  }
}
