import { describe, expect, it } from 'vitest';
import { egressMtu, type ReadText } from '../../src/tailnet/egress-mtu.js';

const files: Record<string, string> = {
  '/proc/net/route': [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    'eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    'veth9\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
  ].join('\n'),
  '/proc/net/ipv6_route': [
    'fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 veth9',
    '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0',
  ].join('\n'),
  '/sys/class/net/eth0/mtu': '1500\n',
  '/sys/class/net/veth9/mtu': '9000\n',
  '/sys/class/net/lo/mtu': '65536\n',
};
const read: ReadText = (p) => files[p];
const none = () => new Set<string>();

describe('egressMtu', () => {
  it('follows the longest matching IPv4 route to its interface', () => {
    expect(egressMtu('10.77.0.2', read, none)).toBe(9000);
    expect(egressMtu('10.0.0.9', read, none)).toBe(1500);
    expect(egressMtu('198.51.100.1', read, none)).toBe(1500); // default route
  });
  it('follows IPv6 routes', () => {
    expect(egressMtu('fd00::5', read, none)).toBe(9000);
    expect(egressMtu('2001:db8::1', read, none)).toBe(1500);
  });
  it('sends loopback and our own addresses through lo', () => {
    expect(egressMtu('127.0.0.1', read, none)).toBe(65536);
    expect(egressMtu('::1', read, none)).toBe(65536);
    expect(egressMtu('10.77.0.1', read, () => new Set(['10.77.0.1']))).toBe(65536);
  });
  it('knows nothing where /proc and /sys cannot be read', () => {
    expect(egressMtu('10.77.0.2', () => undefined, none)).toBeUndefined();
    expect(egressMtu('not an ip', read, none)).toBeUndefined();
  });
  it('reads this machine (Linux) for loopback', () => {
    if (process.platform !== 'linux') return;
    expect(egressMtu('127.0.0.1')).toBeGreaterThanOrEqual(1500);
  });
});
