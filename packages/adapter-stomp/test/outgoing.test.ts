import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameWriter, type OutgoingFrameStream } from '../src/outgoing.js';

const require = createRequire(import.meta.url);
/** stompit's own outgoing frame stream, the one FrameWriter stands in for. */
const StompitOutgoing = require('stompit/lib/OutgoingFrameStream') as new (
  destination: Writable,
) => OutgoingFrameStream;

/** A socket stand-in that records every write (each `writev` chunk counts as one write). */
function destination(): { socket: Writable; writes: Buffer[]; bytes(): string } {
  const writes: Buffer[] = [];
  const socket = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk);
      setImmediate(callback);
    },
  });
  return { socket, writes, bytes: () => Buffer.concat(writes).toString('latin1') };
}

interface FrameSpec {
  command: string;
  headers: Record<string, string | number | undefined>;
  body: (string | Buffer)[];
}

/** Writes `frames` the way stompit's callers do (body written, then `end`), each once the last is out. */
async function send(stream: OutgoingFrameStream, version: string, frames: FrameSpec[]): Promise<void> {
  stream.setVersion(version);
  for (const spec of frames) {
    const frame = stream.frame(spec.command, { ...spec.headers }) as unknown as Writable;
    await new Promise<void>((resolve, reject) => {
      frame.on('error', reject);
      const body = [...spec.body];
      const last = body.pop();
      for (const chunk of body) frame.write(chunk);
      if (last === undefined) frame.end(() => resolve());
      else frame.end(last, () => resolve());
    });
  }
}

const text = fc.string({
  unit: fc.constantFrom('a', 'é', ':', '\n', '\r', '\\', ' ', '✓', 'z'),
  maxLength: 8,
});
const frameSpec: fc.Arbitrary<FrameSpec> = fc.record({
  command: fc.constantFrom('SEND', 'ACK', 'NACK', 'SUBSCRIBE'),
  headers: fc.dictionary(
    text.filter((name) => name !== ''),
    fc.oneof(text, fc.nat(), fc.constant(undefined)),
    {
      maxKeys: 5,
    },
  ),
  body: fc.array(
    fc.oneof(
      text,
      fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
    ),
    {
      maxLength: 3,
    },
  ),
});

describe('FrameWriter (outgoing frames written whole)', () => {
  it("writes the bytes stompit's own stream writes, for every protocol version", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('1.0', '1.1', '1.2'),
        fc.array(frameSpec, { minLength: 1, maxLength: 4 }),
        async (version, frames) => {
          const theirs = destination();
          const ours = destination();
          await send(new StompitOutgoing(theirs.socket), version, frames);
          await send(new FrameWriter(ours.socket), version, frames);
          expect(ours.bytes()).toBe(theirs.bytes());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('writes each frame with one write, however its body was written', async () => {
    const ours = destination();
    const stream = new FrameWriter(ours.socket);
    stream.setVersion('1.2');
    const frames = [
      { command: 'SEND', headers: { destination: '/queue/a', 'content-length': 5 }, body: ['he', 'llo'] },
      { command: 'ACK', headers: { id: '7' }, body: [] },
    ];
    await send(stream, '1.2', frames);
    expect(ours.writes).toHaveLength(2);
    expect(ours.writes[0]!.toString()).toBe('SEND\ndestination:/queue/a\ncontent-length:5\n\nhello\0\n');
    // stompit: command and headers, body pieces and terminator each a write of their own.
    const theirs = destination();
    await send(new StompitOutgoing(theirs.socket), '1.2', frames);
    expect(theirs.writes.length).toBeGreaterThan(2);
  });

  it('sends frames in the order they are ended and copies the body when the frame ends', async () => {
    const ours = destination();
    const stream = new FrameWriter(ours.socket);
    const body = Buffer.from('first');
    const first = stream.frame('SEND', { n: 1 }) as unknown as Writable;
    const second = stream.frame('SEND', { n: 2 }) as unknown as Writable;
    second.end('second');
    first.end(body);
    body.write('XXXXX');
    await new Promise((resolve) => setImmediate(resolve));
    expect(ours.bytes()).toBe('SEND\nn:2\n\nsecond\0\nSEND\nn:1\n\nfirst\0\n');
  });

  it('fails a frame ended after the socket finished, without writing it', async () => {
    const ours = destination();
    const stream = new FrameWriter(ours.socket);
    ours.socket.end();
    await new Promise((resolve) => ours.socket.once('finish', resolve));
    expect(stream.hasFinished()).toBe(true);
    const frame = stream.frame('SEND', {}) as unknown as Writable;
    let called = false;
    const failed = new Promise<Error>((resolve) => frame.on('error', resolve));
    frame.end('x', () => {
      called = true;
    });
    expect((await failed).message).toMatch(/closed stream/);
    expect(called).toBe(false);
    expect(ours.writes).toHaveLength(0);
    stream.heartbeat();
    expect(ours.writes).toHaveLength(0);
  });

  it('beats with an EOL between frames', async () => {
    const ours = destination();
    const stream = new FrameWriter(ours.socket);
    stream.heartbeat();
    await send(stream, '1.2', [{ command: 'ACK', headers: { id: '1' }, body: [] }]);
    expect(ours.bytes()).toBe('\nACK\nid:1\n\n\0\n');
  });
});
