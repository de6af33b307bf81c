/**
 * A netcheck report in the shape of Tailscale's (net/netcheck/netcheck.go Report, as
 * `tailscale netcheck --format=json` writes it: durations in nanoseconds, opt.Bool as
 * true/false/null, maps keyed by region ID or `ip:port`), and its text as `tailscale netcheck`
 * prints it (cmd/tailscale/cli/netcheck.go printNetCheckReport).
 */
import type { DerpMap } from '../../derp/derpmap.js';

/** Go's opt.Bool: unknown is null. */
export type OptBool = boolean | null;

/** netcheck.Report. */
export interface NetcheckReport {
  /** RFC 3339 time the report was started. */
  Now: string;
  /** A UDP STUN round trip completed (either family). */
  UDP: boolean;
  IPv6: boolean;
  IPv4: boolean;
  IPv6CanSend: boolean;
  IPv4CanSend: boolean;
  /** Could bind a UDP socket to ::1. */
  OSHasIPv6: boolean;
  /** Always false here: Node has no ICMP sockets (tailscale tries ICMP only when UDP is blocked). */
  ICMPv4: boolean;
  /** Whether STUN servers saw different IPv4 mappings (an endpoint-dependent NAT); null when fewer than two answered. */
  MappingVariesByDestIP: OptBool;
  /** Port mapping protocols: never probed here (null, "not checked"). */
  UPnP: OptBool;
  PMP: OptBool;
  PCP: OptBool;
  /** The region with the lowest latency (0: none answered). */
  PreferredDERP: number;
  /** Best round trip per region ID, in nanoseconds (time.Duration). */
  RegionLatency: Record<string, number>;
  RegionV4Latency: Record<string, number>;
  RegionV6Latency: Record<string, number>;
  /** How often each public endpoint was seen. */
  GlobalV4Counters: Record<string, number> | null;
  GlobalV6Counters: Record<string, number> | null;
  /** The first public endpoint seen per family (`ip:port`, `[ip]:port`), or ''. */
  GlobalV4: string;
  GlobalV6: string;
  CaptivePortal: OptBool;
}

/** time.Duration.String() of `ns` rounded to 100 µs, as the CLI prints latencies. */
export function goDuration(ns: number): string {
  const d = Math.round(ns / 100_000) * 100_000;
  if (d === 0) return '0s';
  const trim = (v: number, places: number) => v.toFixed(places).replace(/\.?0+$/, '');
  if (d < 1_000_000) return `${trim(d / 1000, 3)}µs`;
  if (d < 1_000_000_000) return `${trim(d / 1e6, 6)}ms`;
  return `${trim(d / 1e9, 9)}s`;
}

const optText = (b: OptBool) => (b === null ? '' : String(b));

/**
 * The report as `tailscale netcheck` prints it; regions named from `map`.
 *
 * @example
 * process.stdout.write(formatNetcheck(report, derpMap));
 */
export function formatNetcheck(r: NetcheckReport, map: DerpMap): string {
  const out = ['', 'Report:', `\t* Time: ${r.Now}`, `\t* UDP: ${r.UDP}`];
  out.push(r.GlobalV4 ? `\t* IPv4: yes, ${r.GlobalV4}` : '\t* IPv4: (no addr found)');
  if (r.GlobalV6) out.push(`\t* IPv6: yes, ${r.GlobalV6}`);
  else if (r.IPv6) out.push('\t* IPv6: (no addr found)');
  else if (r.OSHasIPv6) out.push('\t* IPv6: no, but OS has support');
  else out.push('\t* IPv6: no, unavailable in OS');
  out.push(`\t* MappingVariesByDestIP: ${optText(r.MappingVariesByDestIP)}`, '\t* PortMapping: not checked');
  const ids = Object.keys(r.RegionLatency);
  if (ids.length === 0) {
    out.push('\t* Nearest DERP: unknown (no response to latency probes)');
  } else {
    const pref = map.Regions[String(r.PreferredDERP)];
    out.push(
      r.PreferredDERP === 0
        ? '\t* Nearest DERP: [none]'
        : `\t* Nearest DERP: ${pref ? pref.RegionName : `${r.PreferredDERP} (region not found in map)`}`,
      '\t* DERP latency:',
    );
    // Answered regions by latency, then the silent ones (RegionLatency.Compare).
    const all = Object.keys(map.Regions).sort((a, b) => {
      const la = r.RegionLatency[a];
      const lb = r.RegionLatency[b];
      if (la === undefined || lb === undefined) return la === undefined ? (lb === undefined ? 0 : 1) : -1;
      return la - lb;
    });
    for (const id of all) {
      const reg = map.Regions[id]!;
      const lat = r.RegionLatency[id];
      const text = lat === undefined ? '' : goDuration(lat);
      out.push(`\t\t- ${reg.RegionCode.padStart(3)}: ${text.padEnd(7)} (${reg.RegionName})`);
    }
  }
  return `${out.join('\n')}\n`;
}
