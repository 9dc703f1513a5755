import { describeError, ValidationError } from './errors.js';

/** Turns payloads into bytes and back. */
export interface Codec<T = unknown> {
  readonly name: string;
  /** Travels as the message content type where the broker has one. */
  readonly contentType: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export type CodecName = 'json' | 'text' | 'bytes';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export const jsonCodec: Codec<unknown> = {
  name: 'json',
  contentType: 'application/json',
  encode(value) {
    const text = JSON.stringify(value);
    // JSON.stringify returns undefined for undefined, functions and symbols: nothing to send.
    if (text === undefined) throw new TypeError(`${typeof value} is not JSON`);
    return encoder.encode(text);
  },
  decode(bytes) {
    return JSON.parse(decoder.decode(bytes)) as unknown;
  },
};

export const textCodec: Codec<string> = {
  name: 'text',
  contentType: 'text/plain; charset=utf-8',
  encode(value) {
    if (typeof value !== 'string') throw new TypeError(`expected a string, got ${typeof value}`);
    return encoder.encode(value);
  },
  decode(bytes) {
    return decoder.decode(bytes);
  },
};

export const bytesCodec: Codec<Uint8Array> = {
  name: 'bytes',
  contentType: 'application/octet-stream',
  encode(value) {
    if (!(value instanceof Uint8Array)) throw new TypeError(`expected a Uint8Array, got ${typeof value}`);
    return value;
  },
  decode(bytes) {
    return bytes;
  },
};

const CODECS: Record<CodecName, Codec<unknown>> = {
  json: jsonCodec,
  text: textCodec as Codec<unknown>,
  bytes: bytesCodec as Codec<unknown>,
};

export function resolveCodec<T>(codec: CodecName | Codec<T> | undefined): Codec<T> {
  if (codec === undefined) return jsonCodec as Codec<T>;
  if (typeof codec !== 'string') return codec;
  const found = CODECS[codec];
  if (found === undefined) {
    throw new ValidationError(`unknown codec "${String(codec)}"`, [
      `use one of ${Object.keys(CODECS).join(', ')}`,
    ]);
  }
  return found as Codec<T>;
}

/** Encodes or throws a `ValidationError` that says why the payload cannot be encoded. */
export function encodePayload<T>(codec: Codec<T>, value: T, destination: string): Uint8Array {
  try {
    return codec.encode(value);
  } catch (error) {
    throw new ValidationError(
      `payload for "${destination}" cannot be encoded as ${codec.name}`,
      [describeError(error)],
      { cause: error },
    );
  }
}
