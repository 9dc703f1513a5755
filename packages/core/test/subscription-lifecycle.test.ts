import { describe, expect, it } from 'vitest';
import { delay } from '../src/deadlines.js';
import { type Attached, Lifecycles } from '../src/lifecycle.js';
import { until } from './helpers.js';

/** A fake connection is just a token; attaches are recorded per connection. */
function harness(failFirst = 0) {
  const attached: string[] = [];
  const closed: string[] = [];
  let failures = failFirst;
  const options = {
    attach: async (connection: string): Promise<Attached> => {
      if (failures > 0) {
        failures--;
        throw new Error(`refused on ${connection}`);
      }
      attached.push(connection);
      return {
        stop: async () => undefined,
        close: async () => {
          closed.push(connection);
        },
      };
    },
    reported: [] as Error[],
    report(error: Error) {
      this.reported.push(error);
    },
  };
  return { attached, closed, options };
}

describe('Lifecycle', () => {
  it('attaches, reattaches once per new connection, and not after close', async () => {
    const h = harness();
    const all = new Lifecycles<string>();
    all.connected('c1');
    const life = await all.start(h.options);
    expect(h.attached).toEqual(['c1']);
    all.disconnected();
    all.connected('c2');
    all.connected('c2');
    await until(() => h.attached.length === 2);
    expect(h.attached).toEqual(['c1', 'c2']);
    await life.close();
    await life.close();
    expect(h.closed).toEqual(['c2']);
    expect(all.size).toBe(0);
    all.connected('c3');
    await delay(20);
    expect(h.attached).toEqual(['c1', 'c2']);
  });

  it('rejects the first attach with its error and tracks nothing', async () => {
    const h = harness(1);
    const all = new Lifecycles<string>();
    all.connected('c1');
    await expect(all.start(h.options)).rejects.toThrow('refused on c1');
    expect(all.size).toBe(0);
  });

  it('retries a failed reattach with backoff and reports the outage once', async () => {
    const h = harness();
    const all = new Lifecycles<string>();
    all.connected('c1');
    await all.start(h.options);
    let refusals = 2;
    const attach = h.options.attach;
    h.options.attach = async (c) => {
      if (refusals-- > 0) throw new Error('not yet');
      return attach(c);
    };
    all.disconnected();
    all.connected('c2');
    await until(() => h.attached.length === 2);
    expect(h.options.reported).toHaveLength(1);
    await all.closeAll();
  });

  it('attaches again when what was attached breaks, and stops for good after stop()', async () => {
    const h = harness();
    const all = new Lifecycles<string>();
    all.connected('c1');
    const life = await all.start(h.options);
    life.broken(new Error('channel closed'));
    await until(() => h.attached.length === 2);
    expect(h.closed).toEqual(['c1']);
    await life.stop();
    life.broken();
    all.connected('c9');
    await delay(300);
    expect(h.attached).toEqual(['c1', 'c1']);
    await life.close();
  });

  it('closes what an attach opened after the subscription was closed meanwhile', async () => {
    const h = harness();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const attach = h.options.attach;
    const all = new Lifecycles<string>();
    all.connected('c1');
    const life = await all.start(h.options);
    h.options.attach = async (c) => {
      await gate;
      return attach(c);
    };
    all.disconnected();
    all.connected('c2');
    const closing = life.close();
    release();
    await closing;
    await until(() => h.closed.includes('c2'));
    expect(life.current).toBeUndefined();
  });
});
