/** Where `send`, `publish` and `append` take their payloads from, and how each is encoded. */
import { readFile } from 'node:fs/promises';
import { CliError, EXIT } from './exit.js';

export type CodecChoice = 'auto' | 'json' | 'text' | 'bytes';

/** One payload with the codec that sends it: JSON values as application/json, the rest as text or bytes. */
export type Payload =
  | { readonly codec: 'json'; readonly value: unknown }
  | { readonly codec: 'text'; readonly value: string }
  | { readonly codec: 'bytes'; readonly value: Uint8Array };

export interface PayloadFlags {
  readonly file?: string;
  readonly lines?: boolean;
  readonly codec: CodecChoice;
}

/**
 * The payloads, in order: the argument, else `--file`, else stdin (`-` as the argument is stdin too).
 * With `--lines`, every non-empty line is one message; without, the whole input is one.
 */
export async function readPayloads(argument: string | undefined, flags: PayloadFlags): Promise<Payload[]> {
  if (argument !== undefined && argument !== '-' && flags.file !== undefined)
    throw new CliError('give the payload as an argument or with --file, not both', EXIT.usage);
  let raw: Buffer;
  if (argument !== undefined && argument !== '-') raw = Buffer.from(argument, 'utf8');
  else if (flags.file !== undefined) raw = await readFile(flags.file);
  else {
    if (process.stdin.isTTY === true)
      throw new CliError('no payload: give it as an argument, with --file, or on stdin', EXIT.usage);
    raw = await readStdin();
  }
  if (flags.lines !== true) return [toPayload(raw, flags.codec)];
  if (flags.codec === 'bytes')
    throw new CliError('--lines sends text lines: not with --codec bytes', EXIT.usage);
  return raw
    .toString('utf8')
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim() !== '')
    .map((line) => toPayload(Buffer.from(line, 'utf8'), flags.codec));
}

function toPayload(raw: Buffer, codec: CodecChoice): Payload {
  if (codec === 'bytes') return { codec, value: new Uint8Array(raw) };
  const text = raw.toString('utf8');
  if (codec === 'text') return { codec, value: text };
  try {
    return { codec: 'json', value: JSON.parse(text) as unknown };
  } catch (error) {
    if (codec === 'json')
      throw new CliError(
        `the payload is not JSON (${(error as Error).message}); use --codec text to send it as text`,
        EXIT.usage,
      );
    return { codec: 'text', value: text };
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
