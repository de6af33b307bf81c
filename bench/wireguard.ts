/**
 * WireGuard benchmarks (issue: handshakes/s; seal/open at 1420 bytes with node:crypto, wasm
 * and noble; a two-device flood over UDP loopback against the raw AEAD rate of the same run).
 */
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AeadEngineName, transportAead } from '../src/wireguard/aead.js';
import { systemClock } from '../src/wireguard/clock.js';
import { CookieChecker, CookieGenerator } from '../src/wireguard/cookie.js';
import { randomBytes } from '../src/wireguard/crypto.js';
import { Device } from '../src/wireguard/device.js';
import { generatePrivateKey, keyToBase64, publicKeyFromPrivate } from '../src/wireguard/keys.js';
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  peerIdentity,
} from '../src/wireguard/noise.js';
import { UdpBind } from '../src/wireguard/udp-bind.js';
import { Report, rate } from './report.js';

const PACKET = 1420;
const FLOOD_SECONDS = 4;

export async function run(): Promise<Report> {
  const r = new Report('wireguard');
  handshakes(r);
  aead(r);
  for (const engine of ['wasm', 'node'] as const) {
    await flood(r, engine);
    const ratio = r.ratio(
      `flood ${AEAD_LABELS[engine]} (UDP loopback, 2 processes)`,
      `seal ${AEAD_LABELS[engine]}`,
    );
    console.log(
      `  tunnel flood / AEAD seal rate (${AEAD_LABELS[engine]}): ${ratio?.toFixed(2)} (aim ≥ 0.80)`,
    );
  }
  return r;
}

function handshakes(r: Report): void {
  const a = keyPair();
  const b = keyPair();
  const bAtA = peerIdentity(a, b.publicKey);
  const aAtB = peerIdentity(b, a.publicKey);
  const genA = new CookieGenerator(b.publicKey, systemClock);
  const genB = new CookieGenerator(a.publicKey, systemClock);
  const checkA = new CookieChecker(a.publicKey, systemClock);
  const checkB = new CookieChecker(b.publicKey, systemClock);
  const perSecond = rate(() => {
    const { message, pending } = createInitiation(a, bAtA, 1, Date.now());
    genA.addMacs(message);
    if (!checkB.checkMac1(message)) throw new Error('mac1');
    const { consumed } = consumeInitiation(b, message, () => aAtB);
    const resp = createResponse(aAtB, consumed, 2);
    genB.addMacs(resp.message);
    if (!checkA.checkMac1(resp.message)) throw new Error('mac1');
    consumeResponse(a, bAtA, pending, resp.message);
  });
  r.add({
    name: 'handshakes (init + response + consume, both sides)',
    value: perSecond,
    unit: 'handshakes/s',
  });
}

const AEAD_LABELS = { node: 'node:crypto', wasm: 'wasm', noble: 'noble' } as const;

/** Seal and open of 1420-byte packets per engine; wasm is also reported as a ratio to node:crypto. */
function aead(r: Report): void {
  for (const name of ['node', 'wasm', 'noble'] as const) {
    const engine = transportAead(name);
    if (engine.name !== name) {
      console.log(`  (${name} engine unavailable here, skipped)`);
      continue;
    }
    const key = engine.prepareKey(randomBytes(32));
    const plain = randomBytes(PACKET);
    let counter = 0;
    const seal = rate(() => void engine.seal(key, 1, counter++, plain, PACKET));
    const msg = engine.seal(key, 1, 0, plain, PACKET);
    const open = rate(() => {
      if (!engine.open(key, 0, msg)) throw new Error('open failed');
    });
    const label = AEAD_LABELS[name];
    const ref = name === 'wasm' ? AEAD_LABELS.node : undefined;
    r.add({
      name: `seal ${label}`,
      value: (seal * PACKET) / 1e6,
      unit: 'MB/s',
      ratioTo: ref && `seal ${ref}`,
      note: `${Math.round(seal)} pkt/s`,
    });
    r.add({
      name: `open ${label}`,
      value: (open * PACKET) / 1e6,
      unit: 'MB/s',
      ratioTo: ref && `open ${ref}`,
      note: `${Math.round(open)} pkt/s`,
    });
  }
  vectors(r);
  const seal = r.ratio('seal wasm', 'seal node:crypto');
  const open = r.ratio('open wasm', 'open node:crypto');
  if (seal !== undefined && open !== undefined) {
    console.log(`  wasm / node:crypto: seal ${seal.toFixed(2)}×, open ${open.toFixed(2)}×`);
  }
}

