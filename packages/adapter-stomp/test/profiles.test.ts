import { readFileSync } from 'node:fs';
import { capabilityTable, connect, matchSubject } from '@omnibus/core';
import { markedSection, tableCells } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import {
  ACTIVEMQ_CAPABILITIES,
  GENERIC_CAPABILITIES,
  PROFILES,
  profileFor,
  RABBITMQ_CAPABILITIES,
  stomp,
} from '../src/index.js';
import { withDelay } from '../src/profiles.js';
import { ACTIVEMQ_STOMP_URL, brokerOrSkip, RABBITMQ_STOMP_URL } from './brokers.js';
import { readmeColumns } from './readme-columns.js';

describe('broker profiles', () => {
  it("resolves the profile from CONNECTED's server header", () => {
    expect(profileFor('RabbitMQ/3.10.8')).toBe('rabbitmq');
    expect(profileFor('ActiveMQ/5.17.2')).toBe('activemq');
    expect(profileFor('ActiveMQ-Artemis/2.31.0 ActiveMQ Artemis Messaging Engine')).toBe('generic');
    expect(profileFor('Apache ActiveMQ Apollo')).toBe('generic');
    expect(profileFor(undefined)).toBe('generic');
  });

  it('the README capability table is the code', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = markedSection(readme, 'capabilities');
    expect(tableCells(table)).toEqual(tableCells(capabilityTable(readmeColumns())));
  });

  it('ActiveMQ routes: * and trailing # native (composite for zero words), # elsewhere filtered', () => {
    const route = PROFILES.activemq.topicRoute;
    expect(route('shop.eu', '#')).toEqual({
      destination: '/topic/shop~eu,/topic/shop~eu.>',
      filter: undefined,
    });
    expect(route('shop', 'orders.*.created')).toEqual({
      destination: '/topic/shop.orders.*.created',
      filter: undefined,
    });
    expect(route('shop', '*.eu.#')).toEqual({
      destination: '/topic/shop.*.eu,/topic/shop.*.eu.>',
      filter: undefined,
    });
    const middle = route('shop', 'orders.#.created');
    expect(middle.destination).toBe('/topic/shop.orders.>');
    expect(middle.filter?.('orders.created')).toBe(true);
    expect(middle.filter?.('orders.eu.deleted')).toBe(false);
    expect(route('shop', '#.created').destination).toBe('/topic/shop.>');
  });

  it('every filtered ActiveMQ route covers what the pattern matches', () => {
    // The broker side must never be narrower than the pattern: check by brute force on short subjects.
    const words = ['a', 'b'];
    const subjects: string[] = [];
    const grow = (prefix: string[], depth: number) => {
      if (prefix.length > 0) subjects.push(prefix.join('.'));
      if (depth === 0) return;
      for (const w of words) grow([...prefix, w], depth - 1);
    };
    grow([], 4);
    const patterns = ['#', 'a.#', '#.a', 'a.#.b', '*.#', '#.*', '*.a.#', 'a.*.#.b', '#.#'];
    const activemqMatch = (destination: string, subject: string) =>
      destination.split(',').some((d) => {
        const pattern = d.replace('/topic/t.', '').replace('/topic/t', '');
        const target = subject.split('.');
        const parts = pattern === '' ? [] : pattern.split('.');
        const ok = (p: number, s: number): boolean => {
          if (p === parts.length) return s === target.length;
          if (parts[p] === '>') return s < target.length;
          if (s >= target.length) return false;
          return (parts[p] === '*' || parts[p] === target[s]) && ok(p + 1, s + 1);
        };
        return ok(0, 0);
      });
    for (const pattern of patterns) {
      const { destination, filter } = PROFILES.activemq.topicRoute('t', pattern);
      for (const subject of subjects) {
        const wanted = matchSubject(pattern, subject);
        const got = activemqMatch(destination, subject) && (filter === undefined || filter(subject));
        expect({ pattern, subject, got }).toEqual({ pattern, subject, got: wanted });
      }
    }
  });

  it('RabbitMQ routes keep * and # native on amq.topic', () => {
    expect(PROFILES.rabbitmq.topicRoute('shop.eu', 'orders.#')).toEqual({
      destination: '/topic/shop~eu.orders.#',
      filter: undefined,
    });
    expect(PROFILES.rabbitmq.topicDestination('shop', undefined)).toBe('/topic/shop');
  });
});

for (const [name, url, expected] of [
  ['rabbitmq', RABBITMQ_STOMP_URL, RABBITMQ_CAPABILITIES],
  // The test broker runs with schedulerSupport="true" (tools/activemq/activemq.xml).
  ['activemq', ACTIVEMQ_STOMP_URL, withDelay(PROFILES.activemq, true).capabilities],
] as const) {
  const available = await brokerOrSkip(`profile of ${name}`, url);
  describe.skipIf(!available)(`live profile: ${name}`, () => {
    it('a connection reports its broker family column', async () => {
      const bus = await connect(url, { adapters: [stomp()] });
      try {
        expect(bus.capabilities).toEqual(expected);
      } finally {
        await bus.close();
      }
    });

    it('profile and delay options override what is detected', async () => {
      const generic = await connect(`${url}?profile=generic`, { adapters: [stomp()] });
      const noDelay = await connect(`${url}?delay=none`, { adapters: [stomp()] });
      try {
        expect(generic.capabilities).toEqual(GENERIC_CAPABILITIES);
        expect(noDelay.capabilities.delay).toBe('none');
        if (name === 'activemq') expect(noDelay.capabilities).toEqual(ACTIVEMQ_CAPABILITIES);
      } finally {
        await Promise.all([generic.close(), noDelay.close()]);
      }
    });
  });
}
