/** The Hostinfo we send (tailcfg.Hostinfo): enough for servers to name and describe the node. */
import { randomBytes } from 'node:crypto';
import { arch, release } from 'node:os';
import type { Hostinfo } from './tailcfg.js';
import { CLIENT_VERSION } from './version.js';

/** Hostinfo for `hostname`; `extra` fields override. BackendLogID is random per process. */
export function makeHostinfo(hostname: string, extra: Partial<Hostinfo> = {}): Hostinfo {
  return {
    IPNVersion: CLIENT_VERSION,
    // tailscaled refuses to register without one (direct.go); servers only display it.
    BackendLogID: randomBytes(32).toString('hex'),
    OS: process.platform === 'darwin' ? 'macOS' : process.platform,
    OSVersion: release(),
    Hostname: hostname,
    GoArch: arch(),
    App: 'quackscale',
    Userspace: true,
    ...extra,
  };
}
