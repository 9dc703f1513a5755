/**
 * A consumer in its own process, for the SIGKILL fault: connects like the parent test (the set-up
 * named by FAULT_SETUP, FAULT_URL, FAULT_CLIENT_ID), consumes FAULT_QUEUE one message at a time and
 * never finishes a handler, so the message it holds is unacknowledged when the parent kills it.
 * Reports on stdout, one JSON object a line: `ready`, `handling <payload>`, `escaped <what>`.
 */
import { connect } from '@omnibus/core';
import { SETUPS } from './setups.js';

const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);
process.on('unhandledRejection', (reason) => say({ event: 'escaped', what: String(reason) }));
process.on('uncaughtException', (error) => say({ event: 'escaped', what: String(error) }));

const setup = SETUPS.find((s) => s.name === process.env.FAULT_SETUP);
const url = process.env.FAULT_URL;
const queue = process.env.FAULT_QUEUE;
const clientId = process.env.FAULT_CLIENT_ID;
if (setup === undefined || url === undefined || queue === undefined || clientId === undefined) {
  throw new Error('child-consumer needs FAULT_SETUP, FAULT_URL, FAULT_QUEUE and FAULT_CLIENT_ID');
}

const bus = await connect(url, { adapters: [setup.adapter()], clientId });
bus.on('error', () => undefined);
await bus.queue<string>(queue).consume(
  (message) => {
    say({ event: 'handling', payload: message.payload });
    // Never settles: the message stays unacknowledged until the process dies.
    return new Promise(() => undefined);
  },
  { concurrency: 1, prefetch: 1 },
);
say({ event: 'ready' });
