/**
 * CPU profiles of one pair: each side's timed round under the inspector's sampling profiler
 * (node:inspector, the same profiler as `node --cpu-prof`), written as .cpuprofile files that
 * Chrome DevTools or speedscope open, and a text summary of the top self-time functions.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { measure, type Scenario } from './harness.js';

/** The parts of a .cpuprofile (the DevTools protocol's Profiler.Profile) the summary reads. */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly hitCount?: number;
  }[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface SelfTime {
  readonly functionName: string;
  /** The script, shortened to its package path (`node_modules/amqplib/…`, `packages/core/…`). */
  readonly url: string;
  readonly selfMs: number;
  /** Share of all sampled time, idle and garbage collection included. */
  readonly percent: number;
}

/**
 * Self time per function+url, most first. Each sample is charged the interval until the next
 * sample (the last one the mean interval), as DevTools does; without samples, hit counts share
 * the profile's duration.
 */
export function selfTimes(profile: CpuProfile, top = 20): SelfTime[] {
  const byNode = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  if (samples !== undefined && timeDeltas !== undefined && samples.length > 0) {
    const mean = (profile.endTime - profile.startTime) / samples.length;
    for (let i = 0; i < samples.length; i++) {
      const us = i + 1 < timeDeltas.length ? timeDeltas[i + 1]! : mean;
      byNode.set(samples[i]!, (byNode.get(samples[i]!) ?? 0) + Math.max(0, us));
    }
  } else {
    const hits = profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0);
    const per = hits === 0 ? 0 : (profile.endTime - profile.startTime) / hits;
    for (const n of profile.nodes) if (n.hitCount) byNode.set(n.id, n.hitCount * per);
  }
  const byFunction = new Map<string, { functionName: string; url: string; us: number }>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = byNode.get(node.id);
    if (us === undefined) continue;
    total += us;
    const functionName = node.callFrame.functionName || '(anonymous)';
    const url = shortUrl(node.callFrame.url);
    const key = `${functionName}\u0000${url}`;
    const entry = byFunction.get(key);
    if (entry === undefined) byFunction.set(key, { functionName, url, us });
    else entry.us += us;
  }
  return [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({
      functionName: e.functionName,
      url: e.url,
      selfMs: Math.round(e.us) / 1000,
      percent: total === 0 ? 0 : Math.round((e.us / total) * 1000) / 10,
    }));
}

export function shortUrl(url: string): string {
  if (url === '') return '';
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) return `node_modules/${path.slice(modules + '/node_modules/'.length)}`;
  const packages = path.lastIndexOf('/packages/');
  if (packages >= 0) return path.slice(packages + 1);
  const bench = path.lastIndexOf('/bench/');
  if (bench >= 0) return path.slice(bench + 1);
  return path;
}

export function summaryText(title: string, rows: readonly SelfTime[]): string {
  const lines = [`${title}`, `${'self ms'.padStart(10)} ${'%'.padStart(5)}  function  (script)`];
  for (const r of rows)
    lines.push(
      `${r.selfMs.toFixed(1).padStart(10)} ${r.percent.toFixed(1).padStart(5)}  ${r.functionName}  ${r.url ? `(${r.url})` : ''}`,
    );
  return lines.join('\n');
}

/** The parts of a sampling heap profile (the DevTools protocol's HeapProfiler.SamplingHeapProfile) the summary reads. */
export interface HeapProfile {
  readonly head: HeapNode;
}

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly selfSize: number;
  readonly children: readonly HeapNode[];
}

/**
 * Bytes allocated a message per function+url, most first (`top` rows), and in all, from a sampling
 * heap profile taken with the collected objects kept: what each function allocated in the round,
 * garbage included.
 */
