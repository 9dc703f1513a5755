/**
 * Where a new consumer starts. Kafka resolves "latest" lazily, at the first fetch after the join,
 * so a message sent between `subscribe()` resolving and that fetch would be missed. Instead the
 * start offsets are read here, before the consumer starts, and committed for the group right
 * after it joins (`seeds`): everything sent after `subscribe()`/`read()` resolved is delivered.
 * Partitions that already have a committed offset for the group keep it (a group resumes).
 */
import { type ResolvedReadFrom, ValidationError } from '@omnibus/core';
import type { Admin } from 'kafkajs';
import { type OffsetsSource, topicOffsets, topicOffsetsAt } from './topic-offsets.js';

interface StartPositions {
  /** For partitions without a committed offset and without a seed. */
  readonly fromBeginning: boolean;
  readonly seeds: ReadonlyMap<number, number>;
}

/**
 * Start offsets for `topic` read from `from`; with `groupId`, only for partitions the group has not
 * committed yet (`groupId` undefined: a new, empty group).
 */
export async function startPositions(
  source: OffsetsSource,
  topic: string,
  partitions: number,
  from: ResolvedReadFrom,
  groupId: string | undefined,
): Promise<StartPositions> {
  if (from.kind === 'earliest') return { fromBeginning: true, seeds: new Map() };
  const { admin } = source;
  const open = groupId === undefined ? undefined : await uncommitted(admin, groupId, topic);
  if (open !== undefined && open.size === 0)
    return { fromBeginning: from.kind !== 'latest', seeds: new Map() };
  const wanted = (partition: number) => open === undefined || open.has(partition);
  const seeds = new Map<number, number>();
  switch (from.kind) {
    case 'latest': {
      for (const { partition, high } of await topicOffsets(source, topic, partitions)) {
        if (wanted(partition)) seeds.set(partition, Number(high));
      }
      return { fromBeginning: false, seeds };
    }
    case 'timestamp': {
      // The first offset whose timestamp is at or after `from`; the end of the partition when none is.
      const offsets = await topicOffsetsAt(source, topic, from.timestamp, partitions);
      for (const { partition, offset } of offsets)
        if (wanted(partition)) seeds.set(partition, Number(offset));
      return { fromBeginning: false, seeds };
    }
    case 'positions': {
      for (const { partition, offset } of from.positions) {
        if (partition >= partitions) {
          throw new ValidationError(
            `position { partition: ${partition}, offset: ${offset} } is outside "${topic}", which has ${partitions} partition(s)`,
          );
        }
        if (wanted(partition)) seeds.set(partition, offset);
      }
      // Partitions that are not named start from the earliest message.
      return { fromBeginning: true, seeds };
    }
  }
}

async function uncommitted(admin: Admin, groupId: string, topic: string): Promise<Set<number>> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Set((offsets?.partitions ?? []).filter((p) => Number(p.offset) < 0).map((p) => p.partition));
}
