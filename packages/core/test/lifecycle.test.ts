import { expect, it } from 'vitest';
import { connect } from '../src/index.js';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

it('close() leaves no timer behind to keep the process alive', async () => {
  const before = timers();
  const bus = await connect('memory://no-timers');
  const queue = bus.queue<number>('q');
  let handled = 0;
  await queue.consume(async () => {
    handled++;
  });
  await queue.send(1);
  await bus.log('l').append('x');
  for await (const _ of bus.log('l').messages({ from: 'earliest' })) break;
  while (handled === 0) await new Promise((resolve) => setImmediate(resolve));
  await bus.close();
  expect(timers()).toBe(before);
});
