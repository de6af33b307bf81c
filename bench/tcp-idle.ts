/**
 * Child process of the TCP benchmark: opens 1,000 connections between two endpoints over an
 * in-memory link, lets them go idle, and reports the growth of RSS and of the JS heap plus
 * buffers. Run with --expose-gc.
 */
import { memoryLinkPair } from '../src/netstack/link.js';
import { Stack } from '../src/netstack/stack.js';
import { TcpEndpoint } from '../src/netstack/tcp/endpoint.js';
import { TcpServer } from '../src/netstack/tcp/server.js';
import { type TcpSocket, tcpConnect } from '../src/netstack/tcp/socket.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const [la, lb] = memoryLinkPair(1420);
const a = new TcpEndpoint(new Stack(la, { addresses: ['10.0.0.1'] }));
const b = new TcpEndpoint(new Stack(lb, { addresses: ['10.0.0.2'] }));
const accepted: TcpSocket[] = [];
new TcpServer(b, {}, (s) => {
  accepted.push(s);
  s.on('data', () => {});
}).listen(80, undefined, 4096);
await new Promise((res) => setTimeout(res, 100));
gc();
const before = process.memoryUsage();
const clients: TcpSocket[] = [];
for (let i = 0; i < 1000; i++) {
  const s = tcpConnect(a, { host: '10.0.0.2', port: 80 });
  clients.push(s);
  s.write('hello'); // one exchange each, so the data path has been used
}
await new Promise((res) => setTimeout(res, 1000));
gc();
const after = process.memoryUsage();
process.send!({
  rss: after.rss - before.rss,
  heap: after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers,
  accepted: accepted.length,
});
for (const s of clients) s.destroy();
a.close();
b.close();
process.exit(0);
