import type { Capabilities } from '@omnibus/core';
import {
  ACTIVEMQ_CAPABILITIES,
  GENERIC_CAPABILITIES,
  PROFILES,
  RABBITMQ_CAPABILITIES,
} from '../src/index.js';
import { withDelay } from '../src/profiles.js';

/** The README's capability table columns, one per broker family. */
export function readmeColumns(): Record<string, Capabilities> {
  return {
    'RabbitMQ (STOMP plugin)': RABBITMQ_CAPABILITIES,
    'ActiveMQ Classic, scheduler on': withDelay(PROFILES.activemq, true).capabilities,
    'ActiveMQ Classic, scheduler off': ACTIVEMQ_CAPABILITIES,
    'other (generic)': GENERIC_CAPABILITIES,
  };
}
