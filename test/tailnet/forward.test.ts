// tn.forward (a loopback listener that dials the tailnet, for programs outside the process): the
// node's close ends the connections it carries instead of waiting for their clients, as a client
// that keeps its side open after the server's FIN (allowHalfOpen, as TLS sockets do) would have it.
import { once } from 'node:events';
import net from 'node:net';
import { expect, it } from 'vitest';
import { twoNodes } from './net/helpers.js';

it("the node's close() ends a forward's open connections and returns", async () => {
  const t = await twoNodes();
  try {
    await t.b.listen(
      7000,
      net.createServer((s) => s.end('bye')),
    );
    const fwd = await t.a.forward(0, 'bravo', 7000);
    const port = (fwd.address() as net.AddressInfo).port;
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => {});
    client.resume();
    await once(client, 'end'); // the server's FIN; the client's side stays open
    const closing = t.a.close();
    const late = new Promise((r) => setTimeout(() => r('still waiting after 5 s'), 5000));
    expect(await Promise.race([closing.then(() => 'closed'), late])).toBe('closed');
    expect(fwd.listening).toBe(false);
    client.destroy();
  } finally {
    await t.close();
  }
});
