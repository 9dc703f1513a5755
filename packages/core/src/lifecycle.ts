/**
 * The life of a subscription on a connection that comes and goes, written once for every adapter:
 * attach → (connection lost → reattach on the next one, backing off while attaching fails) → stop
 * → close. An adapter supplies the broker call that attaches (`attach(connection)`) and tells its
 * `Lifecycles` when its connection comes and goes; the states and their races live here.
 *
 * `C` is whatever the adapter's connection is (an amqplib channel model, a STOMP client…).
 */
import type { Subscription } from './adapter.js';

/** What one attach made: a consumer on the broker, to stop and close. */
export interface Attached {
  /** Stop new deliveries; settling outstanding ones still works. */
  stop?(): Promise<void>;
  /** Release it; unsettled deliveries go back to the broker. */
  close(): Promise<void>;
}

export interface LifecycleOptions<C> {
  /**
   * Opens the subscription on `connection`. Rejects to be tried again (with backoff) while the
   * connection stays. `broken`: what this attach made broke while the connection stays (a channel
   * error, a consumer the broker cancelled): attach again. Ignored unless it is what is attached.
   */
  attach(connection: C, broken: (reason?: Error) => void): Promise<Attached>;
  /** A failure no caller sees (a reattach that failed); reported once per outage. */
  report(error: Error): void;
  /** Longest wait between two failed attaches. @default 30000 (ms) */
  readonly maxDelayMs?: number;
}

type State = 'idle' | 'attaching' | 'attached' | 'stopped' | 'closed';

export class Lifecycle<C> implements Subscription {
  private state: State = 'idle';
  private connection: C | undefined;
  private attached: Attached | undefined;
  /** The attach in progress, and the connection it is for. */
  private attaching: { readonly connection: C; readonly done: Promise<void> } | undefined;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closing: Promise<void> | undefined;
  /** Called once closed, so the owner forgets it. */
  onClosed: (() => void) | undefined;

  constructor(private readonly o: LifecycleOptions<C>) {}

  /** True once `stop` or `close` was called: nothing attaches any more. */
  get stopped(): boolean {
    return this.state === 'stopped' || this.state === 'closed';
  }

  get current(): Attached | undefined {
    return this.attached;
  }

  /** The first attach: rejects with its error, so the application's subscribe fails. */
  async start(connection: C): Promise<void> {
    this.connection = connection;
    await this.attachTo(connection);
  }

  /** A (new) connection is up: attach to it once, retrying with backoff while it stays current. */
  connected(connection: C): void {
    if (this.stopped) return;
    this.connection = connection;
    this.failures = 0;
    this.clearTimer();
    if (this.attaching?.connection === connection) return;
    void this.attachTo(connection).catch((error: unknown) => this.failed(connection, error));
  }

  /** The connection is gone, and what was attached with it. */
  disconnected(): void {
    this.connection = undefined;
    this.attached = undefined;
    this.clearTimer();
    if (!this.stopped) this.state = 'idle';
  }

  /** What was attached broke while the connection stays (a channel error, a cancelled consumer): attach again. */
  broken(reason?: Error): void {
    const connection = this.connection;
    const attached = this.attached;
    this.attached = undefined;
    if (attached !== undefined) void attached.close().catch(() => undefined);
    if (this.stopped || connection === undefined) return;
    this.state = 'idle';
    this.failed(connection, reason, true);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.state = 'stopped';
    this.clearTimer();
    await this.attaching?.done.catch(() => undefined);
    await this.attached?.stop?.().catch(() => undefined);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state = 'closed';
    this.clearTimer();
    await this.attaching?.done.catch(() => undefined);
    const attached = this.attached;
    this.attached = undefined;
    this.connection = undefined;
    try {
      await attached?.close();
    } finally {
      this.onClosed?.();
    }
  }

  /** One attach per connection at a time: a reconnection and a retry timer may both try. */
  private attachTo(connection: C): Promise<void> {
    if (this.attaching?.connection === connection) return this.attaching.done;
    this.state = 'attaching';
    let made: Attached | undefined;
    const broken = (reason?: Error) => {
      if (made !== undefined && this.attached === made) this.broken(reason);
    };
    const done = this.o.attach(connection, broken).then(async (attached) => {
      if (this.stopped || this.connection !== connection) {
        // Stopped or reconnected meanwhile: what was just opened is not wanted.
        await attached.close().catch(() => undefined);
        return;
      }
      this.attached = attached;
      made = attached;
      this.state = 'attached';
      this.failures = 0;
    });
    const entry = { connection, done };
    this.attaching = entry;
    const clear = () => {
      if (this.attaching === entry) this.attaching = undefined;
    };
    done.then(clear, clear);
    return done;
  }

  private failed(connection: C, error: unknown, immediate = false): void {
    if (this.stopped || this.connection !== connection || this.timer !== undefined) return;
    if (this.failures === 0 && error !== undefined && !immediate) {
      this.o.report(error instanceof Error ? error : new Error(String(error)));
    }
    const delayMs = Math.min(this.o.maxDelayMs ?? 30_000, 250 * 2 ** this.failures);
    this.failures++;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped || this.connection !== connection) return;
      void this.attachTo(connection).catch((e: unknown) => this.failed(connection, e));
    }, delayMs);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The lifecycles of one adapter connection: tell it when the connection comes and goes. */
export class Lifecycles<C> {
  private readonly all = new Set<Lifecycle<C>>();
  private connection: C | undefined;

  /** Creates a lifecycle, attaches it on the current connection and tracks it until it is closed. */
  async start(
    options: LifecycleOptions<C>,
    connection: C | undefined = this.connection,
  ): Promise<Lifecycle<C>> {
    const lifecycle = new Lifecycle<C>(options);
    if (connection === undefined) {
      throw new Error('not connected');
    }
    await lifecycle.start(connection).catch(async (error: unknown) => {
      await lifecycle.close().catch(() => undefined);
      throw error;
    });
    this.all.add(lifecycle);
    lifecycle.onClosed = () => this.all.delete(lifecycle);
    return lifecycle;
  }

  connected(connection: C): void {
    this.connection = connection;
    for (const lifecycle of this.all) lifecycle.connected(connection);
  }

  disconnected(): void {
    this.connection = undefined;
    for (const lifecycle of this.all) lifecycle.disconnected();
  }

  get size(): number {
    return this.all.size;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.all].map((l) => l.close().catch(() => undefined)));
  }
}
