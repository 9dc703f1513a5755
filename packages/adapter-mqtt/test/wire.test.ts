import { type Delivery, type OutgoingMessage, readEnvelope, ValidationError } from '@omnibus/core';
import type { IPublishPacket } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { assertTopicName, decode, encodeMessage, subjectOf, topicFilter, topicName } from '../src/wire.js';

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

describe("the envelope on the wire (core's, carried by the adapter)", () => {
  const message: OutgoingMessage = {
    id: 'id-1',
    timestamp: 1_700_000_000_000,
    body: Uint8Array.from({ length: 300 }, (_, i) => i % 256),
    headers: { 'trace-id': 'abc', note: 'héllo ✓', empty: '', 'x-omnibus-attempt': '2' },
    contentType: 'application/json',
    key: 'k1',
    subject: 'a.b',
  };

  /** What a consumer gets for `message` sent on protocol `v`, read as core reads it. */
  function roundTrip(v: 4 | 5, wrap = true) {
    const { payload, properties } = encodeMessage(v, message, wrap);
    const packet = { cmd: 'publish', topic: 't', qos: 1, dup: false, retain: false, payload, properties };
    const decoded = decode(v, packet as unknown as IPublishPacket);
    const delivery: Delivery = { ...decoded, redelivered: false, raw: packet, ack: async () => undefined };
    return { decoded, envelope: readEnvelope(delivery) };
  }

  it.each([5, 4] as const)(
    'round-trips id, key, subject, timestamp, content type, headers and bytes (v%s)',
    (v) => {
      const { decoded, envelope } = roundTrip(v);
      expect(envelope).toMatchObject({
        id: 'id-1',
        timestamp: 1_700_000_000_000,
        key: 'k1',
        subject: 'a.b',
        contentType: 'application/json',
        attempt: 2,
        headers: { 'trace-id': 'abc', note: 'héllo ✓', empty: '' },
      });
      expect(Array.from(decoded.body)).toEqual(Array.from(message.body));
    },
  );

  it('carries the content type as the MQTT 5 property, not as a user property', () => {
    const { payload, properties } = encodeMessage(5, message, true);
    expect(properties?.contentType).toBe('application/json');
    expect(Object.keys(properties?.userProperties ?? {}).some((n) => n.includes('content-type'))).toBe(false);
    expect(payload).toBe(message.body);
  });

  it('gives a message from another client a fresh id and the receive time', () => {
    const before = Date.now();
    const packet = { payload: Buffer.from('x'), properties: { userProperties: { a: 'b' } } };
    const delivery: Delivery = {
      ...decode(5, packet as unknown as IPublishPacket),
      redelivered: false,
      raw: packet,
      ack: async () => undefined,
    };
    const envelope = readEnvelope(delivery);
    expect(envelope.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(envelope.timestamp).toBeGreaterThanOrEqual(before);
    expect(envelope.headers).toEqual({ a: 'b' });
  });

  it('hands a 3.1.1 payload without an envelope over whole', () => {
    const packet = { payload: Buffer.from('{"plain":true}') };
    const { headers, body } = decode(4, packet as unknown as IPublishPacket);
    expect(Buffer.from(body).toString()).toBe('{"plain":true}');
    expect(headers).toEqual({});
    expect(encodeMessage(4, message, false).payload).toBe(message.body);
  });
});
