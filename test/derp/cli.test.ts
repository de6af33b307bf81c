// `quackscale derp serve` and `quackscale derp probe`, run in-process through derpCommand.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { derpCommand } from '../../src/cli/derp.js';
import { UsageError } from '../../src/cli/log.js';
import { stunQuery } from '../../src/derp/stun.js';
import { open } from '../guard/sockets.js';

afterEach(() => {
  vi.restoreAllMocks();
});

function captureStdout(): string[] {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    lines.push(a.join(' '));
  });
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => {
    lines.push(a.join(' '));
  });
  return lines;
}

describe('quackscale derp', () => {
  it('serve listens with STUN; probe relays N packets there and back and exits 0', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const ac = new AbortController();
    let url = '';
    let stunPort: number | undefined;
    const serving = derpCommand(['serve', '--addr', '127.0.0.1:0', '--stun-port', '0'], {
      signal: ac.signal,
      onListening: (u, s) => {
        url = u;
        stunPort = s;
      },
    });
    await vi.waitFor(() => expect(url).not.toBe(''));
    expect((await stunQuery('127.0.0.1', stunPort!)).ip).toBe('127.0.0.1');
    const out = captureStdout();
    expect(await derpCommand(['probe', url, '--count', '200', '--size', '1400'])).toBe(0);
    expect(out.join('\n')).toMatch(/200\/200 packets of 1400 bytes came back intact/);
    expect(out.join('\n')).toMatch(/rtt min\/avg\/max = [\d.]+\/[\d.]+\/[\d.]+ ms/);
    expect(out.join('\n')).toMatch(/throughput [\d.]+ MB\/s/);
    expect(await derpCommand(['probe', url, '--count', '20', '--websocket'])).toBe(0);
    ac.abort();
    expect(await serving).toBe(0);
  });

  it('serve takes the limits: --request-timeout-ms closes a silent connection; a bad limit is a usage error', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const ac = new AbortController();
    let url = '';
    const serving = derpCommand(
      ['serve', '--addr', '127.0.0.1:0', '--request-timeout-ms', '300', '--max-connections-per-ip', '5'],
      { signal: ac.signal, onListening: (u) => (url = u) },
    );
    await vi.waitFor(() => expect(url).not.toBe(''));
    const silent = await open(Number(new URL(url).port));
    expect(await silent.closed(3000)).toBeGreaterThanOrEqual(250);
    ac.abort();
    expect(await serving).toBe(0);
    await expect(derpCommand(['serve', '--addr', '127.0.0.1:0', '--handshakes-per-ip', '0'])).rejects.toThrow(
      /--handshakes-per-ip must be a positive number/,
    );
  });

  it('probe of a dead server exits 1 with the reason', async () => {
    const out = captureStdout();
    expect(await derpCommand(['probe', 'http://127.0.0.1:1/derp', '--count', '1'])).toBe(1);
    expect(out.join('\n')).toMatch(/derp probe http:\/\/127\.0\.0\.1:1\/derp: DERP dial/);
  });

  it('bad usage is a UsageError', async () => {
    await expect(derpCommand([])).rejects.toBeInstanceOf(UsageError);
    await expect(derpCommand(['serve', '--addr', 'nope'])).rejects.toBeInstanceOf(UsageError);
    await expect(derpCommand(['serve', '--addr', '127.0.0.1:1', '--tls-cert', 'x'])).rejects.toThrow(
      /go together/,
    );
    await expect(derpCommand(['probe'])).rejects.toBeInstanceOf(UsageError);
    await expect(
      derpCommand([
        'serve',
        '--addr',
        '127.0.0.1:0',
        '--tls-cert',
        '/nonexistent.pem',
        '--tls-key',
        '/x.pem',
      ]),
    ).rejects.toThrow(/--tls-cert \/nonexistent.pem: ENOENT/);
    await expect(derpCommand(['probe', 'http://x/derp', '--count', '0'])).rejects.toThrow(/--count/);
  });
});
