import type { ResolvedReadFrom } from '../adapter.js';
import { OffsetTracker } from '../offsets.js';
import type { LogPosition } from '../types.js';
import { type StoredMessage, stored } from './types.js';

export interface LogRecord {
  readonly message: StoredMessage;
  readonly partition: number;
  readonly offset: number;
}

/**
 * An in-memory log: partitions of retained records (offset = index), keys hashed to partitions,
 * consumer groups that share partitions among their readers and keep committed offsets.
 */
export class MemoryLog {
  readonly partitions: LogRecord[][];
  private readonly groups = new Map<string, LogGroup>();
  private readonly readers = new Set<LogReader>();
  private roundRobin = 0;
  private lastTimestamp = 0;

  constructor(
    readonly name: string,
    partitionCount: number,
  ) {
    this.partitions = Array.from({ length: partitionCount }, () => []);
  }

  append(message: StoredMessage): LogPosition {
    const count = this.partitions.length;
    const partition = message.key === undefined ? this.roundRobin++ % count : hashKey(message.key) % count;
    const records = this.partitions[partition]!;
    // Timestamps never go backwards within the log, so a timestamp lookup can bisect.
    this.lastTimestamp = Math.max(this.lastTimestamp, message.timestamp);
    const kept = message.timestamp === this.lastTimestamp ? message : stored(message, this.lastTimestamp);
    const record: LogRecord = { message: kept, partition, offset: records.length };
    records.push(record);
    for (const reader of this.readers) reader.wake(partition);
    return { partition, offset: record.offset };
  }

  /** The offset a reader starting `from` begins at, in one partition. */
  startOffset(partition: number, from: ResolvedReadFrom): number {
    const records = this.partitions[partition] ?? [];
    switch (from.kind) {
      case 'earliest':
        return 0;
      case 'latest':
        return records.length;
      case 'positions': {
        const position = from.positions.find((p) => p.partition === partition);
        return position === undefined ? 0 : Math.min(Math.max(0, position.offset), records.length);
      }
      case 'timestamp': {
        let lo = 0;
        let hi = records.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (records[mid]!.message.timestamp < from.timestamp) lo = mid + 1;
          else hi = mid;
        }
        return lo;
      }
    }
  }

  join(reader: LogReader): void {
    this.readers.add(reader);
    if (reader.group === undefined) {
      reader.assign(this.partitions.map((_, p) => p));
      return;
    }
    let group = this.groups.get(reader.group);
    if (group === undefined) {
      group = new LogGroup();
      this.groups.set(reader.group, group);
    }
    group.members.push(reader);
    this.rebalance(group);
  }

  leave(reader: LogReader): void {
    if (!this.readers.delete(reader)) return;
    if (reader.group === undefined) return;
    const group = this.groups.get(reader.group);
    if (group === undefined) return;
    group.members = group.members.filter((m) => m !== reader);
    this.rebalance(group);
  }

  /**
   * A rebalance of a consumer group, as a broker makes when a member joins, leaves or stalls: every
   * partition is revoked and assigned again, each to the next member. What was delivered but not
   * committed is read again by its new owner. False when the group has no member.
   */
  rebalanceGroup(group: string): boolean {
    const found = this.groups.get(group);
    if (found === undefined || found.members.length === 0) return false;
    for (const member of found.members) member.assign([]);
    found.members.push(found.members.shift()!);
    this.rebalance(found);
    return true;
  }

  /** True while a reader of the group is attached. */
  hasMembers(group: string): boolean {
    return (this.groups.get(group)?.members.length ?? 0) > 0;
  }

  /** Sets the group's committed offset of every partition to where `from` starts (the group is empty). */
  resetGroup(group: string, from: ResolvedReadFrom): void {
    let found = this.groups.get(group);
    if (found === undefined) {
      found = new LogGroup();
      this.groups.set(group, found);
    }
    for (let p = 0; p < this.partitions.length; p++) found.committed.set(p, this.startOffset(p, from));
  }

  committed(group: string, partition: number): number | undefined {
    return this.groups.get(group)?.committed.get(partition);
  }

  commit(group: string, partition: number, offset: number): void {
    const committed = this.groups.get(group)?.committed;
    if (committed !== undefined && (committed.get(partition) ?? -1) < offset)
      committed.set(partition, offset);
  }

  /** Partition p goes to member p mod n, in join order: every partition has exactly one reader. */
  private rebalance(group: LogGroup): void {
    const n = group.members.length;
    group.members.forEach((member, index) => {
      member.assign(this.partitions.map((_, p) => p).filter((p) => p % n === index));
    });
  }
}

class LogGroup {
  members: LogReader[] = [];
  readonly committed = new Map<number, number>();
}

/** One reader: delivers its partitions in offset order within its prefetch, tracks what finished. */
export class LogReader {
  private cursors = new Map<number, number>();
  private trackers = new Map<number, OffsetTracker>();
  private inFlight = 0;
  private turn = 0;
  private scheduled = false;
  private active = true;

  constructor(
    private readonly log: MemoryLog,
    readonly group: string | undefined,
    private readonly from: ResolvedReadFrom,
    private readonly prefetch: number,
    private readonly push: (record: LogRecord, finish: () => void) => void,
  ) {}

  assign(partitions: readonly number[]): void {
    const cursors = new Map<number, number>();
    const trackers = new Map<number, OffsetTracker>();
    for (const p of partitions) {
      const kept = this.trackers.get(p);
      if (kept !== undefined) {
        cursors.set(p, this.cursors.get(p)!);
        trackers.set(p, kept);
        continue;
      }
      const committed = this.group === undefined ? undefined : this.log.committed(this.group, p);
      const start = committed ?? this.log.startOffset(p, this.from);
      cursors.set(p, start);
      trackers.set(p, new OffsetTracker(start));
    }
    // Deliveries from partitions taken away finish without committing: the new owner re-reads them.
    this.cursors = cursors;
    this.trackers = trackers;
    this.wake();
  }

  /** Where this reader would resume, per partition (what has finished, contiguously). */
  positions(): LogPosition[] {
    return [...this.trackers].map(([partition, tracker]) => ({ partition, offset: tracker.committable }));
  }

  stop(): void {
    this.active = false;
  }

  wake(partition?: number): void {
    if (partition !== undefined && !this.cursors.has(partition)) return;
    if (this.scheduled || !this.active) return;
    this.scheduled = true;
    queueMicrotask(this.pumpSoon);
  }

  /** `pump`, made once: scheduling one costs no closure. */
  private readonly pumpSoon = (): void => this.pump();

  private pump(): void {
    this.scheduled = false;
    const partitions = [...this.cursors.keys()];
    let idle = 0;
    while (this.active && this.inFlight < this.prefetch && idle < partitions.length) {
      const partition = partitions[this.turn++ % partitions.length]!;
      const offset = this.cursors.get(partition)!;
      const record = this.log.partitions[partition]![offset];
      if (record === undefined) {
        idle++;
        continue;
      }
      idle = 0;
      this.cursors.set(partition, offset + 1);
      const tracker = this.trackers.get(partition)!;
      tracker.delivered(offset);
      this.inFlight++;
      this.push(record, () => this.finish(tracker, partition, offset));
    }
  }

  private finish(tracker: OffsetTracker, partition: number, offset: number): void {
    this.inFlight--;
    if (this.trackers.get(partition) === tracker && tracker.finish(offset) && this.group !== undefined) {
      this.log.commit(this.group, partition, tracker.committable);
    }
    this.wake();
  }
}

/** FNV-1a: stable across processes, so a key maps to the same partition every time. */
function hashKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
