import { Socket } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { wholeFrames } from '../src/frames.js';

function frame(body: string): Buffer {
  const bytes = Buffer.from(body);
  const size = Buffer.alloc(4);
  size.writeInt32BE(bytes.length);
  return Buffer.concat([size, bytes]);
}

/**
 * A framed socket and what it handed over: `seen` holds, for each read that handed anything over,
 * the bytes handed over during that read; `events` counts the `data` events.
 */
function framed(): { socket: Socket; seen: string[]; events: Buffer[]; read(chunk: Buffer): void } {
  const socket = new Socket();
  const seen: string[] = [];
  const events: Buffer[] = [];
  let during: Buffer[] = [];
  wholeFrames(socket);
  socket.on('data', (data: Buffer) => {
    events.push(data);
    during.push(data);
  });
  const read = (chunk: Buffer): void => {
    during = [];
    socket.emit('data', chunk);
    if (during.length > 0) seen.push(Buffer.concat(during).toString('hex'));
  };
  return { socket, seen, events, read };
}

describe('wholeFrames', () => {
  it('joins a frame split over reads, byte by byte included', () => {
    const { seen, read } = framed();
    const whole = frame('hello kafka');
    for (const byte of whole) read(Buffer.from([byte]));
    expect(seen).toEqual([whole.toString('hex')]);
  });

  it('passes several frames of one read at once and keeps the fragment after them', () => {
    const { seen, read } = framed();
    const [a, b, c] = [frame('a'), frame(''), frame('ccc')];
    read(Buffer.concat([a, b, c.subarray(0, 5)]));
    expect(seen).toEqual([Buffer.concat([a, b]).toString('hex')]);
    read(c.subarray(5));
    expect(seen.at(-1)).toBe(c.toString('hex'));
  });

  it('never hands over a fragment, so a socket that dies mid-frame leaves nothing behind', () => {
    const { seen, read } = framed();
    read(frame('x'.repeat(100)).subarray(0, 50));
    expect(seen).toEqual([]);
  });

  it('hands a frame over as the reads it came in, not a copy of them joined', () => {
    const { seen, events, read } = framed();
    const big = frame('y'.repeat(200));
    const next = frame('z');
    const reads = [
      big.subarray(0, 3),
      big.subarray(3, 90),
      big.subarray(90, 150),
      Buffer.concat([big.subarray(150), next.subarray(0, 2)]),
    ];
    for (const chunk of reads) read(chunk);
    expect(seen).toEqual([big.toString('hex')]);
    // The first three reads themselves, then the fourth cut at the frame's end: views, no copies.
    expect(events.slice(0, 3)).toEqual(reads.slice(0, 3));
    expect(events.slice(0, 3).every((event, i) => event === reads[i])).toBe(true);
    expect(events[3]!.buffer).toBe(reads[3]!.buffer);
    read(next.subarray(2));
    expect(seen.at(-1)).toBe(next.toString('hex'));
  });

  it('hands over every frame of a random split, each read at a frame boundary', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 40 }),
        (bodies, cuts) => {
          const { seen, read } = framed();
          const frames = bodies.map(frame);
          const all = Buffer.concat(frames);
          const boundaries = new Set<number>([0]);
          let end = 0;
          for (const f of frames) {
            end += f.length;
            boundaries.add(end);
          }
          let at = 0;
          let handed = 0;
          for (let i = 0; at < all.length; i++) {
            const size = cuts[i % cuts.length]!;
            read(all.subarray(at, at + size));
            at += size;
            handed = seen.reduce((sum, hex) => sum + hex.length / 2, 0);
            expect(boundaries.has(handed)).toBe(true);
          }
          expect(seen.join('')).toBe(all.toString('hex'));
        },
      ),
    );
  });
});
