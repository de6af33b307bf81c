// The rig's own pieces: the cleanup stack, the dump parser, and the single wireguard-go peer that a node in
// this process (root namespace) will talk to over a veth.
import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, exec } from './rig/exec.js';
import { linkExists, netnsList, sweepLeftovers } from './rig/netns.js';
import { startWireguardGoPeer, type WireguardGoPeer } from './rig/pair.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';
import { generateKeyPair, parseWgDump } from './rig/wireguard-go.js';

describe('rig basics', () => {
  it('Cleanup runs steps in reverse and goes on past failures', async () => {
    const cleanup = new Cleanup();
    const order: string[] = [];
    cleanup.add('first', () => order.push('first'));
    cleanup.add('fails', () => {
      throw new Error('boom');
    });
    cleanup.add('last', async () => {
      order.push('last');
    });
    const errors = await cleanup.run();
    expect(order).toEqual(['last', 'first']);
    expect(errors.map((e) => e.message)).toEqual(['cleanup "fails": boom']);
    expect(cleanup.size).toBe(0);
  });

  it('parses `wg show <if> dump`', () => {
    const dump = [
      'cPriv=\tIPub=\t51820\toff',
      'PeerA=\t(none)\t10.98.1.2:51820\t10.200.1.2/32,fd00:200::2/128\t1795608589\t636\t692\toff',
      'PeerB=\t(none)\t(none)\t(none)\t0\t0\t0\t25',
    ].join('\n');
    expect(parseWgDump(`${dump}\n`)).toEqual({
      publicKey: 'IPub=',
      listenPort: 51820,
      peers: [
        {
          publicKey: 'PeerA=',
          hasPresharedKey: false,
          endpoint: '10.98.1.2:51820',
          allowedIps: ['10.200.1.2/32', 'fd00:200::2/128'],
          latestHandshake: 1795608589,
          rx: 636,
          tx: 692,
          persistentKeepalive: null,
        },
        {
          publicKey: 'PeerB=',
          hasPresharedKey: false,
          endpoint: null,
          allowedIps: [],
          latestHandshake: 0,
          rx: 0,
          tx: 0,
          persistentKeepalive: 25,
        },
      ],
    });
  });
});

const missing = checkRequirements(['root', 'netns', 'tun', 'wireguard-go', 'wg', 'ip', 'ping']);

skipUnless(missing)('a single wireguard-go peer reached from the root namespace', () => {
  let peer: WireguardGoPeer | undefined;
  let ourPublicKey = '';
  // Stands in for our node: a UDP socket in the root namespace that wireguard-go sends to.
  let sock: Socket | undefined;
  let firstDatagram: Promise<{ msg: Buffer; from: string }> | undefined;
  const get = (): WireguardGoPeer => {
    if (peer === undefined) throw new Error('peer not started');
    return peer;
  };

  beforeAll(async () => {
    await sweepLeftovers();
    ourPublicKey = (await generateKeyPair()).publicKey;
    // Bound before the peer starts, so its first handshake initiation is not lost to a closed port (a retry
    // would come 5 s later). Only the test's own veth can deliver to it.
    const udp = createSocket('udp4');
    sock = udp;
    firstDatagram = new Promise((resolve) =>
      udp.once('message', (msg, r) => resolve({ msg, from: r.address })),
    );
    await new Promise<void>((resolve) => udp.bind(0, '0.0.0.0', resolve));
    peer = await startWireguardGoPeer({
      peer: { publicKey: ourPublicKey, port: udp.address().port },
      persistentKeepalive: 1,
    });
  });

  afterAll(async () => {
    sock?.close();
    const p = peer;
    if (p === undefined) return;
    expect((await p.close()).map((e) => e.message)).toEqual([]);
    expect(await linkExists(null, p.hostVeth)).toBe(false);
    expect((await netnsList()).includes(p.ns)).toBe(false);
    expect(existsSync(p.wg.uapiPath)).toBe(false);
  });

  it('the underlay answers from the root namespace', async () => {
    const p = get();
    expect(p.hostAddress).toMatch(/^10\.98\.\d+\.\d+$/);
    await exec('ping', ['-c', '1', '-W', '2', p.underlay]);
  });

  it('wireguard-go knows our key, our endpoint and our inner addresses', async () => {
    const p = get();
    const status = await p.wg.show();
    expect(status.publicKey).toBe(p.keys.publicKey);
    expect(status.listenPort).toBe(51820);
    expect(status.peers).toHaveLength(1);
    expect(status.peers[0]).toMatchObject({
      publicKey: ourPublicKey,
      endpoint: `${p.hostAddress}:${sock!.address().port}`,
      allowedIps: [`${p.hostInner4}/32`, `${p.hostInner6}/128`],
      persistentKeepalive: 1,
      latestHandshake: 0,
    });
  });

  it('tries to reach us: its handshake initiation arrives from its underlay address', async () => {
    const p = get();
    const { msg, from } = await firstDatagram!;
    expect(from).toBe(p.underlay);
    expect(msg.length).toBe(148);
    expect(msg[0]).toBe(1);
  });
});
