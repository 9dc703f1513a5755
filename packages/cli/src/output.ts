/**
 * What the CLI prints. Messages are JSON lines on a pipe (one object per line, for `jq`) and a
 * readable, coloured layout on a terminal; colour follows NO_COLOR and FORCE_COLOR
 * (https://no-color.org). Progress goes to stderr, and only when stderr is a terminal.
 */
import type { Message } from '@omnibus/core';

type Stream = NodeJS.WriteStream;

/** True when `stream` should get ANSI colours. */
export function colourEnabled(stream: Stream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

const CODES = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36 } as const;
export type Style = keyof typeof CODES;
export type Paint = (style: Style, text: string) => string;

export function painter(enabled: boolean): Paint {
  return enabled ? (style, text) => `\u001b[${CODES[style]}m${text}\u001b[0m` : (_style, text) => text;
}

/** A received message as one JSON-ready object: what `consume` prints on a pipe. */
export interface MessageRecord {
  readonly id: string;
  readonly destination: string;
  readonly subject?: string;
  readonly key?: string;
  readonly priority?: number;
  readonly position?: { readonly partition: number; readonly offset: number };
  readonly timestamp: string;
  readonly attempt: number;
  readonly redelivered: boolean;
  readonly contentType: string;
  readonly headers: Readonly<Record<string, string>>;
  /** JSON bodies parsed, text as a string, anything else base64 (then `encoding` says so). */
  readonly payload: unknown;
  readonly encoding?: 'base64';
}

export function messageRecord(message: Message<Uint8Array>): MessageRecord {
  const { payload, encoding } = decodeBody(message.contentType, message.body);
  return {
    id: message.id,
    destination: message.destination,
    ...(message.subject !== undefined ? { subject: message.subject } : {}),
    ...(message.key !== undefined ? { key: message.key } : {}),
    ...(message.priority !== undefined ? { priority: message.priority } : {}),
    ...(message.position !== undefined ? { position: message.position } : {}),
    timestamp: message.timestamp.toISOString(),
    attempt: message.attempt,
    redelivered: message.redelivered,
    contentType: message.contentType,
    headers: message.headers,
    payload,
    ...(encoding !== undefined ? { encoding } : {}),
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads a body by its content type without ever failing: a body that lies about its type prints as text or base64. */
export function decodeBody(contentType: string, body: Uint8Array): { payload: unknown; encoding?: 'base64' } {
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  let text: string | undefined;
  try {
    text = utf8.decode(body);
  } catch {
    text = undefined;
  }
  if (text !== undefined && (type === 'application/json' || type.endsWith('+json'))) {
    try {
      return { payload: JSON.parse(text) as unknown };
    } catch {
      return { payload: text };
    }
  }
  if (text !== undefined && (type.startsWith('text/') || type === '')) return { payload: text };
  return { payload: Buffer.from(body).toString('base64'), encoding: 'base64' };
}

/** The terminal layout: a header line (where it came from, when, id and the rest) and the payload. */
export function prettyMessage(record: MessageRecord, paint: Paint): string {
  const where = record.subject !== undefined ? `${record.destination} ${record.subject}` : record.destination;
  const meta = [
    `id=${record.id}`,
    record.key !== undefined ? `key=${record.key}` : '',
    record.priority !== undefined ? `priority=${record.priority}` : '',
    record.position !== undefined ? `at=${record.position.partition}:${record.position.offset}` : '',
    record.attempt > 1 ? `attempt=${record.attempt}` : '',
  ].filter((s) => s !== '');
  const lines = [
    `${paint('cyan', paint('bold', where))}  ${paint('dim', record.timestamp)}  ${paint('yellow', meta.join(' '))}`,
  ];
  return [...lines, ...bodyAndHeaders(record, paint)].join('\n');
}

/** A message's payload (indented, base64 said so) and its headers, as readable lines. */
export function bodyAndHeaders(
  record: {
    readonly payload: unknown;
    readonly encoding?: 'base64' | undefined;
    readonly contentType?: string | undefined;
    readonly headers: Readonly<Record<string, string>>;
  },
  paint: Paint,
): string[] {
  const body =
    typeof record.payload === 'string' && record.encoding === undefined
      ? record.payload
      : record.encoding === 'base64'
        ? `${paint('magenta', `(${record.contentType}, base64)`)} ${String(record.payload)}`
        : JSON.stringify(record.payload, null, 2);
  const lines = body.split('\n').map((line) => `  ${line}`);
  const headers = Object.entries(record.headers);
  if (headers.length > 0)
    lines.push(`  ${paint('dim', headers.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' '))}`);
  return lines;
}

/**
 * A progress bar on stderr for work of known size. A dozen lines instead of a dependency: it only
 * redraws one line with `\r`, at most ten times a second, and draws nothing unless stderr is a
 * terminal — so a pipe or a CI log never sees it.
 */
export class Progress {
  private done = 0;
  private lastDraw = 0;
  private readonly startedAt = Date.now();
  readonly active: boolean;

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly stream: Stream = process.stderr,
  ) {
    this.active = stream.isTTY === true && total > 1;
  }

  tick(n = 1): void {
    this.done += n;
    if (this.active && (Date.now() - this.lastDraw >= 100 || this.done === this.total)) this.draw();
  }

  /** Clears the bar's line so that what follows prints on a clean line. */
  finish(): void {
    if (this.active) this.stream.write('\r\u001b[K');
  }

  private draw(): void {
    this.lastDraw = Date.now();
    const width = 30;
    const ratio = this.total === 0 ? 1 : this.done / this.total;
    const filled = Math.round(ratio * width);
    const seconds = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    const rate = Math.round(this.done / seconds);
    this.stream.write(
      `\r\u001b[K${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(ratio * 100)}% ${this.done}/${this.total} ${rate}/s`,
    );
  }
}
