/**
 * Quickstart: an order pipeline that uses the three semantics of Omnibus.
 *
 *   orders (queue)  →  workers charge each order; a failure is retried, a poison order dead-lettered
 *   shop (topic)    →  `orders.<region>.paid` events; billing listens to `orders.*.paid`,
 *                      the EU team to `orders.eu.#`
 *   audit (log)     →  every step appended; replayed from the start at the end
 *
 * Runs on the in-memory broker by default; `BROKER_URL=amqp://… pnpm demo` runs it unchanged on
 * another broker, and a broker that lacks what it needs is named at start-up.
 */
import { connect, UnsupportedCapabilityError } from '@omnibus/core';
import { runPipeline } from './pipeline.js';

const url = process.env.BROKER_URL ?? 'memory://quickstart';

try {
  const bus = await connect(url, {
    clientId: 'quickstart',
    requires: ['queue', 'topic', 'log', 'routing', 'replay'],
  });
  try {
    await runPipeline(bus, (line) => console.log(line));
  } finally {
    await bus.close();
  }
} catch (error) {
  if (error instanceof UnsupportedCapabilityError) {
    console.error(`This demo needs queues, topics with routing, and a replayable log.\n${error.message}`);
    process.exitCode = 2;
  } else {
    throw error;
  }
}
