import { connect } from '@omnibus/core';
import { kafka } from '@omnibus/adapter-kafka';
const N = 20000, DEPTH = +(process.env.DEPTH ?? 500);
const body = Uint8Array.from({ length: 1024 }, (_, i) => i % 251);
const bus = await connect('kafka://127.0.0.1:9092?maxWaitTimeMs=100', { adapters: [kafka()] });
const driver = bus.driverFor;
for (let r = 0; r < 3; r++) {
  const q = bus.queue(`kb-${Date.now()}-${r}`, { codec: 'bytes' });
  let got = 0, wake; const done = new Promise((res) => (wake = res));
  const c = await q.consume(() => { if (++got === N) wake(); }, { concurrency: 64, prefetch: 2000 });
  await q.send(body); got = 0;
  const before = driver.produceRequests;
  const t0 = performance.now(); const cpu = process.cpuUsage();
  let sent = 0;
  await Promise.all(Array.from({ length: DEPTH }, async () => { while (sent < N) { sent++; await q.send(body); } }));
  const sendMs = performance.now() - t0;
  await done;
  const u = process.cpuUsage(cpu);
  console.log(`round ${r}: ${Math.round(N / ((performance.now() - t0) / 1000))} msg/s, send phase ${Math.round(sendMs)} ms, ${driver.produceRequests - before} produce requests, CPU ${((u.user + u.system) / N).toFixed(1)} µs/msg`);
  await c.close();
}
await bus.close();
