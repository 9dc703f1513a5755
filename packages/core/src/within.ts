/**
 * Waiting for something that may never come — a broker's goodbye, a marker message, a CONNACK —
 * without a timer of its own at every call site.
 */

/**
 * Resolves with what `promise` resolves to, or with `fallback` once `ms` have passed, whichever
 * comes first; a rejection passes through. The timer is cleared when the promise settles and
 * never keeps the process alive.
 */
export function within<T, F = undefined>(promise: Promise<T>, ms: number, fallback?: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback as F), ms);
    timer.unref();
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
