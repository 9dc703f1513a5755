import { randomUUID } from 'node:crypto';
import { connect } from '@omnibus/core';
import { describe } from 'vitest';
import { observabilityChecks } from './checks.js';

describe('memory://', () => {
  observabilityChecks({
    system: 'memory',
    connect: () => connect(`memory://otel-${randomUUID()}`),
    carriesContext: true,
    timeoutMs: 5000,
  });
});
