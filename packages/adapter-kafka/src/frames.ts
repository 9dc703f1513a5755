/**
 * Whole Kafka frames per `data` event. kafkajs keeps the bytes of a half-received response in its
 * `Connection` and does not clear them when it reconnects (kafkajs 2.2.4, network/connection.js):
 * a connection reset in the middle of a response leaves a fragment that the next socket's bytes
 * are appended to, so every later response on that connection is misread ("Response without
 * match") and its requests time out — for good, since the seed broker's connection outlives
 * consumer restarts. A socket that only ever hands kafkajs complete frames (int32 size, then that
 * many bytes) leaves nothing behind when it dies.
 */
import type { Socket } from 'node:net';

const SIZE_BYTES = 4;

/**
 * Makes `socket` emit `data` only when whole frames have arrived, and then all of their bytes at once
 * (as the chunks they came in); a fragment still buffered when it closes is dropped.
 */
export function wholeFrames(socket: Socket): void {
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
  let chunks: Buffer[] = [];
  let buffered = 0;
  /** Where the frame being received ends, counted from the start of `chunks` (unknown: -1). */
  let frameEnd = -1;
  /** Bytes at the start of `chunks` that form complete frames. */
  let complete = 0;

  const onChunk = (chunk: Buffer): void => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (frameEnd < 0) {
        if (buffered - complete < SIZE_BYTES) break;
        // A negative size is garbage kafkajs rejects anyway; counting it as 0 keeps this loop moving.
        frameEnd = complete + SIZE_BYTES + Math.max(0, readInt32At(chunks, complete));
      }
      if (buffered < frameEnd) break;
      complete = frameEnd;
      frameEnd = -1;
    }
    if (complete === 0) return;
    // The complete frames go over as the chunks they arrived in (the last one cut at the frame's
    // end), one after another in this call: kafkajs joins a response's chunks itself, so joining
    // them here first would copy every response twice.
    const all = chunks;
    let left = complete;
    let count = 0;
    while (count < all.length && all[count]!.length <= left) left -= all[count++]!.length;
    const head = count < all.length && left > 0 ? all[count]!.subarray(0, left) : undefined;
    chunks = count < all.length ? all.slice(count) : [];
    if (left > 0) chunks[0] = chunks[0]!.subarray(left);
    buffered -= complete;
    if (frameEnd >= 0) frameEnd -= complete;
    complete = 0;
    for (let i = 0; i < count; i++) emit('data', all[i]);
    if (head !== undefined) emit('data', head);
  };

  socket.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event === 'data' && Buffer.isBuffer(args[0])) {
      onChunk(args[0]);
      return true;
    }
    return emit(event, ...args);
  }) as typeof socket.emit;
}

/** The big-endian int32 at `offset` of the concatenation of `chunks` (without concatenating them). */
function readInt32At(chunks: readonly Buffer[], offset: number): number {
  let at = offset;
  let index = 0;
  while (at >= chunks[index]!.length) at -= chunks[index++]!.length;
  const first = chunks[index]!;
  if (at + SIZE_BYTES <= first.length) return first.readInt32BE(at);
  const bytes = Buffer.alloc(SIZE_BYTES);
  let filled = 0;
  for (; filled < SIZE_BYTES; index++, at = 0) {
    const chunk = chunks[index]!;
    filled += chunk.copy(bytes, filled, at, Math.min(chunk.length, at + SIZE_BYTES - filled));
  }
  return bytes.readInt32BE(0);
}
