import { ValidationError } from '@omnibus/core';
import { describe, expect, it } from 'vitest';
import {
  assertTopicName,
  envelope,
  fromProperties,
  subjectOf,
  toProperties,
  topicFilter,
  topicName,
  unwrap,
} from '../src/wire.js';

describe('topic names and filters', () => {
  it('maps a subject to topic levels, and no subject to the topic itself', () => {
    expect(topicName('shop', 'orders.eu.created')).toBe('shop/orders/eu/created');
    expect(topicName('shop', undefined)).toBe('shop');
    expect(subjectOf('shop', 'shop/orders/eu/created')).toBe('orders.eu.created');
    expect(subjectOf('shop', 'shop')).toBeUndefined();
  });

  it('translates * and a final # natively', () => {
    expect(topicFilter('t', 'orders.*.created')).toEqual({
      filter: 't/orders/+/created',
      matches: undefined,
    });
    expect(topicFilter('t', 'orders.#')).toEqual({ filter: 't/orders/#', matches: undefined });
    expect(topicFilter('t', '#')).toEqual({ filter: 't/#', matches: undefined });
    expect(topicFilter('t', '*.eu.#')).toEqual({ filter: 't/+/eu/#', matches: undefined });
    expect(topicFilter('t', 'a.b')).toEqual({ filter: 't/a/b', matches: undefined });
  });

  it('subscribes broader and filters on the client for a # before the last word', () => {
    const { filter, matches } = topicFilter('t', 'orders.#.created');
    expect(filter).toBe('t/orders/#');
    expect(matches).toBeTypeOf('function');
    for (const subject of ['orders.created', 'orders.eu.created', 'orders.eu.de.created']) {
      expect(matches!(subject)).toBe(true);
    }
    for (const subject of ['orders', 'orders.eu', 'orders.eu.created.x', undefined]) {
      expect(matches!(subject)).toBe(false);
    }
    const leading = topicFilter('t', '#.x');
    expect(leading.filter).toBe('t/#');
    expect(leading.matches!('a.b.x')).toBe(true);
    expect(leading.matches!(undefined)).toBe(false);
  });

  it('rejects topic names a broker would refuse or read as a filter, before sending', () => {
    for (const bad of ['a/+/b', 'a/#', 'a\u0000b', '', 'x'.repeat(70_000)]) {
      expect(() => assertTopicName(bad)).toThrow(ValidationError);
    }
    expect(() => assertTopicName('ok/topic')).not.toThrow();
  });
});

describe('metadata', () => {
  const meta = {
    id: 'id-1',
    timestamp: 1_700_000_000_000,
    headers: { 'trace-id': 'abc', note: 'héllo ✓', empty: '', 'x-omnibus-attempt': '2' },
    contentType: 'application/json',
    key: 'k1',
    subject: 'a.b',
    redelivered: true,
  };

  it('round-trips through MQTT 5 user properties, keeping its own out of the headers', () => {
    const back = fromProperties(toProperties(meta));
    expect(back).toEqual(meta);
  });

  it('gives a message from another client a fresh id and the receive time', () => {
    const before = Date.now();
    const back = fromProperties({ userProperties: { a: 'b' } });
    expect(back.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(back.timestamp).toBeGreaterThanOrEqual(before);
    expect(back.headers).toEqual({ a: 'b' });
  });

  it('round-trips through the 3.1.1 envelope, bytes unchanged', () => {
    const body = Uint8Array.from({ length: 300 }, (_, i) => i % 256);
    const { meta: back, body: got } = unwrap(envelope(meta, body));
    expect(back).toEqual(meta);
    expect(Array.from(got)).toEqual(Array.from(body));
  });

  it('hands a payload without an envelope over whole', () => {
    const raw = Buffer.from('{"plain":true}');
    const { meta: back, body } = unwrap(raw);
    expect(Buffer.from(body).toString()).toBe('{"plain":true}');
    expect(back.headers).toEqual({});
  });
});
