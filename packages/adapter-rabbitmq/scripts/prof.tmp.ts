import { connect } from '@omnibus/core';
import { connect as amqp } from 'amqplib';
import { rabbitmq } from '../src/index.js';

const URL = 'amqp://guest:guest@127.0.0.1:5672';
const N = 20000;
const mode = process.argv[2];
const name = `prof-${Date.now()}`;
let got = 0;
let done!: () => void;
const finished = new Promise<void>((r) => (done = r));
const body = Buffer.alloc(1024, 7);
const t0 = Date.now();
let next = 0;
if (mode === 'raw') {
  const pc = await amqp(URL);
  const cc = await amqp(URL);
  const pub = await pc.createConfirmChannel();
  const sub = await cc.createChannel();
  await sub.assertQueue(name, { durable: true });
  await sub.prefetch(200);
  await sub.consume(name, (m) => {
    if (!m) return;
    sub.ack(m);
    if (++got === N) done();
  });
  const send = () =>
    new Promise<void>((res, rej) =>
      pub.publish('', name, body, { persistent: true }, (e: unknown) => (e ? rej(e) : res())),
    );
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next++ < N) await send();
    }),
  );
  await finished;
  console.log('raw msg/s', Math.round(N / ((Date.now() - t0) / 1000)));
  await pub.deleteQueue(name);
  await pc.close();
  await cc.close();
} else {
  const p = await connect(URL, { adapters: [rabbitmq()] });
  const c = await connect(URL, { adapters: [rabbitmq()] });
  await c.queue<Uint8Array>(name, { codec: 'bytes' }).consume(
    () => {
      if (++got === N) done();
    },
    { prefetch: 200, concurrency: 200 },
  );
  const q = p.queue<Uint8Array>(name, { codec: 'bytes' });
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next++ < N) await q.send(body);
    }),
  );
  await finished;
  console.log('omnibus msg/s', Math.round(N / ((Date.now() - t0) / 1000)));
  await c.close();
  await p.close();
}
