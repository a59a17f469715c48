/**
 * deploy/systemd: the units pass `systemd-analyze verify` without a single warning (unknown keys
 * and bad values are only warnings there, so any output fails), their hardening keeps
 * `systemd-analyze security` exposure low, each runs the user it must, each ExecStart names a real
 * subcommand with real flags, and every variable of the example environment files is a setting.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_KEYS, envName } from '../../schemas/config.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { prerequisite } from '../support/prereq.js';

const DIR = join(REPO_ROOT, 'deploy', 'systemd');
/** Unit file → the name it is verified under (templates get an instance: the cluster name). */
const UNITS: Record<string, string> = {
  'jobscribe-projector.service': 'jobscribe-projector.service',
  'jobscribe-mcp.service': 'jobscribe-mcp.service',
  'jobscribe-scribe-flux@.service': 'jobscribe-scribe-flux@tioga.service',
  'jobscribe-scribe-slurm@.service': 'jobscribe-scribe-slurm@slurmy.service',
};

function directives(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(join(DIR, unit), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}
const one = (d: Map<string, string[]>, key: string) => d.get(key)?.at(-1);

let ready = false;
let work: string;
beforeAll(async () => {
  ready = await prerequisite('systemd-analyze', async () => (spawnSync('systemd-analyze', ['--version']).status === 0 ? undefined : 'systemd-analyze not found (Debian: apt-get install systemd)'));
  work = mkdtempSync(join(tmpdir(), 'jobscribe-units-'));
  // The units name /usr/bin/node; verify checks the binary exists, so use the running one.
  for (const unit of Object.keys(UNITS)) {
    writeFileSync(join(work, unit), readFileSync(join(DIR, unit), 'utf8').replaceAll('/usr/bin/node ', `${process.execPath} `));
  }
});

describe('systemd units', () => {
  it('the folder holds exactly the units this test checks', () => {
    expect(readdirSync(DIR).filter((f) => f.endsWith('.service')).sort()).toEqual(Object.keys(UNITS).sort());
  });

  for (const [unit, instance] of Object.entries(UNITS)) {
    it(`${instance}: systemd-analyze verify reports nothing, security exposure stays low`, (ctx) => {
      if (!ready) return ctx.skip();
      const verify = spawnSync('systemd-analyze', ['verify', join(work, instance)], { encoding: 'utf8' });
      expect({ status: verify.status, output: (verify.stdout + verify.stderr).trim() }).toEqual({ status: 0, output: '' });
      const security = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', join(work, instance)], { encoding: 'utf8' });
      const level = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(security.stdout)?.[1]);
      process.stdout.write(`  ${instance}: exposure ${level}\n`);
      expect(level).toBeLessThanOrEqual(unit.includes('slurm') ? 3.5 : 2.5);
    });

    it(`${unit}: hardened, restarts on failure but not on a configuration error, runs a real subcommand`, async () => {
      const d = directives(unit);
      for (const [key, value] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', PrivateTmp: 'yes', PrivateDevices: 'yes', Restart: 'on-failure', RestartPreventExitStatus: '2', UMask: '0077' })) {
        expect(one(d, key), `${unit} ${key}`).toBe(value);
      }
      const exec = one(d, 'ExecStart')!.split(/\s+/);
      expect(exec.slice(0, 2)).toEqual(['/usr/bin/node', '/opt/jobscribe/dist/deploy/cli.js']);
      const [sub, ...args] = exec.slice(2);
      const help = await runCli([sub!, '--help']);
      expect(help.code, `jobscribe ${sub} --help`).toBe(0);
      for (const flag of args.filter((a) => a.startsWith('--'))) expect(help.stdout, `jobscribe ${sub} has ${flag}`).toContain(flag);
    });
  }

  it('each process runs as the user it must, with no capability it does not use', () => {
    for (const unit of ['jobscribe-projector.service', 'jobscribe-mcp.service']) {
      expect(one(directives(unit), 'User'), unit).toBe('jobscribe');
      expect(one(directives(unit), 'CapabilityBoundingSet'), unit).toBe('');
    }
    const flux = directives('jobscribe-scribe-flux@.service');
    expect(one(flux, 'User')).toBe('flux'); // the instance owner
    expect(one(flux, 'CapabilityBoundingSet')).toBe('');
    expect(flux.get('Environment')!.join(' ')).toContain('JOBSCRIBE_CLUSTER=%i');
    const slurm = directives('jobscribe-scribe-slurm@.service');
    expect(one(slurm, 'User')).toBe('root'); // runuser -u USER for each action needs setuid
    expect(one(slurm, 'CapabilityBoundingSet')!.split(' ').sort()).toEqual(['CAP_AUDIT_WRITE', 'CAP_DAC_READ_SEARCH', 'CAP_SETGID', 'CAP_SETUID']);
  });

  it('every variable in the example environment files is a jobscribe setting', () => {
    const known = new Set(CONFIG_KEYS.map(envName));
    const examples = readdirSync(DIR).filter((f) => f.endsWith('.env.example'));
    expect(examples.length).toBeGreaterThanOrEqual(3);
    let seen = 0;
    for (const f of examples) {
      for (const m of readFileSync(join(DIR, f), 'utf8').matchAll(/^#?\s*(JOBSCRIBE_[A-Z0-9_]+)=/gm)) {
        expect(known.has(m[1]!), `${f}: ${m[1]} is not a setting`).toBe(true);
        seen++;
      }
    }
    expect(seen).toBeGreaterThan(10);
  });

  it('the sysusers entry creates the user the projector and MCP units name', (ctx) => {
    if (!ready) return ctx.skip();
    const root = mkdtempSync(join(tmpdir(), 'jobscribe-sysusers-'));
    execFileSync('mkdir', ['-p', join(root, 'etc')]);
    copyFileSync('/etc/passwd', join(root, 'etc', 'passwd'));
    copyFileSync('/etc/group', join(root, 'etc', 'group'));
    const r = spawnSync('systemd-sysusers', ['--root', root, join(DIR, 'jobscribe.sysusers.conf')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(root, 'etc', 'passwd'), 'utf8')).toMatch(/^jobscribe:x:\d+:\d+:[^:]*:\/var\/lib\/jobscribe:\/usr\/sbin\/nologin$/m);
  });
});