export function allocations(
  profile: HeapProfile,
  messages: number,
  top = 20,
): { readonly rows: SelfTime[]; readonly perMessage: number } {
  const byFunction = new Map<string, { functionName: string; url: string; bytes: number }>();
  let total = 0;
  const stack: HeapNode[] = [profile.head];
  while (stack.length > 0) {
    const node = stack.pop()!;
    for (const child of node.children) stack.push(child);
    if (node.selfSize === 0) continue;
    total += node.selfSize;
    const functionName = node.callFrame.functionName || '(anonymous)';
    const url = shortUrl(node.callFrame.url);
    const key = `${functionName}\u0000${url}`;
    const entry = byFunction.get(key);
    if (entry === undefined) byFunction.set(key, { functionName, url, bytes: node.selfSize });
    else entry.bytes += node.selfSize;
  }
  const rows = [...byFunction.values()]
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, top)
    .map((e) => ({
      functionName: e.functionName,
      url: e.url,
      // Bytes a message, in the column the CPU summary uses for ms.
      selfMs: Math.round(e.bytes / messages),
      percent: total === 0 ? 0 : Math.round((e.bytes / total) * 1000) / 10,
    }));
  return { rows, perMessage: Math.round(total / messages) };
}

/** How one kind of profile is taken around a timed round, and summarized. */
interface Profiler<P> {
  readonly domain: 'Profiler' | 'HeapProfiler';
  /** After `enable`, before the first round. */
  setUp?(session: Session): Promise<void>;
  start(session: Session): Promise<void>;
  stop(session: Session): Promise<P>;
  /** Each side's profile is `<pair>-d<depth>-<side>.<extension>`, the summary `<pair>-d<depth><suffix>.txt`. */
  readonly extension: string;
  readonly suffix: string;
  summary(profile: P, title: string, count: number): string;
}

const CPU: Profiler<CpuProfile> = {
  domain: 'Profiler',
  async setUp(session) {
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
  },
  async start(session) {
    await session.post('Profiler.start');
  },
  async stop(session) {
    return (await session.post('Profiler.stop')).profile as CpuProfile;
  },
  extension: 'cpuprofile',
  suffix: '',
  summary: (profile, title) => summaryText(title, selfTimes(profile)),
};

const ALLOCATIONS: Profiler<HeapProfile> = {
  domain: 'HeapProfiler',
  async start(session) {
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as never);
  },
  async stop(session) {
    return (await session.post('HeapProfiler.stopSampling')).profile as unknown as HeapProfile;
  },
  extension: 'heapprofile',
  suffix: '-alloc',
  summary(profile, title, count) {
    const { rows, perMessage } = allocations(profile, count);
    return summaryText(`${title}; ${perMessage} bytes allocated a message`, rows).replace('self ms', 'B/msg');
  },
};

/**
 * Runs each side of `scenario` once at `depth`, profiling its timed round only (set-up and warm-up
 * are not sampled), writes `<dir>/<pair>-d<depth>-<side>.cpuprofile` and `<pair>-d<depth>.txt`,
 * and returns the summary text. With `kind: 'alloc'` the profile is of allocations instead
 * (`.heapprofile` and `-alloc.txt`: bytes a message per allocating function, collected objects
 * included).
 */
export function profilePair(
  scenario: Scenario,
  depth: number,
  count: number,
  dir: string,
  kind: 'cpu' | 'alloc' = 'cpu',
): Promise<string> {
  return kind === 'alloc'
    ? profileSides(ALLOCATIONS, scenario, depth, count, dir)
    : profileSides(CPU, scenario, depth, count, dir);
}

async function profileSides<P>(
  profiler: Profiler<P>,
  scenario: Scenario,
  depth: number,
  count: number,
  dir: string,
): Promise<string> {
  const session = new Session();
  session.connect();
  const slug = scenario.name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
  const parts: string[] = [];
  try {
    await session.post(`${profiler.domain}.enable`);
    await profiler.setUp?.(session);
    for (const side of ['raw', 'omnibus'] as const) {
      let profile: P | undefined;
      const m = await measure(scenario[side], scenario, depth, count, {
        before: () => profiler.start(session),
        after: async () => {
          profile = await profiler.stop(session);
        },
      });
      if (profile === undefined) throw new Error(`no profile was taken of ${scenario.name} (${side})`);
      writeFileSync(join(dir, `${slug}-d${depth}-${side}.${profiler.extension}`), JSON.stringify(profile));
      const title = `${scenario.name}, ${side}, ${depth} in flight, ${count} messages: ${Math.round(m.throughput)} msg/s`;
      parts.push(profiler.summary(profile, title, count));
    }
  } finally {
    await session.post(`${profiler.domain}.disable`).catch(() => undefined);
    session.disconnect();
  }
  const text = `${parts.join('\n\n')}\n`;
  writeFileSync(join(dir, `${slug}-d${depth}${profiler.suffix}.txt`), text);
  return text;
}