/** The wasm engine's seal and open vectors: bursts of 64 packets of 1420 bytes, one call each. */
function vectors(r: Report): void {
  const engine = transportAead('wasm');
  if (engine.name !== 'wasm') return;
  const BURST = 64;
  const key = engine.prepareKey(randomBytes(32));
  const plain = randomBytes(PACKET);
  const tx = engine.sealVector();
  const rx = engine.openVector();
  let counter = 0;
  const seal = rate(() => {
    tx.clear();
    for (let i = 0; i < BURST; i++) tx.add(key, 1, counter++, plain, PACKET);
    tx.seal();
  });
  const msgs = Array.from({ length: BURST }, (_, i) => engine.seal(key, 1, i, plain, PACKET));
  const open = rate(() => {
    rx.clear();
    for (let i = 0; i < BURST; i++) rx.add(key, i, msgs[i]!);
    rx.open();
    if (!rx.plaintext(BURST - 1)) throw new Error('open failed');
  });
  for (const [op, perSecond] of [
    ['seal', seal],
    ['open', open],
  ] as const) {
    r.add({
      name: `${op} wasm, vectors of ${BURST}`,
      value: (perSecond * BURST * PACKET) / 1e6,
      unit: 'MB/s',
      ratioTo: `${op} wasm`,
      note: `${Math.round(perSecond * BURST)} pkt/s, checksums included`,
    });
  }
}

/**
 * Device A in this process floods 1420-byte packets to device B in a child process over UDP
 * on 127.0.0.1; B counts what it decrypts. Two processes, so each side has a core.
 */
async function flood(r: Report, engine: AeadEngineName): Promise<void> {
  const privA = generatePrivateKey();
  const privB = generatePrivateKey();
  const bindA = await UdpBind.open({ host: '127.0.0.1' });
  const here = dirname(fileURLToPath(import.meta.url));
  const child = fork(join(here, 'wireguard-receiver.js'), [], {
    stdio: ['pipe', 'inherit', 'inherit', 'ipc'],
  });
  child.send({ privateKey: keyToBase64(privB), peer: keyToBase64(publicKeyFromPrivate(privA)), engine });
  const port = await new Promise<number>((res) =>
    child.once('message', (m: { port: number }) => res(m.port)),
  );
  const a = new Device({ privateKey: privA, bind: bindA, aead: engine });
  a.addPeer({
    publicKey: publicKeyFromPrivate(privB),
    endpoint: bindA.parseEndpoint(`127.0.0.1:${port}`),
    allowedIPs: ['10.9.0.2/32'],
  });

  const packet = new Uint8Array(PACKET);
  packet[0] = 0x45;
  packet[2] = PACKET >> 8;
  packet[3] = PACKET & 0xff;
  packet.set([10, 9, 0, 1], 12);
  packet.set([10, 9, 0, 2], 16);
  a.writePacket(packet); // handshake
  await new Promise((res) => setTimeout(res, 300));

  let sent = 0;
  let running = true;
  const start = performance.now();
  // 64 packets a turn, written as one burst the way the stack writes what a turn allows: sealed
  // with one call, then one datagram each.
  const pump = () => {
    if (!running) return;
    a.beginBurst();
    for (let i = 0; i < 64; i++) a.writePacket(packet);
    a.endBurst();
    sent += 64;
    setImmediate(pump);
  };
  child.send({ cmd: 'start' });
  pump();
  await new Promise((res) => setTimeout(res, FLOOD_SECONDS * 1000));
  running = false;
  const elapsed = (performance.now() - start) / 1000;
  child.send({ cmd: 'stop' });
  const got = await new Promise<{ packets: number; seconds: number }>((res) =>
    child.once('message', (m: { packets: number; seconds: number }) => res(m)),
  );
  child.kill();
  await a.close();
  const label = AEAD_LABELS[engine];
  r.add({
    name: `flood ${label} (UDP loopback, 2 processes)`,
    value: (got.packets * PACKET) / got.seconds / 1e6,
    unit: 'MB/s',
    ratioTo: `seal ${label}`,
    note: `${Math.round(got.packets / got.seconds)} pkt/s received, ${Math.round(sent / elapsed)} pkt/s offered`,
  });
}

function keyPair() {
  const privateKey = generatePrivateKey();
  return { privateKey, publicKey: publicKeyFromPrivate(privateKey) };
}
