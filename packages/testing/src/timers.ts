/**
 * The real timers, taken when this module loads: a test's fake timers replace the globals later,
 * and a spy's deadline or a reordered delivery must not wait for someone to advance them.
 */
export const real = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  setImmediate: globalThis.setImmediate,
};

/** True while the global timers are not the real ones (vitest's or sinon's fake timers). */
export function fakeTimersOn(): boolean {
  return globalThis.setTimeout !== real.setTimeout;
}
