// Small promise wrappers over stompit's callback API, for the raw STOMP tests.
import stompit from 'stompit';

export interface StompConnection {
  readonly client: stompit.Client;
  /** Headers of the CONNECTED frame (server, version, ...). */
  readonly headers: Record<string, string>;
}

/** Connects to stomp://login:passcode@host:port (vhost "/" for RabbitMQ, no heart-beats). */
export function stompConnect(url: string): Promise<StompConnection> {
  const parsed = new URL(url);
  return new Promise((resolve, reject) => {
    const client = stompit.connect(
      {
        host: parsed.hostname,
        port: Number(parsed.port || 61613),
        connectHeaders: {
          host: '/',
          login: decodeURIComponent(parsed.username),
          passcode: decodeURIComponent(parsed.password),
          'heart-beat': '0,0',
        },
      },
      (err, connected) => {
        if (err) reject(err);
        else resolve({ client: connected, headers: connectedHeaders(connected) });
      },
    );
    client.on('error', reject);
  });
}

function connectedHeaders(client: stompit.Client): Record<string, string> {
  // stompit keeps the CONNECTED frame's headers on the client (not in its typings).
  const headers = (client as unknown as { headers?: Record<string, string> }).headers;
  return headers ?? {};
}

export function stompDisconnect(client: stompit.Client): Promise<void> {
  return new Promise((resolve) => {
    client.disconnect(() => resolve());
  });
}

/** SEND with a receipt: resolves once the broker has the message. */
export function stompSend(
  client: stompit.Client,
  headers: Record<string, string>,
  body: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const frame = client.send(headers, { onReceipt: () => resolve(), onError: reject });
    frame.end(body);
  });
}

export interface StompMessage {
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly raw: stompit.Client.Message;
}

export interface StompSubscription {
  /** The next message, in arrival order. */
  next(timeoutMs?: number): Promise<StompMessage>;
  unsubscribe(): void;
}

/** SUBSCRIBE with client-individual acks; messages queue up until `next()` takes them. */
export function stompSubscribe(client: stompit.Client, headers: Record<string, string>): StompSubscription {
  const arrived: StompMessage[] = [];
  const waiting: Array<{ resolve: (m: StompMessage) => void; reject: (e: Error) => void }> = [];
  let failure: Error | undefined;
  const subscription = client.subscribe({ ack: 'client-individual', ...headers }, (err, message) => {
    if (err) {
      failure = err;
      for (const w of waiting.splice(0)) w.reject(err);
      return;
    }
    message.readString('utf-8', (readErr, body) => {
      if (readErr || body === undefined) {
        failure = readErr ?? new Error('empty STOMP body');
        for (const w of waiting.splice(0)) w.reject(failure);
        return;
      }
      const received: StompMessage = {
        // stompit's typings leave out the headers of a MESSAGE frame.
        headers: (message as unknown as { headers: Record<string, string> }).headers,
        body,
        raw: message,
      };
      const waiter = waiting.shift();
      if (waiter) waiter.resolve(received);
      else arrived.push(received);
    });
  });
  return {
    next(timeoutMs = 10_000) {
      const ready = arrived.shift();
      if (ready) return Promise.resolve(ready);
      if (failure) return Promise.reject(failure);
      return new Promise<StompMessage>((resolve, reject) => {
        const entry = {
          resolve: (m: StompMessage) => {
            clearTimeout(timer);
            resolve(m);
          },
          reject: (e: Error) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(entry), 1);
          reject(new Error(`no STOMP message within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.push(entry);
      });
    },
    unsubscribe: () => subscription.unsubscribe(),
  };
}
