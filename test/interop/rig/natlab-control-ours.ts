// Our embedded control server in the NAT lab, in Headscale's place: `quackscale control serve --derp` in the
// lab's internet namespace (control on :8080, our DERP relay and STUN beside it), driven with our CLI as an
// admin drives it. Same surface as LabControl, so a lab test runs against either.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../control-peers.js';
import { exec, execIn, type Spawned, spawnIn, waitFor } from './exec.js';
import { type NatLab, SERVER_V4 } from './natlab.js';
import { CLI } from './natlab-nodes.js';

const CONTROL_PORT = 8080;

/** What a lab test asks of its control server, Headscale's or ours. */
export interface LabControlServer {
  readonly url: string;
  /** Replaces the ACL policy and waits until the server has it. */
  setPolicy(policy: object): Promise<void>;
  /** Approves routes a node advertised, as an admin does. */
  approveRoutes(hostname: string, routes: readonly string[]): Promise<void>;
  /** A reusable pre-auth key. */
  authKey(): Promise<string>;
}

export class OurLabControl implements LabControlServer {
  readonly url = `http://${SERVER_V4}:${CONTROL_PORT}`;

  private constructor(
    private readonly lab: NatLab,
    private readonly stateDir: string,
    private readonly policyFile: string,
    private readonly proc: Spawned,
  ) {}

  static async start(lab: NatLab, policy: object): Promise<OurLabControl> {
    if (!CLI) throw new Error('our CLI is not built (npm run build)');
    const dir = await tempDir(lab.cleanup, 'qs-natlab-ctl-');
    const stateDir = join(dir, 'state');
    const policyFile = join(dir, 'policy.json');
    await writeFile(policyFile, JSON.stringify(policy));
    const args = ['control', 'serve', '--addr', `${SERVER_V4}:${CONTROL_PORT}`, '--state-dir', stateDir];
    const proc = spawnIn(lab.inet, process.execPath, [CLI, ...args, '--derp', '--policy', policyFile], {
      cleanup: lab.cleanup,
    });
    await waitFor(
      'our control server in the lab',
      () => {
        if (!proc.isRunning()) throw new Error(`control serve exited:\n${proc.output()}`);
        return proc.output().includes('control server listening') ? true : undefined;
      },
      30_000,
      200,
    );
    return new OurLabControl(lab, stateDir, policyFile, proc);
  }

  /** Rewrites the policy file and has the server reload it (SIGHUP), as Headscale's rig does. */
  async setPolicy(policy: object): Promise<void> {
    const reloads = () => this.proc.output().split('policy reloaded').length;
    const before = reloads();
    await writeFile(this.policyFile, JSON.stringify(policy));
    this.proc.child.kill('SIGHUP');
    await waitFor('the policy reloaded', () => (reloads() > before ? true : undefined), 10_000, 50);
  }

  /** `quackscale control approve-routes`, from the server's own host (the admin API answers no other). */
  async approveRoutes(hostname: string, routes: readonly string[]): Promise<void> {
    await execIn(this.lab.inet, process.execPath, [
      CLI!,
      'control',
      'approve-routes',
      '--state-dir',
      this.stateDir,
      '--node',
      hostname,
      '--routes',
      routes.join(','),
    ]);
  }

  async authKey(): Promise<string> {
    const args = ['control', 'authkey', '--state-dir', this.stateDir, '--reusable'];
    return (await exec(process.execPath, [CLI!, ...args])).stdout.trim();
  }
}
