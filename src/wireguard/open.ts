/**
 * A device from a wg-quick configuration: the UDP bind on ListenPort, the interface key and
 * every [Peer] with its endpoint resolved (hostnames through DNS, once, at start as wg(8)).
 */

import type { AeadEngineName } from './aead.js';
import { type BunUdpBind, openUdpBind } from './bun-udp-bind.js';
import type { WgConfig } from './config.js';
import { Device } from './device.js';
import type { Logger } from './logger.js';
import type { UdpBind } from './udp-bind.js';

export interface OpenDeviceOptions {
  logger?: Logger;
  aead?: AeadEngineName;
  /** Local address to bind (default: all IPv4 and IPv6 addresses). */
  host?: string;
}

/** Opens a UDP bind ({@link UdpBind}; {@link BunUdpBind} under Bun) on the config's ListenPort (or a random port) and a {@link Device} with its peers. */
export async function openDevice(
  config: WgConfig,
  opts: OpenDeviceOptions = {},
): Promise<{ device: Device; bind: UdpBind | BunUdpBind }> {
  const bind = await openUdpBind({ port: config.interface.listenPort ?? 0, host: opts.host });
  try {
    const device = new Device({
      privateKey: config.interface.privateKey,
      bind,
      mtu: config.interface.mtu,
      logger: opts.logger,
      aead: opts.aead,
    });
    for (const p of config.peers) {
      const endpoint = p.endpoint ? await bind.resolveEndpoint(p.endpoint.host, p.endpoint.port) : undefined;
      device.addPeer({
        publicKey: p.publicKey,
        presharedKey: p.presharedKey,
        endpoint,
        allowedIPs: p.allowedIPs,
        persistentKeepalive: p.persistentKeepalive,
      });
    }
    return { device, bind };
  } catch (err) {
    await bind.close();
    throw err;
  }
}
