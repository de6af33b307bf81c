/**
 * V8's sampling CPU profiler from inside a process (node:inspector), and a profile's functions
 * ranked by self time, as `npm run profile` prints them.
 */
import type { Profiler } from 'node:inspector';
import { Session } from 'node:inspector/promises';

/** Starts the profiler in this process; the returned function stops it and gives the profile. */
export async function startProfile(): Promise<() => Promise<Profiler.Profile>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    return profile;
  };
}

/** One function's share of a profile's time not idle. */
export interface HotFunction {
  /** `name file:line`, the file relative to dist-bench or node_modules. */
  name: string;
  share: number;
}

/**
 * The seconds the thread was not idle (wall time: a thread the OS holds off the CPU in a JS or
 * native frame still counts) and the `n` functions with the most self time.
 */
export function topFunctions(
  profile: Profiler.Profile,
  n: number,
): { busySeconds: number; top: HotFunction[] } {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let busy = 0;
  for (let i = 0; i < samples.length; i++) {
    const frame = nodes.get(samples[i]!)!.callFrame;
    const dt = deltas[i] ?? 0;
    if (frame.functionName === '(idle)') continue;
    busy += dt;
    const url = frame.url.replace(/^.*\/(dist-bench|node_modules)\//, '');
    const key = `${frame.functionName || '(anonymous)'}${url ? ` ${url}:${frame.lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const top = [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, t]) => ({ name, share: busy > 0 ? t / busy : 0 }));
  return { busySeconds: busy / 1e6, top };
}
