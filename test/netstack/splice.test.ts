// splice: what a port forwarder needs of it — bytes both ways, an end passed on as a half-close,
// and a side that dies (an error, or an abort with no error event, as a TCP endpoint's close
// gives) taking the other down, so that nothing waits on a connection whose peer is gone.
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { splice } from '../../src/netstack/splice.js';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/**
 * Two connected loopback sockets: [client end, server end]. Half-open ones take an end as a
 * half-close; the others close fully once they read an end.
 */
async function socketPair(allowHalfOpen = false): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // Both events are awaited together: Bun and Deno may emit 'connect' before 'connection'.
  const accepted = once(server, 'connection');
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen });
  const [[peer]] = (await Promise.all([accepted, once(client, 'connect')])) as [[net.Socket], unknown];
  return [client, peer];
}

describe('splice', () => {
  it('carries bytes both ways and passes an end on as a half-close', async () => {
    const [outerA, a] = await socketPair(true);
    const [b, outerB] = await socketPair(true);
    const done = new Promise((r) => splice(a, b, r));
    outerA.write('to b');
    expect(String((await once(outerB, 'data'))[0])).toBe('to b');
    outerB.write('to a');
    expect(String((await once(outerA, 'data'))[0])).toBe('to a');
    outerA.end();
    await once(outerB, 'end');
    // A's side is half-closed: B can still send to it.
    const late = once(outerA, 'data');
    outerB.write('after end');
    expect(String((await late)[0])).toBe('after end');
    const ended = once(outerA, 'end');
    outerB.end();
    await ended;
    expect(await done).toMatchObject({ aToB: 4, bToA: 13, error: undefined });
  });

  it('a side destroyed with no error takes the other down', async () => {
    const [outerA, a] = await socketPair();
    const [b] = await socketPair();
    splice(a, b);
    b.destroy(); // as a tailnet socket whose endpoint closed: 'close', no 'end', no 'error'
    await once(outerA, 'close');
    if (!a.destroyed) await once(a, 'close'); // Bun passes the abort on as an end first
    expect(a.destroyed).toBe(true);
  });

  it('an error on one side tears both down and is reported', async () => {
    const [, a] = await socketPair();
    const [b] = await socketPair();
    const done = new Promise<{ error?: string }>((r) => splice(a, b, r));
    b.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    expect((await done).error).toBe('ECONNRESET');
    expect(a.destroyed).toBe(true);
  });
});
