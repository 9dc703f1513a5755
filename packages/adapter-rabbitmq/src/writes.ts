/**
 * One socket write per turn of amqplib's frame pump instead of one per frame. amqplib queues every
 * channel's frames and a pump (its `Mux`, run from `setImmediate` and on `drain`) writes them to
 * the socket one `write()` at a time: with nothing buffered, each is a system call of its own, the
 * largest single cost in this adapter's profiles (a publish, an ack: one call each). Corking the
 * socket around one pass of the pump hands the same frames, in the same order, to one `writev`.
 * Flow control is unchanged: a write still returns false past the socket's high-water mark, and the
 * pump then waits for `drain` as before.
 *
 * This reaches into amqplib's connection (`connection.muxer`, `connection.stream`), which is not
 * its public API: when the shape is not the expected one (another amqplib version), nothing is
 * changed and frames are written as amqplib writes them.
 */
import type { ChannelModel } from 'amqplib';

interface Pump {
  _readIncoming?: (() => void) & { corked?: true };
}

interface Socket {
  cork?: () => void;
  uncork?: () => void;
}

/** Makes `model`'s connection write each pass of its frame pump at once; true when it could. */
export function coalesceWrites(model: ChannelModel): boolean {
  const connection = (model as { connection?: { muxer?: Pump; stream?: Socket } }).connection;
  const pump = connection?.muxer;
  const socket = connection?.stream;
  const pass = pump?._readIncoming;
  if (pump === undefined || socket === undefined || typeof pass !== 'function') return false;
  if (pass.corked === true) return true;
  if (typeof socket.cork !== 'function' || typeof socket.uncork !== 'function') return false;
  const cork = socket.cork.bind(socket);
  const uncork = socket.uncork.bind(socket);
  const corked = Object.assign(
    function corkedPass(this: Pump): void {
      cork();
      try {
        pass.call(this);
      } finally {
        uncork();
      }
    },
    { corked: true as const },
  );
  pump._readIncoming = corked;
  return true;
}
