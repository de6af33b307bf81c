// Our node as a library, in a process of its own (so it can run inside a lab host's namespace), driven
// over IPC by tailnet-process.ts: `up` with any TailnetOptions, then fetches (bytes counted and hashed
// as they stream), dials that must fail (their error code and message), UDP round trips and status.
// QS_TAILNET_MODULE is the compiled quackscale/tailnet module. Plain JS: it runs under bare Node.
import { createHash } from 'node:crypto';
import { fetch as undiciFetch } from 'undici';

const mod = process.env.QS_TAILNET_MODULE;
if (!mod) throw new Error('missing QS_TAILNET_MODULE');
const { Tailnet } = await import(mod);

// QS_CPU_PROFILE=DIR: V8's sampling profile of this node, written to DIR/<hostname>.cpuprofile at exit
// (NODE_OPTIONS may not carry --cpu-prof), for profiling a node inside a lab namespace.
const profileDir = process.env.QS_CPU_PROFILE;
let stopProfile = async () => {};
let name = String(process.pid);
if (profileDir) {
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  stopProfile = async () => {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(`${profileDir}/${name}.cpuprofile`, JSON.stringify(profile));
  };
}

/** @type {import('../../../src/tailnet/tailnet.js').Tailnet | undefined} */
let tn;

/** GETs `url` through the node (a direct net when `direct`): status, byte count and sha256 of the body. */
async function fetchHash({ url, direct, timeoutMs }) {
  const t0 = performance.now();
  const init = { signal: AbortSignal.timeout(timeoutMs ?? 120_000) };
  const res = direct
    ? await undiciFetch(url, { ...init, dispatcher: tn.dispatcher({ direct: true }) })
    : await tn.fetch(url, init);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { status: res.status, bytes, sha256: hash.digest('hex'), ms: performance.now() - t0 };
}

/** A TCP dial that is expected to fail: how (code, message) and how fast. */
async function dialError({ host, port, direct, timeoutMs }) {
  const t0 = performance.now();
  try {
    const net = tn.createNet({ direct: direct === true });
    await new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', reject);
      if (timeoutMs) {
        s.setTimeout(timeoutMs, () => {
          s.destroy();
          reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'timeout' }));
        });
      }
    });
    return { code: 'connected', message: '', ms: performance.now() - t0 };
  } catch (err) {
    return { code: err.code ?? err.name, message: err.message, ms: performance.now() - t0 };
  }
}

/** `count` datagrams to host:port from one tailnet UDP socket; the answers, in order. */
async function udpRoundTrip({ host, port, count }) {
  const sock = await tn.listenPacket(0);
  const answers = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      const payload = `datagram ${i} ${'x'.repeat(i * 37)}`;
      const answer = new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), 3000);
        sock.once('message', (msg, rinfo) => {
          clearTimeout(timer);
          resolve({ text: msg.toString(), from: `${rinfo.address}:${rinfo.port}` });
        });
      });
      sock.send(payload, port, host);
      answers.push({ sent: payload, got: await answer });
    }
  } finally {
    sock.close();
  }
  return { answers, ms: performance.now() - t0 };
}

const ops = {
  async up(options) {
    name = options.hostname ?? name;
    tn = new Tailnet(options);
    return tn.up();
  },
  status: () => tn.status(),
  fetch: fetchHash,
  dialError,
  udp: udpRoundTrip,
  async close() {
    await tn?.close();
    tn = undefined;
    return {};
  },
};

process.on('message', (msg) => {
  if (msg.op === 'exit') {
    void stopProfile()
      .then(() => tn?.close())
      .finally(() => process.disconnect());
    return;
  }
  Promise.resolve()
    .then(() => ops[msg.op](msg.args ?? {}))
    .then(
      (result) => process.send({ id: msg.id, result }),
      (err) => {
        // undici's "fetch failed" hides what failed in its cause.
        const cause = err.cause ? ` (cause: ${err.cause.code ?? err.cause.name}: ${err.cause.message})` : '';
        process.send({ id: msg.id, error: `${err.name}: ${err.message}${cause}`, code: err.code });
      },
    );
});
process.send({ ready: true });
