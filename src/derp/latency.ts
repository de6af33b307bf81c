/**
 * Region latency for picking a home (net/netcheck's idea, simplified): a STUN Binding round
 * trip to each region's first node, and an HTTP(S) `GET /derp/latency-check` for nodes without
 * STUN or when UDP is blocked; the best answer per region counts.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { runtime } from '../platform/runtime.js';
import { type DerpMap, type DerpNode, nodeTarget, regionIds, stunTarget } from './derpmap.js';
import { checkPin, hostOf, tlsOptions } from './dial.js';
import { DerpError } from './errors.js';
import { stunQuery } from './stun.js';

/**
 * Time of an HTTP(S) GET to the node's /derp/latency-check, connection included.
 *
 * @example
 * const ms = await httpLatency(node, { timeoutMs: 2000, useHttp: true });
 */
export function httpLatency(node: DerpNode, opts: { timeoutMs: number; useHttp?: boolean }): Promise<number> {
  const t = nodeTarget(node, opts);
  const url = new URL(t.url.replace(/\/derp$/, '/derp/latency-check'));
  const start = performance.now();
  if (runtime.name === 'browser') return pageLatency(url, start, opts.timeoutMs);
  const req = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(
      url,
      {
        method: 'GET',
        host: t.connectHost,
        // A one-off connection: a pooled keep-alive socket would hold the process open after close.
        agent: false,
        headers: { Host: url.host },
        timeout: opts.timeoutMs,
        // Verified as the DERP connection itself is: a forged answer would skew the choice of home.
        ...(url.protocol === 'https:' ? tlsOptions(url, t.tls) : {}),
      },
      (res) => {
        const bad =
          url.protocol === 'https:' ? checkPin(res.socket as TLSSocket, t.tls, hostOf(url)) : undefined;
        if (bad !== undefined) {
          res.destroy();
          reject(new DerpError('CONNECT', `latency check: ${bad}`));
          return;
        }
        res.resume();
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(performance.now() - start)
            : reject(new DerpError('CONNECT', `latency check got HTTP ${res.statusCode}`)),
        );
      },
    );
    r.on('timeout', () =>
      r.destroy(new DerpError('TIMEOUT', `latency check timed out after ${opts.timeoutMs} ms`)),
    );
    r.on('error', (err) =>
      reject(err instanceof DerpError ? err : new DerpError('CONNECT', err.message, { cause: err })),
    );
    r.end();
  });
}

/**
 * The latency check from a web page: the page's fetch, `no-cors` because only the round trip
 * matters (the answer is opaque to a page on another origin, and derper sends no CORS there).
 */
async function pageLatency(url: URL, start: number, timeoutMs: number): Promise<number> {
  try {
    await fetch(url, {
      mode: 'no-cors',
      cache: 'no-store',
      signal: AbortSignal.timeout(timeoutMs),
    } as RequestInit);
  } catch (err) {
    throw new DerpError('CONNECT', `latency check: ${(err as Error).message}`, { cause: err });
  }
  return performance.now() - start;
}

/** netcheck.go preferredDERPAbsoluteDiff: smaller improvements never move home. */
const PreferredDERPAbsoluteDiff = 10;

/**
 * The region to make home given measured latencies, with net/netcheck's hysteresis: keep the
 * current home unless the best is at least 10 ms and a third faster. Regions marked Avoid or
 * NoMeasureNoHome are never chosen. Undefined when nothing eligible answered.
 *
 * @example
 * choosePreferredRegion(new Map([[1, 30], [2, 25]]), 1, map);   // 1: not enough better
 */
export function choosePreferredRegion(
  latency: ReadonlyMap<number, number>,
  current: number | undefined,
  map: DerpMap,
): number | undefined {
  let best: number | undefined;
  for (const [id, ms] of latency) {
    const r = map.Regions[String(id)];
    if (!r || r.Avoid || r.NoMeasureNoHome) continue;
    if (best === undefined || ms < latency.get(best)!) best = id;
  }
  if (best === undefined || current === undefined || best === current) return best;
  const old = latency.get(current);
  if (old === undefined) return best;
  const bestMs = latency.get(best)!;
  if (old - bestMs < PreferredDERPAbsoluteDiff || bestMs > (old / 3) * 2) return current;
  return best;
}

/**
 * Best round trip per region in ms; regions that answered nothing are absent.
 *
 * @example
 * const lat = await measureRegionLatency(map, { timeoutMs: 2000 });
 */
export async function measureRegionLatency(
  map: DerpMap,
  opts: { timeoutMs: number; useHttp?: boolean },
): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  await Promise.all(
    regionIds(map).map(async (id) => {
      const node = map.Regions[String(id)]?.Nodes[0];
      if (!node) return;
      const st = stunTarget(node);
      const probes: Array<Promise<number>> = [httpLatency(node, opts)];
      if (st) probes.push(stunQuery(st.host, st.port, opts.timeoutMs).then((r) => r.rttMs));
      const results = await Promise.allSettled(probes);
      const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      if (ok.length > 0) out.set(id, Math.min(...ok));
    }),
  );
  return out;
}
