import { type Bus, delay, type Message } from '@omnibus/core';
import { z } from 'zod';

export const Order = z.object({
  id: z.string(),
  customer: z.string(),
  region: z.enum(['eu', 'us', 'apac']),
  total: z.number().positive(),
});
export type Order = z.infer<typeof Order>;

export interface AuditEntry {
  readonly order: string;
  readonly step: string;
}

const ORDERS: Order[] = [
  { id: 'A-1', customer: 'ada', region: 'eu', total: 42 },
  { id: 'A-2', customer: 'grace', region: 'us', total: 99.5 },
  { id: 'A-3', customer: 'linus', region: 'eu', total: 7 },
  { id: 'A-4', customer: 'margaret', region: 'apac', total: 1200 },
  { id: 'A-5', customer: 'barbara', region: 'eu', total: 13 },
];

/** Runs the pipeline and resolves once every order is paid or dead-lettered. Returns what happened. */
export async function runPipeline(bus: Bus, print: (line: string) => void) {
  const run = Date.now().toString(36);
  const orders = bus.queue<Order>(`orders-${run}`, { schema: Order, maxAttempts: 3 });
  const deadLetters = bus.queue<Order>(`orders-${run}.dlq`);
  const shop = bus.topic<{ order: string; total: number }>(`shop-${run}`);
  const auditLog = bus.log<AuditEntry>(`audit-${run}`);
  let audited = 0;
  const audit = {
    append: (entry: AuditEntry, options: { key: string }) => {
      audited++;
      return auditLog.append(entry, options);
    },
  };
  print(
    `connected to ${bus.adapter}: queue ${bus.capabilities.queue}, topic ${bus.capabilities.topic}, log ${bus.capabilities.log}`,
  );

  const outcome = { paid: [] as string[], dead: [] as string[], billing: [] as string[], eu: [] as string[] };
  const expected = ORDERS.length;
  let finished = 0;
  let done!: () => void;
  const allDone = new Promise<void>((resolve) => {
    done = resolve;
  });
  const finish = () => {
    if (++finished === expected) done();
  };

  // Notifications: billing hears about every paid order, the EU team about everything in the EU.
  const billing = await shop.subscribe('orders.*.paid', (m) => {
    outcome.billing.push(m.payload.order);
    print(`  billing   ← ${m.subject}: ${m.payload.order} (${m.payload.total.toFixed(2)})`);
  });
  const euTeam = await shop.subscribe('orders.eu.#', (m) => {
    outcome.eu.push(m.payload.order);
    print(`  eu-team   ← ${m.subject}: ${m.payload.order}`);
  });

  // Workers: the payment provider fails A-2 once (retried), and A-4 always (dead-lettered).
  const workers = await orders.consume(
    async (m: Message<Order>) => {
      const order = m.payload;
      await audit.append({ order: order.id, step: `charging (attempt ${m.attempt})` }, { key: order.id });
      if ((order.id === 'A-2' && m.attempt === 1) || order.id === 'A-4') {
        print(`  worker    ✗ ${order.id} attempt ${m.attempt}: payment provider timed out`);
        throw new Error('payment provider timed out');
      }
      await shop.publish({ order: order.id, total: order.total }, { subject: `orders.${order.region}.paid` });
      await audit.append({ order: order.id, step: 'paid' }, { key: order.id });
      outcome.paid.push(order.id);
      print(`  worker    ✓ ${order.id} paid on attempt ${m.attempt}`);
      finish();
    },
    { concurrency: 4 },
  );
  const dead = await deadLetters.consume(async (m) => {
    const reason = m.headers['x-omnibus-dead-letter-reason'];
    const attempts = m.headers['x-omnibus-dead-letter-attempts'];
    outcome.dead.push(m.payload.id);
    await audit.append({ order: m.payload.id, step: `dead-lettered: ${reason}` }, { key: m.payload.id });
    print(`  dlq       ☠ ${m.payload.id} after ${attempts} attempts: ${reason}`);
    finish();
  });

  print(`placing ${expected} orders…`);
  for (const order of ORDERS) await orders.send(order, { key: order.customer });
  try {
    await orders.send({ id: 'A-6', customer: 'eve', region: 'mars', total: -1 } as unknown as Order);
  } catch (error) {
    print(`  rejected before sending: ${(error as Error).message}`);
  }

  await allDone;
  await workers.close();
  await dead.close();
  // Notifications are published before an order counts as paid; wait for them to arrive.
  const deadline = Date.now() + 10_000;
  while ((outcome.billing.length < outcome.paid.length || outcome.eu.length < 2) && Date.now() < deadline) {
    await delay(10);
  }
  await billing.close();
  await euTeam.close();

  print('replaying the audit log from the start:');
  const trail: string[] = [];
  for await (const entry of auditLog.messages({ from: 'earliest' })) {
    trail.push(`${entry.payload.order} ${entry.payload.step}`);
    print(
      `  audit ${`#${entry.position?.offset}`.padStart(3)}  ${entry.payload.order.padEnd(4)} ${entry.payload.step}`,
    );
    if (trail.length === audited) break;
  }
  print(
    `done: ${outcome.paid.length} paid, ${outcome.dead.length} dead-lettered, ${trail.length} audit entries`,
  );
  return { ...outcome, trail };
}
