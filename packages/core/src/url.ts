/**
 * Broker URLs: `scheme://[user[:password]@]host[:port][,host[:port]…][/path][?query]`.
 * WHATWG `URL` cannot hold several hosts (Kafka and RabbitMQ clusters), so this parser can.
 */
import { ConfigError } from './errors.js';

export interface HostPort {
  readonly host: string;
  readonly port: number | undefined;
}

export interface ParsedUrl {
  /** Lower-case scheme without `:`, e.g. `amqps`, `stomp+ssl`. */
  readonly scheme: string;
  readonly username: string | undefined;
  /** Never log or print: use `redacted`. */
  readonly password: string | undefined;
  readonly hosts: readonly HostPort[];
  /** Decoded path without the leading `/` (e.g. a RabbitMQ vhost), `''` when absent. */
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  /** The URL with the password replaced by `***`, safe for errors and logs. */
  readonly redacted: string;
  /** Same as `redacted`, so a template string never leaks the password. */
  toString(): string;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i;

export function parseUrl(input: string): ParsedUrl {
  const redactedInput = redactUrl(input);
  const match = SCHEME.exec(input.trim());
  if (match === null) {
    throw new ConfigError(
      `"${redactedInput}" is not a broker URL; expected scheme://host[:port], e.g. amqp://localhost`,
    );
  }
  const scheme = match[1]!.toLowerCase();
  let rest = match[2]!;

  const hashAt = rest.indexOf('#');
  if (hashAt >= 0) rest = rest.slice(0, hashAt);
  let query = '';
  const queryAt = rest.indexOf('?');
  if (queryAt >= 0) {
    query = rest.slice(queryAt + 1);
    rest = rest.slice(0, queryAt);
  }
  let path = '';
  const slashAt = rest.indexOf('/');
  if (slashAt >= 0) {
    path = rest.slice(slashAt + 1);
    rest = rest.slice(0, slashAt);
  }
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    username = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo, 'username', redactedInput);
    password = colon >= 0 ? decode(userinfo.slice(colon + 1), 'password', redactedInput) : undefined;
  }

  const issues: string[] = [];
  const hosts: HostPort[] = [];
  if (rest !== '') {
    for (const part of rest.split(',')) {
      const host = parseHost(part);
      if (typeof host === 'string') issues.push(`${host} in "${redactedInput}"`);
      else hosts.push(host);
    }
  }
  const params: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(query)) params[key] = value;
  if (issues.length > 0) throw new ConfigError(issues);

  const redacted = redactUrl(input.trim());
  return {
    scheme,
    username,
    password,
    hosts,
    path: decode(path, 'path', redactedInput),
    params,
    redacted,
    toString: () => redacted,
  };
}

/** Replaces the password in anything that looks like a URL with userinfo, and password-like query values. */
export function redactUrl(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/?#\s]*@/gi, '$1:***@')
    .replace(
      /([?&](?:password|passcode|pass|pwd|secret|token|sasl\.password|apikey|api_key)=)[^&#\s]*/gi,
      '$1***',
    );
}

function parseHost(part: string): HostPort | string {
  if (part === '') return 'an empty host';
  let host = part;
  let portText: string | undefined;
  if (part.startsWith('[')) {
    const end = part.indexOf(']');
    if (end < 0) return `an unterminated IPv6 address "${part}"`;
    host = part.slice(1, end);
    const after = part.slice(end + 1);
    if (after.startsWith(':')) portText = after.slice(1);
    else if (after !== '') return `unexpected "${after}" after "${host}"`;
  } else {
    const colon = part.lastIndexOf(':');
    if (colon >= 0) {
      host = part.slice(0, colon);
      portText = part.slice(colon + 1);
    }
  }
  if (host === '') return `a port without a host ("${part}")`;
  if (!/^[A-Za-z0-9._~%:-]+$/.test(host)) return `an invalid host "${host}"`;
  if (portText === undefined) return { host, port: undefined };
  const port = Number(portText);
  if (portText === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return `an invalid port "${portText}" for host "${host}" (1–65535)`;
  }
  return { host, port };
}

function decode(text: string, what: string, redacted: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ConfigError(`the ${what} in "${redacted}" is not valid percent-encoding`);
  }
}
