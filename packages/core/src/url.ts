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
    // Without `scheme://` redactUrl cannot tell where a password is: show nothing before an `@`.
    const at = input.lastIndexOf('@');
    const shown = at >= 0 ? `***${input.slice(at)}` : input;
    throw new ConfigError(
      `"${shown}" is not a broker URL; expected scheme://host[:port], e.g. amqp://localhost`,
    );
  }
  const scheme = match[1]!.toLowerCase();
  let rest = match[2]!;
  // An `@` after the host is almost always a password with an unencoded `/`, `?` or `#`: parsed
  // as written, pieces of the password would become the host, port, path or query (and be echoed).
  const authorityEnd = rest.search(/[/?#]/);
  if (authorityEnd >= 0 && rest.indexOf('@', authorityEnd) >= 0) {
    throw new ConfigError(
      `cannot tell the host of "${redactedInput}": it has an "@" after "/", "?" or "#". Percent-encode special characters in a password, path or query value (encodeURIComponent: "/" is %2F, "?" %3F, "#" %23, "@" %40)`,
    );
  }

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

/**
 * Hides the secret part of every URL in `text`: a whole URL, or URLs inside a message. It works on
 * the raw characters, not on a parse, so it holds for URLs that do not parse: a password with
 * unencoded `/ ? # @ : %`, spaces and the like (common in generated secrets) ends at the LAST `@`
 * after `scheme://` (on the same line, inside a message), and everything before that `@` is
 * replaced: `amqp://user:***@host` when the user name is plain, `amqp://***@host` otherwise.
 * When in doubt it hides too much (an `@` in a path or query hides the host), never too little.
 * Password-like query values (`?password=…`, `?token=…`) are replaced as well.
 */
export function redactUrl(text: string): string {
  const whole = URL_START_AT_BEGINNING.test(text.trim());
  const redacted = whole ? redactUserinfo(text) : text.split('\n').map(redactUserinfo).join('\n');
  return redacted.replace(SECRET_PARAM, '$1***');
}

const URL_START_AT_BEGINNING = /^[a-z][a-z0-9+.-]*:\/\//i;
const URL_START = /[a-z][a-z0-9+.-]*:\/\//i;
/** Characters a user name may hold unencoded (RFC 3986 unreserved, sub-delims, `%`). */
const PLAIN_USER = /^[A-Za-z0-9._~!$&'()*+,;=%-]*$/;
const SECRET_PARAM =
  /([?&](?:password|passcode|pass|pwd|secret|token|sasl\.password|apikey|api_key)=)[^&#\s]*/gi;

/** From the first `scheme://` in `text` to the last `@` after it: that is the userinfo, or more. */
function redactUserinfo(text: string): string {
  const start = URL_START.exec(text);
  if (start === null) return text;
  const from = start.index + start[0].length;
  const at = text.lastIndexOf('@');
  if (at < from) return text;
  const userinfo = text.slice(from, at);
  const colon = userinfo.indexOf(':');
  const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
  const kept = !PLAIN_USER.test(user) ? '***' : colon >= 0 ? `${user}:***` : user;
  return `${text.slice(0, from)}${kept}${text.slice(at)}`;
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
