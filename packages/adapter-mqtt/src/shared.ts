/** What the adapter's parts share: options, the publishing connection, naming and the wire format. */
import type { AdapterContext } from '@omnibus/core';
import type { IPublishPacket } from 'mqtt';
import type { ResolvedOptions } from './options.js';
import type { Publisher } from './publisher.js';
import type { Meta } from './wire.js';

export interface MqttShared {
  readonly o: ResolvedOptions;
  readonly context: AdapterContext;
  readonly publisher: Publisher;
  /** The broker, for messages (redacted URL). */
  readonly where: string;
  /** `clientIdPrefix` + the bus's client id: the base of this bus's MQTT client ids. */
  readonly baseId: string;
  /** `<queuePrefix>/<queue>`. */
  queueTopic(queue: string): string;
  /** `$share/<queue>/<queuePrefix>/<queue>`. */
  shareFilter(queue: string): string;
  /** Sends to a queue, provisioning its holder when nobody would get the message. */
  sendToQueue(queue: string, meta: Meta, body: Uint8Array): Promise<void>;
  /**
   * Sends to a queue's live consumers only, for a sweep that holds the holder itself (provisioning
   * would wait for it). Resolves false when MQTT 5 says nobody got it.
   */
  sendToConsumers(queue: string, meta: Meta, body: Uint8Array): Promise<boolean>;
  /** Reads a received PUBLISH (user properties, or the 3.1.1 envelope). */
  decode(packet: IPublishPacket): { meta: Meta; body: Uint8Array };
}
