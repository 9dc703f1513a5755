import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { wholeFrames } from '../src/frames.js';

function frame(body: string): Buffer {
  const bytes = Buffer.from(body);
  const size = Buffer.alloc(4);
  size.writeInt32BE(bytes.length);
  return Buffer.concat([size, bytes]);
}

function framed(): { socket: Socket; seen: string[] } {
  const socket = new Socket();
  const seen: string[] = [];
  wholeFrames(socket);
  socket.on('data', (data: Buffer) => void seen.push(data.toString('hex')));
  return { socket, seen };
}

describe('wholeFrames', () => {
  it('joins a frame split over reads, byte by byte included', () => {
    const { socket, seen } = framed();
    const whole = frame('hello kafka');
    for (const byte of whole) socket.emit('data', Buffer.from([byte]));
    expect(seen).toEqual([whole.toString('hex')]);
  });

  it('passes several frames of one read at once and keeps the fragment after them', () => {
    const { socket, seen } = framed();
    const [a, b, c] = [frame('a'), frame(''), frame('ccc')];
    socket.emit('data', Buffer.concat([a, b, c.subarray(0, 5)]));
    expect(seen).toEqual([Buffer.concat([a, b]).toString('hex')]);
    socket.emit('data', c.subarray(5));
    expect(seen.at(-1)).toBe(c.toString('hex'));
  });

  it('never hands over a fragment, so a socket that dies mid-frame leaves nothing behind', () => {
    const { socket, seen } = framed();
    socket.emit('data', frame('x'.repeat(100)).subarray(0, 50));
    expect(seen).toEqual([]);
  });
});
