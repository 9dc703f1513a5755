#!/usr/bin/env node
// Protocol-level readiness probe for scripts/brokers.sh. Dependency-free (node:net only), so it
// runs before `pnpm install`. It speaks just enough of each protocol to know the broker answers:
//
//   amqp   HOST PORT                 AMQP 0-9-1 protocol header -> Connection.Start
//   mqtt   HOST PORT [USER PASS]     MQTT 3.1.1 CONNECT -> CONNACK (return code 0), DISCONNECT
//   stomp  HOST PORT [LOGIN PASS]    STOMP 1.2 CONNECT -> CONNECTED, DISCONNECT
//   stream HOST PORT                 RabbitMQ stream protocol PeerProperties -> response code OK
//   kafka  HOST PORT [MIN_BROKERS [groups]]
//                                    Kafka ApiVersions v0 -> error 0, then Metadata v4 -> at
//                                    least MIN_BROKERS brokers and a controller; with `groups`,
//                                    FindCoordinator v1 -> a group coordinator
//   kafka-apis HOST PORT             Kafka ApiVersions v0 only (what a SASL listener answers
//                                    before authentication)
//
// With PROBE_CA=FILE the probe speaks TLS, trusting only the CA certificates in FILE and checking
// the host name (or IP address) against the broker's certificate.
// Prints one line describing what answered and exits 0, or prints the reason and exits 1.
// PROBE_TIMEOUT_MS (default 3000) bounds each attempt; brokers.sh does the retrying.

import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const timeoutMs = Number(process.env.PROBE_TIMEOUT_MS ?? 3000);
const caFile = process.env.PROBE_CA;

