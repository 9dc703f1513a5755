/**
 * The time as the event loop sees it, for the moments core records per message only to report
 * them in `bus.health()` (a consumer's last delivery, ack and progress, when a handler started):
 * read once per job, not once per message. Reading the clock costs about 55 ns on a virtual
 * machine's clock source, and a delivery read it four times: on the in-memory broker that was
 * about a sixth of a message's CPU time (docs/benchmarks.md, seventh round). libuv does the same
 * for timers: the loop's time is read once per turn.
 *
 * Within one job (a callback and the microtasks queued before this one's expiry) the time does not
 * move: a handler that blocks the thread for a second records its ack at the time the job began,
 * and `longestRunningMs` counts from the job a handler started in. What must be exact (message
 * timestamps, deadlines, timeouts) reads `Date.now()`.
 */
let now = 0;
let fresh = false;

export function loopNow(): number {
  if (fresh) return now;
  now = Date.now();
  fresh = true;
  queueMicrotask(expire);
  return now;
}

function expire(): void {
  fresh = false;
}
