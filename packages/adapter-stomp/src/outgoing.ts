/**
 * Outgoing frames written whole: the stream stompit's `Socket` writes its frames through
 * (its `outgoingFrameStream` option), in place of its own `OutgoingFrameStream`.
 *
 * stompit's writes every frame in three pieces (the command and headers, the body, the NUL) and
 * starts each piece, and each next frame, only in the socket's callback for the one before. A
 * frame therefore costs three system calls, and three turns of the event loop, on a socket without
 * Nagle, and a burst of frames (a window of SENDs, the ACKs of a batch) leaves one piece at a time
 * whatever is corked around it. Here a frame is encoded into one buffer when it is ended and
 * written with one `write`, so the frames of one turn leave in one `writev` (session.ts corks the
 * socket for the turn). The bytes are the ones stompit writes: the same header escaping per
 * protocol version (none before CONNECTED says 1.1 or 1.2), the same `\0\n` after the body.
 *
 * Frames go out in the order they are ended. stompit ends each of its frames when it makes it, and
 * so does this adapter, so that is the order they are made in, as with stompit's queue.
 */
import { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';

type Callback = (error?: Error | null) => void;

/** What stompit's `Socket` calls on its outgoing frame stream (stompit 1.0.0, lib/Socket.js). */
export interface OutgoingFrameStream {
  frame(command: string, headers: Record<string, unknown> | undefined): OutgoingFrame;
  setVersion(version: string): boolean;
  heartbeat(): void;
  finish(): void;
  hasFinished(): boolean;
}

const TERMINATOR = Buffer.from('\0\n', 'latin1');

type Escape = (text: string) => string;
const verbatim: Escape = (text) => text;

/** Replaces what `special` matches by its entry in `table`; text with nothing to escape is tested once and kept. */
function escaping(special: RegExp, table: Readonly<Record<string, string>>): Escape {
  const every = new RegExp(special.source, 'g');
  return (text) => (special.test(text) ? text.replace(every, (c) => table[c]!) : text);
}

const escape11 = escaping(/[\\\n:]/, { '\\': '\\\\', '\n': '\\n', ':': '\\c' });
const escape12 = escaping(/[\\\r\n:]/, { '\\': '\\\\', '\r': '\\r', '\n': '\\n', ':': '\\c' });
const ESCAPES: Record<string, Escape> = { '1.0': verbatim, '1.1': escape11, '1.2': escape12 };

export class FrameWriter implements OutgoingFrameStream {
  /** The header escaping of the negotiated version (none until CONNECTED names one). */
  escape: Escape = verbatim;
  private finished = false;

  constructor(readonly socket: Writable) {
    const finish = () => this.finish();
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('finish', finish);
  }

  frame(command: string, headers: Record<string, unknown> | undefined): OutgoingFrame {
    return new OutgoingFrame(this, command, headers ?? {});
  }

  setVersion(version: string): boolean {
    const chosen = ESCAPES[version];
    if (chosen === undefined) return false;
    this.escape = chosen;
    return true;
  }

  /** An EOL between frames (never inside one: frames are written whole). */
  heartbeat(): void {
    if (!this.finished) this.socket.write('\n', 'latin1');
  }

  finish(): void {
    this.finished = true;
  }

  hasFinished(): boolean {
    return this.finished;
  }
}

/**
 * One frame: a writable for its body as stompit's frames are (`write`, `end`, `error` events),
 * sent when it is ended.
 */
export class OutgoingFrame extends EventEmitter {
  private body: Buffer[] | undefined;
  private callbacks: Callback[] | undefined;
  private ended = false;

  constructor(
    private readonly stream: FrameWriter,
    readonly command: string,
    readonly headers: Record<string, unknown>,
  ) {
    super();
  }

  write(chunk: string | Uint8Array, encoding?: BufferEncoding | Callback, callback?: Callback): boolean {
    if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    if (this.ended) {
      const error = new Error('write after end');
      process.nextTick(() => (callback === undefined ? this.emit('error', error) : callback(error)));
      return false;
    }
    const bytes = toBuffer(chunk, encoding);
    if (this.body === undefined) this.body = [bytes];
    else this.body.push(bytes);
    if (callback !== undefined) this.addCallback(callback);
    return true;
  }

  end(
    chunk?: string | Uint8Array | Callback | null,
    encoding?: BufferEncoding | Callback,
    callback?: Callback,
  ): this {
    if (typeof chunk === 'function') {
      callback = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    if (this.ended) return this;
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    this.ended = true;
    const stream = this.stream;
    if (stream.hasFinished()) {
      // As stompit: the frame fails (its socket destroys the connection), its callbacks are not called.
      process.nextTick(() => this.emit('error', new Error('cannot send frame on closed stream')));
      return this;
    }
    if (callback !== undefined) this.addCallback(callback);
    stream.socket.write(this.encode(stream.escape), this.callbacks === undefined ? undefined : this.written);
    return this;
  }

  private addCallback(callback: Callback): void {
    if (this.callbacks === undefined) this.callbacks = [callback];
    else this.callbacks.push(callback);
  }

  private readonly written = (error?: Error | null): void => {
    if (error) this.emit('error', error);
    for (const callback of this.callbacks!) callback(error ?? null);
  };

  /** The command, the headers, a blank line, the body and `\0\n`, in one buffer. */
  private encode(escapeText: Escape): Buffer {
    let head = `${escapeText(this.command)}\n`;
    const headers = this.headers;
    for (const name in headers) {
      const value = headers[name];
      if (value !== null && value !== undefined) head += `${escapeText(name)}:${escapeText(String(value))}\n`;
    }
    head += '\n';
    const body = this.body;
    let bodyLength = 0;
    if (body !== undefined) for (const chunk of body) bodyLength += chunk.length;
    const headLength = Buffer.byteLength(head);
    const out = Buffer.allocUnsafe(headLength + bodyLength + TERMINATOR.length);
    let at = out.write(head, 0, headLength);
    if (body !== undefined) for (const chunk of body) at += chunk.copy(out, at);
    TERMINATOR.copy(out, at);
    return out;
  }
}

function toBuffer(chunk: string | Uint8Array, encoding: BufferEncoding | undefined): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding ?? 'utf8');
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
