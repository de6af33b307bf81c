/**
 * Which JavaScript runtime this is: Node, Bun, Deno (all three run the library through their
 * node: modules) or a web page (the browser entry). Used for errors that name what a runtime
 * lacks, and by the test matrix to prove which runtime ran it.
 *
 * @example
 * `${runtime.name} ${runtime.version}`;   // 'bun 1.4.5'
 */
export interface RuntimeInfo {
  readonly name: 'node' | 'bun' | 'deno' | 'browser';
  readonly version: string;
}

interface RuntimeGlobals {
  Deno?: { version: { deno: string } };
  process?: { versions?: { node?: string; bun?: string } };
  navigator?: { userAgent: string };
}

function detect(): RuntimeInfo {
  const g = globalThis as RuntimeGlobals;
  // Deno and Bun both define process.versions.node (for compatibility): ask for them first.
  if (g.Deno !== undefined) return { name: 'deno', version: g.Deno.version.deno };
  const v = g.process?.versions;
  if (v?.bun !== undefined) return { name: 'bun', version: v.bun };
  if (v?.node !== undefined) return { name: 'node', version: v.node };
  return { name: 'browser', version: g.navigator?.userAgent ?? '' };
}

export const runtime: RuntimeInfo = detect();
