/**
 * Connection state for core. kafkajs reconnects by itself but never says that it lost a broker,
 * so the adapter watches the sockets kafkajs opens (through its `socketFactory` hook): an
 * established connection that the other side closes means `reconnecting`; core's `Recovery` then
 * probes (a metadata request with no retries) until the cluster answers again, which means
 * `connected`. While `reconnecting`, core holds sends in its bounded buffer instead of failing them.
 * The same sockets hand kafkajs whole response frames only (see frames.ts).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { isCertificateError } from '@omnibus/core';
import type { ISocketFactory } from 'kafkajs';
import { wholeFrames } from './frames.js';

const KEEP_ALIVE_DELAY_MS = 60_000;

/**
 * The socket factory kafkajs uses: the same sockets as its default one, plus the watch.
 * `refused` hears of a certificate that fails verification, which kafkajs would retry as if the
 * network had failed: no retry can fix it.
 */
export function watchedSockets(
  lost: (error: Error) => void,
  refused: (error: Error) => void = () => undefined,
): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
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
    wholeFrames(socket);
    // kafkajs closes its own sockets with end() (and never with destroy(): Node destroys a socket
    // itself on a read error such as ECONNRESET, which is the broker's doing, not ours).
    const end = socket.end.bind(socket);
    socket.end = ((...args: Parameters<typeof socket.end>) => {
      local = true;
      return end(...args);
    }) as typeof socket.end;
    // The broker going away shows as 'end' (it closed) or 'error' (reset) before kafkajs, reacting
    // to either, ends the socket itself.
    let remote = false;
    const closedByBroker = () => {
      if (!local) remote = true;
    };
    socket.once('end', closedByBroker);
    socket.once('error', closedByBroker);
    socket.once('error', (error: Error) => {
      if (!established && isCertificateError(error)) refused(error);
    });
    socket.once('close', () => {
      if (established && (remote || !local)) {
        lost(new Error(`the connection to ${host}:${port} was closed by the broker`));
      }
    });
    return socket;
  };
}
