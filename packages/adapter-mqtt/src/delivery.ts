/** What core gets for each received PUBLISH. */
import { BaseDelivery } from '@omnibus/core';
import type { IPublishPacket } from 'mqtt';
import type { Ack } from './client.js';
import { decode } from './wire.js';

/**
 * A received PUBLISH as core reads it; its PUBACK is sent when core acks it. A class, not a literal
 * with closures: one is made per message.
 */
export class MqttDelivery extends BaseDelivery {
  constructor(
    protocolVersion: 4 | 5,
    packet: IPublishPacket,
    /** Sends this message's PUBACK. */
    readonly pubAck: Ack,
  ) {
    const { headers, body, contentType } = decode(protocolVersion, packet);
    super(body, headers, packet);
    this.contentType = contentType;
    this.redelivered = packet.dup;
  }

  ack(): Promise<void> {
    return this.pubAck.ack();
  }
}
