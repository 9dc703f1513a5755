import { describe, expect, it } from 'vitest';
import { Committer, Outstanding, Pending } from '../src/index.js';

describe('Outstanding', () => {
  it('waits for room under a limit and for none at all', async () => {
    const outstanding = new Outstanding();
    outstanding.add();
    outstanding.add();
    let idle = false;
    const waitingForIdle = outstanding.idle().then(() => {
      idle = true;
    });
    const changed = outstanding.changed(60_000);
    outstanding.done();
    await changed;
    expect(outstanding.size).toBe(1);
    await Promise.resolve();
    expect(idle).toBe(false);
    outstanding.done();
    await waitingForIdle;
    expect(idle).toBe(true);
  });

  it('stops waiting after the timeout, and when reset or woken', async () => {
    const outstanding = new Outstanding();
    outstanding.add();
    const started = Date.now();
    await outstanding.changed(20);
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
    const woken = outstanding.changed(60_000);
    outstanding.wake();
    await woken;
    const idle = outstanding.idle();
    outstanding.reset();
    await idle;
    expect(outstanding.size).toBe(0);
    outstanding.done();
    expect(outstanding.size).toBe(0);
  });
});

describe('Pending', () => {
  it('waits for every tracked promise, those tracked while waiting and failed ones included', async () => {
    const pending = new Pending();
    const order: string[] = [];
    let finishSecond!: () => void;
    void pending.track(
      new Promise<void>((resolve) => setTimeout(resolve, 5)).then(() => {
        order.push('first');
        void pending.track(
          new Promise<void>((resolve) => {
            finishSecond = resolve;
          }).then(() => order.push('second')),
        );
        setTimeout(() => finishSecond(), 5);
      }),
    );
    pending.track(Promise.reject(new Error('failed'))).catch(() => undefined);
    await pending.settled();
    expect(order).toEqual(['first', 'second']);
    expect(pending.size).toBe(0);
  });
});

describe('Committer', () => {
  it('commits once for all progress within the interval, one commit at a time', async () => {
    let running = 0;
    let most = 0;
    let commits = 0;
    const committer = new Committer(async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 10));
      commits++;
      running--;
    }, 20);
    committer.soon();
    committer.soon();
    committer.soon();
    await Promise.all([committer.now(), committer.now()]);
    expect(commits).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(commits).toBe(3);
    expect(most).toBe(1);
  });

  it('goes on after a failed commit, and cancel drops the scheduled one', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const committer = new Committer(
      async () => {
        calls++;
        if (calls === 1) throw new Error('connection dropped');
      },
      10,
      (error) => errors.push(error),
    );
    await expect(committer.now()).rejects.toThrow('connection dropped');
    await committer.now();
    expect(calls).toBe(2);
    committer.soon();
    committer.cancel();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(calls).toBe(2);
    committer.soon();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(calls).toBe(3);
    expect(errors).toEqual([]);
  });
});
