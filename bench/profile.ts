/**
 * `npm run profile -- [seconds]`: where the TS↔TS pair's CPU goes. Runs the pair of `bench --
 * tcp` (this process sends, a child receives; WireGuard over UDP loopback, bulk TCP) with V8's
 * sampling profiler on both ends for the transfer alone, prints each end's time not idle and its
 * ten functions with the most self time, and writes both profiles to bench/results/ (open them
 * in Chrome DevTools). WASM functions print as wasm-function[i], in the order of
 * src/wireguard/wasm/chacha20poly1305.wat: 0 the four-block ChaCha20, 3 Poly1305's blocks.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProfile, topFunctions } from './cpu-profile.js';
import { openTsPair } from './ts-pair.js';

const seconds = Number(process.argv[2] ?? 6);
if (!(seconds > 0)) {
  console.error(`usage: npm run profile -- [seconds > 0] (got ${process.argv[2]})`);
  process.exit(2);
}
const pair = await openTsPair({ profile: true });
const { sender, report } = await (async () => {
  try {
    const stop = await startProfile();
    const cpu0 = process.cpuUsage();
    const report = await pair.transfer(seconds);
    const cpu = process.cpuUsage(cpu0);
    return { sender: { profile: await stop(), cpuSeconds: (cpu.user + cpu.system) / 1e6 }, report };
  } finally {
    await pair.close();
  }
})();
const gb = report.bytes / 1e9;
console.log(
  `TS↔TS: ${(report.bytes / report.seconds / 1e6).toFixed(1)} MB/s, ` +
    `${((sender.cpuSeconds + report.cpuSeconds) / gb).toFixed(2)} CPU-s per GB ` +
    `(sender ${(sender.cpuSeconds / gb).toFixed(2)}, receiver ${(report.cpuSeconds / gb).toFixed(2)}; profiler on)`,
);
const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
mkdirSync(dir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
for (const [end, profile] of [
  ['sender', sender.profile],
  ['receiver', report.profile],
] as const) {
  if (!profile) throw new Error(`the ${end} sent no profile`);
  const { busySeconds, top } = topFunctions(profile, 10);
  console.log(
    `\n${end}: not idle ${busySeconds.toFixed(2)} s (${(busySeconds / gb).toFixed(2)} s per GB), self time:`,
  );
  for (const f of top) console.log(`  ${(100 * f.share).toFixed(1).padStart(5)}%  ${f.name}`);
  const file = join(dir, `profile-${end}-${stamp}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  console.log(`  ${file}`);
}