/** Opens a socket, runs `talk`, and resolves with its result; rejects on error or timeout. */
function session(host, port, talk) {
  return new Promise((resolve, reject) => {
    const socket = caFile
      ? tls.connect({ host, port, ca: readFileSync(caFile), ...(net.isIP(host) ? {} : { servername: host }) })
      : net.connect({ host, port });
    let buffered = Buffer.alloc(0);
    let waiter = null;
    const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const done = (value) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    function fail(err) {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    // The one pending read: `want` says how many bytes it takes from the buffer, or -1 for "not yet".
    const check = () => {
      if (!waiter) return;
      const n = waiter.want(buffered);
      if (n < 0) return;
      const wake = waiter.resolve;
      waiter = null;
      const chunk = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      wake(chunk);
    };
    const take = (want) =>
      new Promise((wake) => {
        waiter = { want, resolve: wake };
        check();
      });
    const io = {
      write: (data) => socket.write(data),
      /** Resolves with exactly n bytes. */
      read: (n) => take((buf) => (buf.length >= n ? n : -1)),
      /** Resolves with everything up to and including the byte `terminator`. */
      readUntil: (terminator) =>
        take((buf) => {
          const at = buf.indexOf(terminator);
          return at >= 0 ? at + 1 : -1;
        }),
    };
    socket.on('data', (data) => {
      buffered = Buffer.concat([buffered, data]);
      check();
    });
    socket.on('error', (err) => fail(err));
    socket.on('close', () => fail(new Error('connection closed by the server')));
    socket.on(caFile ? 'secureConnect' : 'connect', () => {
      talk(io).then(done, fail);
    });
  });
}

function shortString(buf, key) {
  // Finds `key` as an AMQP field-table entry of type 'S' (long string) and returns its value.
  const needle = Buffer.concat([Buffer.from([key.length]), Buffer.from(key), Buffer.from('S')]);
  const at = buf.indexOf(needle);
  if (at < 0) return undefined;
  const len = buf.readUInt32BE(at + needle.length);
  return buf.subarray(at + needle.length + 4, at + needle.length + 4 + len).toString('utf8');
}

async function amqp(io) {
  io.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
  const header = await io.read(7);
  if (header[0] !== 1)
    throw new Error(`expected a method frame, got ${header.subarray(0, 8).toString('latin1')}`);
  const size = header.readUInt32BE(3);
  const payload = await io.read(size + 1);
  const classId = payload.readUInt16BE(0);
  const methodId = payload.readUInt16BE(2);
  if (classId !== 10 || methodId !== 10)
    throw new Error(`expected Connection.Start, got ${classId}.${methodId}`);
  return `${shortString(payload, 'product') ?? 'AMQP broker'} ${shortString(payload, 'version') ?? ''}`.trim();
}

function mqttString(s) {
  const b = Buffer.from(s);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

async function mqtt(io, user, pass) {
  const login = user === undefined ? [] : [mqttString(user), mqttString(pass ?? '')];
  const body = Buffer.concat([
    mqttString('MQTT'),
    // level 4 (3.1.1), clean session (+ user name and password flags), keepalive 30 s
    Buffer.from([4, user === undefined ? 0x02 : 0xc2, 0, 30]),
    mqttString(`omnibus-probe-${process.pid}-${Date.now()}`),
    ...login,
  ]);
  io.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
  const ack = await io.read(4);
  if (ack[0] !== 0x20) throw new Error(`expected CONNACK, got packet type 0x${ack[0].toString(16)}`);
  if (ack[3] !== 0) throw new Error(`CONNACK return code ${ack[3]}`);
  io.write(Buffer.from([0xe0, 0]));
  return 'CONNACK 0 (MQTT 3.1.1)';
}

async function stomp(io, login = 'guest', passcode = 'guest') {
  io.write(`CONNECT\naccept-version:1.2\nhost:/\nlogin:${login}\npasscode:${passcode}\nheart-beat:0,0\n\n\0`);
  const frame = (await io.readUntil(0)).toString('utf8').replace(/^\n+/, '');
  const [command, ...lines] = frame.split('\n');
  if (command !== 'CONNECTED') {
    const message = lines.find((l) => l.startsWith('message:')) ?? '';
    throw new Error(`expected CONNECTED, got ${command} ${message}`.trim());
  }
  io.write('DISCONNECT\n\n\0');
  const server = lines.find((l) => l.startsWith('server:'))?.slice(7) ?? 'unknown server';
  const version = lines.find((l) => l.startsWith('version:'))?.slice(8) ?? '?';
  return `CONNECTED ${server} (STOMP ${version})`;
}

async function stream(io) {
  // PeerProperties (key 0x0011, version 1, correlation 1, empty map).
  const frame = Buffer.alloc(4 + 2 + 2 + 4 + 4);
  frame.writeUInt32BE(frame.length - 4, 0);
  frame.writeUInt16BE(0x0011, 4);
  frame.writeUInt16BE(1, 6);
  frame.writeUInt32BE(1, 8);
  frame.writeInt32BE(0, 12);
  io.write(frame);
  const size = (await io.read(4)).readUInt32BE(0);
  const body = await io.read(size);
  const key = body.readUInt16BE(0);
  const code = body.readUInt16BE(8);
  if (key !== 0x8011) throw new Error(`expected a PeerProperties response, got key 0x${key.toString(16)}`);
  if (code !== 1) throw new Error(`PeerProperties response code ${code}`);
  return 'PeerProperties OK (RabbitMQ stream protocol)';
}

function kafkaRequest(apiKey, apiVersion, correlationId, body) {
  const clientId = Buffer.from('omnibus-probe');
  const header = Buffer.alloc(2 + 2 + 4 + 2);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(apiVersion, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(clientId.length, 8);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length + clientId.length + body.length);
  return Buffer.concat([size, header, clientId, body]);
}

async function kafkaResponse(io) {
  const size = (await io.read(4)).readInt32BE(0);
  return io.read(size);
}

async function kafka(io, minBrokers = '1', withGroups = '') {
  io.write(kafkaRequest(18, 0, 1, Buffer.alloc(0)));
  const versions = await kafkaResponse(io);
  const error = versions.readInt16BE(4);
  if (error !== 0) throw new Error(`ApiVersions error code ${error}`);
  const count = versions.readInt32BE(6);
  let metadataRange = null;
  for (let i = 0; i < count; i++) {
    const at = 10 + i * 6;
    if (versions.readInt16BE(at) === 3)
      metadataRange = [versions.readInt16BE(at + 2), versions.readInt16BE(at + 4)];
  }
  if (!metadataRange || metadataRange[0] > 4 || metadataRange[1] < 4) {
    throw new Error(`broker does not offer Metadata v4 (offers ${metadataRange?.join('-') ?? 'none'})`);
  }
  // Metadata v4: topics = null (all), allow_auto_topic_creation = false.
  const body = Buffer.alloc(5);
  body.writeInt32BE(-1, 0);
  body.writeInt8(0, 4);
  io.write(kafkaRequest(3, 4, 2, body));
  const meta = await kafkaResponse(io);
  let at = 4 + 4; // correlation id, throttle_time_ms
  const brokers = meta.readInt32BE(at);
  at += 4;
  for (let i = 0; i < brokers; i++) {
    at += 4; // node_id
    at += 2 + meta.readInt16BE(at); // host
    at += 4; // port
    const rack = meta.readInt16BE(at);
    at += 2 + Math.max(rack, 0);
  }
  const clusterIdLen = meta.readInt16BE(at);
  const clusterId = clusterIdLen >= 0 ? meta.subarray(at + 2, at + 2 + clusterIdLen).toString() : null;
  at += 2 + Math.max(clusterIdLen, 0);
  const controller = meta.readInt32BE(at);
  if (brokers < Number(minBrokers))
    throw new Error(`metadata lists ${brokers} broker(s), want ${minBrokers}`);
  if (controller < 0) throw new Error('metadata names no controller yet');
  let groups = '';
  if (withGroups === 'groups') {
    // FindCoordinator v1 for a group: makes the broker create __consumer_offsets, and answers
    // error 0 once a coordinator is there, so the first test's consumer group doesn't wait.
    const key = Buffer.from('omnibus-probe');
    const request = Buffer.alloc(2 + key.length + 1);
    request.writeInt16BE(key.length, 0);
    key.copy(request, 2);
    request.writeInt8(0, 2 + key.length);
    io.write(kafkaRequest(10, 1, 3, request));
    const found = await kafkaResponse(io);
    const code = found.readInt16BE(8);
    if (code !== 0) throw new Error(`FindCoordinator error code ${code} (group coordinator not ready)`);
    groups = ', group coordinator ready';
  }
  return `ApiVersions ok (${count} APIs), ${brokers} broker(s), cluster ${clusterId}${groups}`;
}

async function kafkaApis(io) {
  io.write(kafkaRequest(18, 0, 1, Buffer.alloc(0)));
  const versions = await kafkaResponse(io);
  const error = versions.readInt16BE(4);
  if (error !== 0) throw new Error(`ApiVersions error code ${error}`);
  return `ApiVersions ok (${versions.readInt32BE(6)} APIs)`;
}

const protocols = { amqp, mqtt, stomp, stream, kafka, 'kafka-apis': kafkaApis };
const [proto, host, port, ...rest] = process.argv.slice(2);
const talk = protocols[proto];
if (!talk || !host || !port) {
  console.error(`usage: broker-probe.mjs ${Object.keys(protocols).join('|')} HOST PORT [ARGS]`);
  process.exit(2);
}
try {
  const detail = await session(host, Number(port), (io) => talk(io, ...rest));
  console.log(detail);
} catch (err) {
  const code = err instanceof Error ? err.code : undefined;
  console.log(
    `${err instanceof Error ? err.message : String(err)}${code && !String(err).includes(code) ? ` (${code})` : ''}`,
  );
  process.exitCode = 1;
}
