// `up --metrics-listen ADDR`'s listener: its address forms, loopback by default, GET /metrics only, and a taken
// port refused with the address named.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { MetricsListenError, parseListenAddress, serveMetrics } from '../../../src/tailnet/metrics/listen.js';

function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
        );
      })
      .on('error', reject);
  });
}

describe('metrics listener', () => {
  it('takes PORT (loopback), HOST:PORT and [IPv6]:PORT, and nothing else', () => {
    expect(parseListenAddress('9100')).toEqual({ host: '127.0.0.1', port: 9100 });
    expect(parseListenAddress('0.0.0.0:9100')).toEqual({ host: '0.0.0.0', port: 9100 });
    expect(parseListenAddress('[::1]:9100')).toEqual({ host: '::1', port: 9100 });
    expect(parseListenAddress('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    for (const bad of ['', 'x', ':9100', '::1:9100', '127.0.0.1:', '127.0.0.1:70000', '9100x'])
      expect(() => parseListenAddress(bad), bad).toThrow(MetricsListenError);
  });

  it('answers GET /metrics with the text, 404 elsewhere, on 127.0.0.1 when given a port', async () => {
    let n = 0;
    const srv = await serveMetrics('0', () => `scrape_total ${++n}\n`);
    try {
      expect(srv.url).toBe(`http://127.0.0.1:${srv.port}/metrics`);
      const r = await get(srv.url);
      expect(r).toEqual({
        status: 200,
        type: 'text/plain; version=0.0.4; charset=utf-8',
        body: 'scrape_total 1\n',
      });
      expect((await get(srv.url)).body).toBe('scrape_total 2\n');
      expect((await get(`http://127.0.0.1:${srv.port}/`)).status).toBe(404);
    } finally {
      await srv.close();
    }
  });

  it('a taken port fails with the address named', async () => {
    const other = http.createServer();
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const port = (other.address() as AddressInfo).port;
    try {
      await expect(serveMetrics(String(port), () => '')).rejects.toThrow(
        new MetricsListenError(`metrics listener: 127.0.0.1:${port} is already in use`),
      );
    } finally {
      await new Promise((r) => other.close(r));
    }
  });
});
