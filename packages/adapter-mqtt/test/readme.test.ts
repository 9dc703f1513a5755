import { readFileSync } from 'node:fs';
import { capabilityTable, TLS_OPTION_NAMES } from '@omnibus/core';
import { markedSection, tableCells } from '@omnibus/test-brokers';
import { describe, expect, it } from 'vitest';
import { mqttCapabilities } from '../src/index.js';
import { OPTION_NAMES } from '../src/options.js';

/** The README's table, generated from the code; this test fails when they drift apart. */
function readmeTable(): string {
  return capabilityTable({
    'MQTT 5': mqttCapabilities(5),
    'MQTT 3.1.1': mqttCapabilities(4),
    'MQTT 3.1.1 + envelope': mqttCapabilities(4, { envelope: true }),
  });
}

describe('README', () => {
  it('shows the capability table of the code, per protocol version', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = readmeTable();
    const found = tableCells(markedSection(readme, 'capabilities'));
    if (JSON.stringify(found) !== JSON.stringify(tableCells(table)))
      console.info(`expected table:\n${table}`);
    expect(found).toEqual(tableCells(table));
  });

  it('lists every option of MqttOptions, TLS ones included', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(OPTION_NAMES.length).toBeGreaterThan(10 + TLS_OPTION_NAMES.length);
    expect(OPTION_NAMES).toEqual(expect.arrayContaining([...TLS_OPTION_NAMES]));
    for (const name of OPTION_NAMES) expect(readme, `README mentions ${name}`).toContain(`\`${name}\``);
  });
});
