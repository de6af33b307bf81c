import { createHash, randomBytes } from 'node:crypto';

/**
 * Initial sequence numbers per RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport,
 * secretkey), where M is a 4-microsecond clock and F a keyed hash. Reusing a 4-tuple soon after
 * TIME_WAIT therefore starts above the old connection's sequence space, while an off-path attacker
 * cannot predict the ISN of a connection it is not part of.
 */
export class IsnGenerator {
  private readonly secret = randomBytes(16);
  private readonly epoch = performance.now();

  /** The ISN for a new connection on this 4-tuple. */
  next(local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number): number {
    const h = createHash('sha256');
    h.update(local);
    h.update(remote);
    const ports = Buffer.allocUnsafe(4);
    ports.writeUInt16BE(localPort, 0);
    ports.writeUInt16BE(remotePort, 2);
    h.update(ports);
    h.update(this.secret);
    const f = h.digest().readUInt32BE(0);
    const m = Math.floor((performance.now() - this.epoch) * 250);
    return (f + m) >>> 0;
  }
}
