/**
 * @omnibus/adapter-rabbitmq — RabbitMQ for Omnibus over amqplib: queues, topic exchanges and stream
 * logs, with publisher confirms and connection recovery.
 *
 * @example
 * import { connect } from '@omnibus/core';
 * const bus = await connect('amqp://guest:guest@localhost:5672/');
 */
import { rabbitmq } from './rabbitmq-adapter.js';

export type { RabbitmqOptions } from './options.js';
export { rabbitmq, rabbitmqCapabilities } from './rabbitmq-adapter.js';
export default rabbitmq;
