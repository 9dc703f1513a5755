import { randomUUID } from 'node:crypto';
import { connect } from '@omnibus/core';
import { SpanKind } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { observabilityChecks } from './checks.js';
import { setUpTelemetry } from './harness.js';

describe('memory://', () => {
  observabilityChecks({
    system: 'memory',
    connect: () => connect(`memory://otel-${randomUUID()}`),
    carriesContext: true,
    timeoutMs: 5000,
  });

  it('records a message once when instrumentOmnibus() is called twice: the last call wins', async () => {
    const first = setUpTelemetry();
    const second = setUpTelemetry();
    const bus = await connect(`memory://otel-${randomUUID()}`);
    await bus.queue('q').send(1);
    await bus.close();
    expect(first.spans()).toEqual([]);
    expect(second.spans().filter((s) => s.kind === SpanKind.PRODUCER)).toHaveLength(1);
    first.instrumentation.disable(); // a replaced instrumentation's disable() leaves the active one on
    const again = await connect(`memory://otel-${randomUUID()}`);
    await again.queue('q').send(2);
    await again.close();
    expect(second.spans().filter((s) => s.kind === SpanKind.PRODUCER)).toHaveLength(2);
    await first.shutdown();
    await second.shutdown();
  });
});
