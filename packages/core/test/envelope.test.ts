import { describe, expect, it } from 'vitest';
import type { Delivery, OutgoingMessage } from '../src/adapter.js';
import { HEADER, readEnvelope, toHeaders, unwrapBody, wrapBody } from '../src/envelope.js';

const message: OutgoingMessage = {
  id: 'm-1',
  body: new TextEncoder().encode('"hi"'),
  headers: { trace: 'abc', priority: 'high' },
  contentType: 'text/plain; charset=utf-8',
  key: 'k',
  subject: 'orders.eu',
  timestamp: 1_700_000_000_123,
};

function delivery(fields: Partial<Delivery>): Delivery {
  return {
    body: new Uint8Array(),
    headers: {},
    redelivered: false,
    raw: undefined,
    ack: async () => {},
    ...fields,
  };
}

describe('envelope', () => {
  it('round-trips every field through a header bag, escaping names the protocol would interpret', () => {
    const bag = toHeaders(message, { escape: (name) => name === 'priority' });
    expect(bag.priority).toBeUndefined();
    const envelope = readEnvelope(delivery({ headers: bag }));
    expect(envelope).toMatchObject({
      id: 'm-1',
      contentType: 'text/plain; charset=utf-8',
      key: 'k',
      subject: 'orders.eu',
      timestamp: 1_700_000_000_123,
      attempt: 1,
      redelivered: false,
      headers: { trace: 'abc', priority: 'high' },
    });
  });

  it('leaves native fields out of the bag and reads them from the delivery', () => {
    const bag = toHeaders(message, { native: { id: true, key: true, contentType: true, timestamp: true } });
    expect(Object.keys(bag).sort()).toEqual([HEADER.subject, 'priority', 'trace'].sort());
    const envelope = readEnvelope(
      delivery({ headers: bag, id: 'm-1', key: 'k', contentType: 'x/y', timestamp: 5 }),
    );
    expect(envelope).toMatchObject({
      id: 'm-1',
      key: 'k',
      contentType: 'x/y',
      timestamp: 5,
      subject: 'orders.eu',
    });
  });

  it('writes the JSON content type only when asked to and it is not the default', () => {
    const json = { ...message, contentType: 'application/json' };
    expect(
      toHeaders(json, { native: { contentType: 'unless-default' } })[HEADER.contentType],
    ).toBeUndefined();
    expect(toHeaders(message, { native: { contentType: 'unless-default' } })[HEADER.contentType]).toBe(
      message.contentType,
    );
  });

  it('gives a message without an id a new, unique one', () => {
    const a = readEnvelope(delivery({ headers: { foreign: '1' } }));
    const b = readEnvelope(delivery({ headers: { foreign: '1' }, id: '' }));
    expect(a.id).not.toBe('');
    expect(a.id).not.toBe(b.id);
    expect(a.headers).toEqual({ foreign: '1' });
  });

  it('takes the higher of the broker count and the attempt header, and hides control headers', () => {
    const headers = { ...toHeaders(message), [HEADER.attempt]: '3', [HEADER.firstFailure]: 'then' };
    const envelope = readEnvelope(delivery({ headers, attempt: 2 }));
    expect(envelope.attempt).toBe(3);
    expect(envelope.redelivered).toBe(true);
    expect(envelope.firstFailure).toBe('then');
    expect(envelope.headers).toEqual({ trace: 'abc', priority: 'high' });
  });

  it('keeps dead-letter headers visible to the application', () => {
    const headers = { ...toHeaders(message), [HEADER.deadLetterReason]: 'boom' };
    expect(readEnvelope(delivery({ headers })).headers[HEADER.deadLetterReason]).toBe('boom');
  });

  it('wraps the bag into a body for protocols without headers, and leaves foreign payloads whole', () => {
    const bag = toHeaders(message);
    const wrapped = wrapBody(bag, message.body);
    const unwrapped = unwrapBody(wrapped);
    expect(unwrapped.headers).toEqual(bag);
    expect(Buffer.from(unwrapped.body).toString()).toBe('"hi"');
    const foreign = Buffer.from('{"plain":true}');
    expect(unwrapBody(foreign)).toEqual({ headers: {}, body: foreign });
    const truncated = wrapped.subarray(0, 12);
    expect(unwrapBody(truncated).body).toBe(truncated);
  });
});
