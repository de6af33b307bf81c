import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  formatConfig,
  parseConfig,
  readConfig,
  type WgConfig,
} from '../../src/wireguard/config.js';
import { generatePrivateKey, keyToBase64, publicKeyFromPrivate } from '../../src/wireguard/keys.js';

const privKey = generatePrivateKey();
const priv = keyToBase64(privKey);
const psk = keyToBase64(generatePrivateKey());
const peerA = keyToBase64(publicKeyFromPrivate(generatePrivateKey()));
const peerB = keyToBase64(publicKeyFromPrivate(generatePrivateKey()));
const secrets = [priv, psk];

/** Parse `text` as wg0.conf and check the error's location, its words, and that it leaks no secret. */
function expectError(text: string, line: number, words: RegExp): ConfigError {
  let err: unknown;
  try {
    parseConfig(text, 'wg0.conf');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const e = err as ConfigError;
  expect(e.code).toBe('BAD_CONFIG');
  expect(e.file).toBe('wg0.conf');
  expect(e.line).toBe(line);
  expect(e.message.startsWith(line > 0 ? `wg0.conf:${line}: ` : 'wg0.conf: ')).toBe(true);
  expect(e.message).toMatch(words);
  for (const s of secrets) {
    for (let i = 0; i + 8 <= s.length; i++) expect(e.message).not.toContain(s.slice(i, i + 8));
  }
  return e;
}

const iface = `[Interface]\nPrivateKey = ${priv}\n`;

describe('parseConfig', () => {
  it('reads a full wg-quick file: comments, case, spacing, lists, CRLF and a BOM', () => {
    const text = [
      '\uFEFF# wg0',
      '[interface]',
      `privatekey=${priv}   # trailing comment`,
      'ListenPort = 51820',
      'Address = 10.0.0.2/24, fd00::2',
      'address = 10.0.1.2',
      '  MTU   =   1380  ',
      '',
      '[Peer]',
      `PublicKey = ${peerA}`,
      `PresharedKey = ${psk}`,
      'Endpoint = [FD00::0:1]:51820',
      'AllowedIPs = 10.0.0.0/24, fd00::/64',
      'AllowedIPs = 192.168.7.0/24',
      'PersistentKeepalive = 25',
      '[PEER]',
      `PublicKey = ${peerB}`,
      'Endpoint = vpn.example.com:4500',
      'PersistentKeepalive = off',
      '[Peer]',
      `PublicKey = ${keyToBase64(publicKeyFromPrivate(privKey))}`,
      'Endpoint = 192.0.2.1:1',
      'AllowedIPs =',
      'PersistentKeepalive = 0',
    ].join('\r\n');
    const cfg = parseConfig(text, 'wg0.conf');
    expect(cfg.interface.privateKey).toEqual(privKey);
    expect(cfg.interface.listenPort).toBe(51820);
    expect(cfg.interface.mtu).toBe(1380);
    expect(cfg.interface.addresses).toEqual([
      { address: '10.0.0.2', prefix: 24, family: 4 },
      { address: 'fd00::2', prefix: 128, family: 6 },
      { address: '10.0.1.2', prefix: 32, family: 4 },
    ]);
    expect(cfg.peers).toHaveLength(3);
    const [a, b, c] = cfg.peers as [WgConfig['peers'][0], WgConfig['peers'][0], WgConfig['peers'][0]];
    expect(keyToBase64(a.publicKey)).toBe(peerA);
    expect(keyToBase64(a.presharedKey!)).toBe(psk);
    expect(a.endpoint).toEqual({ host: 'fd00::1', port: 51820 });
    expect(a.allowedIPs).toEqual(['10.0.0.0/24', 'fd00::/64', '192.168.7.0/24']);
    expect(a.persistentKeepalive).toBe(25);
    expect(b.endpoint).toEqual({ host: 'vpn.example.com', port: 4500 });
    expect(b.persistentKeepalive).toBeUndefined();
    expect(b.allowedIPs).toEqual([]);
    expect(c.endpoint).toEqual({ host: '192.0.2.1', port: 1 });
    expect(c.persistentKeepalive).toBeUndefined();
    expect(cfg.warnings).toEqual([]);
  });

  it('warns, naming file, line and setting, for wg-quick settings it does not apply', () => {
    const text = `${iface}DNS = 1.1.1.1\nTable = off\nPostUp = iptables -A FORWARD\nSaveConfig = true\nFwMark = 0x1\n`;
    const { warnings } = parseConfig(text, 'wg0.conf');
    expect(warnings).toEqual([
      'wg0.conf:3: ignored: DNS is a wg-quick setting this userspace device does not apply',
      'wg0.conf:4: ignored: Table is a wg-quick setting this userspace device does not apply',
      'wg0.conf:5: ignored: PostUp is a wg-quick setting this userspace device does not apply',
      'wg0.conf:6: ignored: SaveConfig is a wg-quick setting this userspace device does not apply',
      'wg0.conf:7: ignored: FwMark is a wg(8) kernel setting this userspace device does not apply',
    ]);
  });

  it('warns about allowed IPs with host bits set, as wg(8) does, and masks them', () => {
    const cfg = parseConfig(`${iface}[Peer]\nPublicKey = ${peerA}\nAllowedIPs = 10.1.2.3/8\n`, 'wg0.conf');
    expect(cfg.peers[0]!.allowedIPs).toEqual(['10.0.0.0/8']);
    expect(cfg.warnings).toEqual([
      'wg0.conf:5: AllowedIPs: a prefix has non-zero host bits; using 10.0.0.0/8',
    ]);
  });

  describe('errors carry file:line and never the secret', () => {
    it('bad keys', () => {
      expectError(
        `${iface}[Peer]\nPublicKey = ${priv.slice(0, 43)}\n`,
        4,
        /PublicKey: not a valid base64 32-byte key/,
      );
      expectError(
        `[Interface]\nPrivateKey = ${priv.slice(1)}A\n`,
        2,
        /PrivateKey: not a valid base64 32-byte key/,
      );
      expectError(`[Interface]\nPrivateKey = ${priv}=\n`, 2, /PrivateKey: not a valid base64/);
      expectError(`[Interface]\nPrivateKey =\n`, 2, /PrivateKey: not a valid base64/);
      const pskBad = `${psk.slice(0, 20)}*${psk.slice(21)}`;
      expectError(
        `${iface}[Peer]\nPublicKey = ${peerA}\nPresharedKey = ${pskBad}\n`,
        5,
        /PresharedKey: not a valid/,
      );
    });

    it('missing and duplicated keys', () => {
      expectError('[Interface]\nListenPort = 1\n', 1, /\[Interface\] has no PrivateKey/);
      expectError(`${iface}\n[Peer]\nAllowedIPs = 10.0.0.0/8\n`, 4, /\[Peer\] has no PublicKey/);
      const dup = `${iface}[Peer]\nPublicKey = ${peerA}\n[Peer]\nPublicKey = ${peerB}\n[Peer]\n# again\nPublicKey = ${peerA}\n`;
      expectError(dup, 9, /PublicKey: the same key as the peer on line 3/);
      expectError(`${iface}PrivateKey = ${psk}\n`, 3, /PrivateKey: given twice \(first on line 2\)/);
      expectError(`${iface}ListenPort = 1\nlistenport = 2\n`, 4, /ListenPort: given twice/);
      expectError(`# only peers\n[Peer]\nPublicKey = ${peerA}\n`, 0, /no \[Interface\] section/);
      expectError(
        `${iface}[Interface]\nPrivateKey = ${psk}\n`,
        3,
        /second \[Interface\] section \(the first is on line 1\)/,
      );
    });

    it('structure: outside a section, no "=", unknown names and sections, wrong section', () => {
      expectError(`PrivateKey = ${priv}\n[Interface]\n`, 1, /PrivateKey: setting outside a section/);
      expectError(`[Interface]\nPrivateKey ${priv.slice(0, 43)}\n`, 2, /not a 'Key = Value' line/);
      expectError(`[Interface]\n${priv}\n`, 2, /an unrecognised name: unknown setting in \[Interface\]/);
      expectError(`${iface}Frobnicate = yes\n`, 3, /Frobnicate: unknown setting in \[Interface\]/);
      expectError(`${iface}constructor = ${psk}\n`, 3, /constructor: unknown setting/);
      expectError(`${iface}__proto__ = 1\n`, 3, /an unrecognised name: unknown setting/);
      expectError(`${iface}[Peers]\n`, 3, /not an \[Interface\] or \[Peer\] section header/);
      expectError(`${iface}[Peer\n`, 3, /section header/);
      expectError(`${iface}PublicKey = ${peerA}\n`, 3, /PublicKey: belongs in \[Peer\]/);
      expectError(`${iface}[Peer]\nPrivateKey = ${psk}\n`, 4, /PrivateKey: belongs in \[Interface\]/);
      expectError(`${iface}[Peer]\nDNS = 1.1.1.1\n`, 4, /DNS: unknown setting in \[Peer\]/);
    });

    it('numbers out of range', () => {
      for (const bad of ['70000', 'abc', '-1', '1.5', '']) {
        expectError(`${iface}ListenPort = ${bad}\n`, 3, /ListenPort: not a whole number in 0-65535/);
      }
      expectError(`${iface}MTU = 40\n`, 3, /MTU: not a whole number in 68-65535/);
      for (const bad of ['65536', 'sometimes', '-5']) {
        const text = `${iface}[Peer]\nPublicKey = ${peerA}\nPersistentKeepalive = ${bad}\n`;
        expectError(text, 5, /PersistentKeepalive: not a whole number/);
      }
    });

    it('addresses and allowed IPs', () => {
      expectError(`${iface}Address = 10.0.0.1/33\n`, 3, /Address: prefix length must be 0-32/);
      expectError(`${iface}Address = 10.0.0.1, nope\n`, 3, /Address: not an IPv4 or IPv6 address/);
      expectError(`${iface}Address = 10.0.0.1,\n`, 3, /Address: empty item/);
      const peer = `${iface}[Peer]\nPublicKey = ${peerA}\n`;
      expectError(`${peer}AllowedIPs = 10.0.0.0/8,,fd00::/8\n`, 5, /AllowedIPs: empty item/);
      expectError(`${peer}AllowedIPs = fd00::/200\n`, 5, /AllowedIPs: prefix length must be 0-128/);
      expectError(`${peer}AllowedIPs = ${psk}\n`, 5, /AllowedIPs: not an IPv4 or IPv6 address/);
    });

    it('endpoints', () => {
      const peer = `${iface}[Peer]\nPublicKey = ${peerA}\n`;
      const cases: Array<[string, RegExp]> = [
        ['fd00::1:51820', /not host:port/],
        ['1.2.3.4', /not host:port/],
        ['1.2.3.4:0', /port not in 1-65535/],
        ['1.2.3.4:70000', /port not in 1-65535/],
        ['[1.2.3.4]:5', /not an IPv6 address in brackets/],
        ['300.1.1.1:5', /not a valid IPv4 address/],
        ['bad_host!:5', /not a valid hostname/],
        ['-lead.example:5', /not a valid hostname/],
        [`${psk}:51820`, /not a valid hostname/],
      ];
      for (const [value, words] of cases) expectError(`${peer}Endpoint = ${value}\n`, 5, words);
    });
  });
});

describe('formatConfig', () => {
  it('round-trips a parsed file', () => {
    const text = `${iface}ListenPort = 0\nAddress = 10.0.0.2/24, fd00::2/64\nMTU = 1420\n[Peer]\nPublicKey = ${peerA}\nPresharedKey = ${psk}\nEndpoint = [fd00::1]:51820\nAllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n[Peer]\nPublicKey = ${peerB}\n`;
    const cfg = parseConfig(text);
    const again = parseConfig(formatConfig(cfg));
    expect(again).toEqual(cfg);
    expect(formatConfig(again)).toBe(formatConfig(cfg));
  });

  it('round-trips random configurations', () => {
    const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
    const peerArb = fc.record(
      {
        publicKey: keyArb,
        presharedKey: keyArb,
        endpoint: fc.record({
          host: fc.constantFrom('10.1.2.3', 'fd00::1', 'peer.example.net'),
          port: fc.integer({ min: 1, max: 65535 }),
        }),
        allowedIPs: fc.subarray([
          '10.0.0.0/8',
          '192.168.1.0/24',
          '::/0',
          'fd7a:115c:a1e0::/48',
          '1.2.3.4/32',
        ]),
        persistentKeepalive: fc.integer({ min: 1, max: 65535 }),
      },
      { requiredKeys: ['publicKey', 'allowedIPs'] },
    );
    const cfgArb = fc.record({
      interface: fc.record(
        {
          privateKey: keyArb,
          listenPort: fc.integer({ min: 0, max: 65535 }),
          addresses: fc.subarray([
            { address: '100.64.0.1', prefix: 10, family: 4 as const },
            { address: 'fd7a:115c:a1e0::1', prefix: 128, family: 6 as const },
          ]),
          mtu: fc.integer({ min: 68, max: 65535 }),
        },
        { requiredKeys: ['privateKey', 'addresses'] },
      ),
      peers: fc.uniqueArray(peerArb, { maxLength: 4, selector: (p) => keyToBase64(p.publicKey) }),
    });
    fc.assert(
      fc.property(cfgArb, (cfg) => {
        expect(parseConfig(formatConfig(cfg))).toEqual({ ...cfg, warnings: [] });
      }),
    );
  });
});

describe('readConfig', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('reads a file, names it in warnings, and warns when others can read it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qs-wgconf-'));
    dirs.push(dir);
    const path = join(dir, 'wg0.conf');
    await writeFile(path, `${iface}DNS = 1.1.1.1\n`, { mode: 0o600 });
    await chmod(path, 0o600);
    expect((await readConfig(path)).warnings).toEqual([
      `${path}:3: ignored: DNS is a wg-quick setting this userspace device does not apply`,
    ]);
    await chmod(path, 0o644);
    const { warnings } = await readConfig(path);
    if (process.platform !== 'win32') expect(warnings.at(-1)).toMatch(/world accessible/);
    await writeFile(path, `[Interface]\nPrivateKey = ${priv.slice(2)}\n`);
    await expect(readConfig(path)).rejects.toThrow(`${path}:2: PrivateKey`);
  });
});
