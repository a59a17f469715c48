/**
 * Slurm actions: the argv each action runs, and Slurm's own stderr (captured from the Slurm
 * 22.05.8 of deploy/slurm/start-slurm.sh) turned into typed ActionResults.
 */
import { describe, expect, it } from 'vitest';
import {
  classifySlurmError,
  executeSlurmAction,
  runuserAs,
  shellQuote,
  slurmActionCommand,
  slurmMessage,
  slurmRunAs,
  type ScribeUser,
  type SlurmActionRequest,
} from '../../scribe/slurm/actions.js';
import { bareEnvironment, type CliResult, type CommandRunner } from '../../scribe/slurm/cliRunner.js';

/** The scribe these tests run as, unless a test says otherwise: not root. */
const SCRIBE: ScribeUser = { uid: 1234, name: 'scribe' };
const ROOT: ScribeUser = { uid: 0, name: 'root' };

const PLUGIN_NOISE = `scancel: select/cons_tres: common_init: select/cons_tres loaded
scancel: select/cray_aries: init: Cray/Aries node selection plugin loaded
scancel: select/linear: init: Linear node selection plugin loaded with argument 4
scancel: select/cons_res: common_init: select/cons_res loaded
`;

/** Real stderr (and exit status) of the commands, as Slurm 22.05.8 printed them. */
const CAPTURED: Record<string, { code: number; stderr: string }> = {
  'scancel unknown': { code: 0, stderr: 'scancel: Terminating job 99999\nscancel: error: Kill job error on job id 99999: Invalid job id specified\n' },
  'scancel finished': { code: 0, stderr: 'scancel: Terminating job 5\nscancel: error: Kill job error on job id 5: Job/step already completing or completed\n' },
  'scancel not owner': { code: 210, stderr: 'scancel: Terminating job 12\nscancel: error: Kill job error on job id 12: Access/permission denied\n' },
  'signal pending': {
    code: 228,
    stderr: `${PLUGIN_NOISE}scancel: Signal 10 to full job 12\n${'scancel: Job is in transitional state, retrying\n'.repeat(3)}scancel: error: Kill job error on job id 12: Job can not be altered now, try again later\n`,
  },
  'signal bad name': { code: 1, stderr: 'Unknown job signal: FOO\n' },
  'hold unknown': { code: 1, stderr: 'Invalid job id specified for job 99999\nslurm_suspend error: Invalid job id specified\n' },
  'hold finished': { code: 1, stderr: 'Job has already finished for job 5\nslurm_suspend error: Job has already finished\n' },
  'hold not owner': { code: 1, stderr: 'Invalid user id for job 4\nslurm_suspend error: Invalid user id\n' },
  'priority held': { code: 1, stderr: 'Job is in held state, pending scheduler release for job 5\n' },
  'update not owner': { code: 1, stderr: 'Invalid user id for job 4\n' },
  'timelimit bad': { code: 1, stderr: 'scontrol: error: Invalid TimeLimit value\n' },
  'sbatch no shebang': {
    code: 1,
    stderr:
      'sbatch: error: This does not look like a batch script.  The first\nsbatch: error: line must start with #! followed by the path to an interpreter.\nsbatch: error: For instance: #!/bin/sh\n',
  },
  'sbatch bad partition': { code: 1, stderr: 'sbatch: error: invalid partition specified: nosuch\nsbatch: error: Batch job submission failed: Invalid partition name specified\n' },
  'controller down': { code: 1, stderr: 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n' },
};

type Call = { argv: readonly string[]; input?: string; bareEnv?: boolean };

function answering(result: Partial<CliResult>): { run: CommandRunner; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    run: async (argv, opts) => {
      calls.push({ argv, input: opts?.input, ...(opts?.bareEnv && { bareEnv: true }) });
      return { code: 0, stdout: '', stderr: '', timedOut: false, ...result };
    },
  };
}

const act = (req: SlurmActionRequest, result: Partial<CliResult> = {}, scribeUser: ScribeUser = SCRIBE) => {
  const fake = answering(result);
  return executeSlurmAction(req, { run: fake.run, timeoutMs: 1000, submitTimeoutMs: 1000, scribeUser }).then((r) => ({ r, calls: fake.calls }));
};

describe('slurm actions: commands', () => {
  it('builds the CLI invocation of each action', () => {
    const argv = (req: SlurmActionRequest) => {
      const c = slurmActionCommand(req);
      return c.ok ? c.argv : c;
    };
    expect(argv({ action: 'cancel', job_id: '12' })).toEqual(['scancel', '--verbose', '12']);
    expect(argv({ action: 'signal', job_id: '12', args: { signum: 10 } })).toEqual(['scancel', '--verbose', '--full', '--signal=10', '12']);
    expect(argv({ action: 'signal', job_id: '12', args: { signal: 'SIGUSR1' } })).toEqual(['scancel', '--verbose', '--full', '--signal=USR1', '12']);
    expect(argv({ action: 'hold', job_id: '7' })).toEqual(['scontrol', 'hold', '7']);
    expect(argv({ action: 'hold', job_id: '7', args: { by: 'user' } })).toEqual(['scontrol', 'uhold', '7']);
    expect(argv({ action: 'release', job_id: '7' })).toEqual(['scontrol', 'release', '7']);
    expect(argv({ action: 'urgency', job_id: '7', args: { priority: 1000, nice: 5 } })).toEqual(['scontrol', 'update', 'JobId=7', 'Priority=1000', 'Nice=5']);
    expect(argv({ action: 'urgency', job_id: '7', args: { urgency: 3 } })).toEqual(['scontrol', 'update', 'JobId=7', 'Priority=3']);
    expect(argv({ action: 'time_limit', job_id: '7', args: { time_limit_s: 90 } })).toEqual(['scontrol', 'update', 'JobId=7', 'TimeLimit=2']);
    expect(argv({ action: 'time_limit', job_id: '7', args: { time_limit: 'unlimited' } })).toEqual(['scontrol', 'update', 'JobId=7', 'TimeLimit=UNLIMITED']);
    expect(argv({ action: 'submit', args: { command: ['echo', "it's", 'ok'], name: 'x', time_limit_s: 60, hold: true, workdir: '/tmp' } })).toEqual([
      'sbatch',
      '--parsable',
      '--job-name=x',
      '--time=1',
      '--chdir=/tmp',
      '--hold',
      `--wrap=echo 'it'\\''s' ok`,
    ]);
    expect(runuserAs('alice', ['scancel', '1'])).toEqual(['runuser', '-u', 'alice', '--', 'scancel', '1']);
    expect(shellQuote('a b')).toBe("'a b'");
  });

  it('refuses bad requests before running anything', async () => {
    for (const req of [
      { action: 'cancel' },
      { action: 'cancel', job_id: '12_3' },
      { action: 'signal', job_id: '1' },
      { action: 'signal', job_id: '1', args: { signal: 'kill -9; rm' } },
      { action: 'urgency', job_id: '1', args: {} },
      { action: 'time_limit', job_id: '1', args: { time_limit: '1 hour' } },
      { action: 'submit', args: {} },
      { action: 'submit', args: { script: '#!/bin/sh\n', command: 'true' } },
      { action: 'submit', args: { command: 'true', extra_args: ['; rm -rf /'] } },
    ] as SlurmActionRequest[]) {
      const { r, calls } = await act(req);
      expect(r, JSON.stringify(req)).toMatchObject({ ok: false, code: 'invalid' });
      expect(calls).toEqual([]);
    }
    expect((await act({ action: 'frobnicate' as 'cancel', job_id: '1' })).r).toMatchObject({ ok: false, code: 'unsupported' });
  });

  it('submit: the script goes to stdin; the new job id comes back', async () => {
    const { r, calls } = await act({ action: 'submit', args: { script: '#!/bin/sh\ntrue\n', partition: 'debug' }, user: 'scribe' }, { stdout: '42;ci\n' });
    expect(r).toMatchObject({ ok: true, job_id: '42' });
    expect(calls[0]).toEqual({ argv: ['sbatch', '--parsable', '--partition=debug'], input: '#!/bin/sh\ntrue\n', bareEnv: true });
  });

  it('a root scribe runs every action of a user through runuser, in a bare environment', async () => {
    for (const [req, argv] of [
      [{ action: 'hold', job_id: '3' }, ['scontrol', 'hold', '3']],
      [{ action: 'release', job_id: '3' }, ['scontrol', 'release', '3']],
      [{ action: 'cancel', job_id: '3' }, ['scancel', '--verbose', '3']],
      [{ action: 'signal', job_id: '3', args: { signal: 'USR1' } }, ['scancel', '--verbose', '--full', '--signal=USR1', '3']],
      [{ action: 'urgency', job_id: '3', args: { nice: 5 } }, ['scontrol', 'update', 'JobId=3', 'Nice=5']],
      [{ action: 'submit', args: { command: 'id', name: 'probe' } }, ['sbatch', '--parsable', '--job-name=probe', '--wrap=id']],
    ] as Array<[Omit<SlurmActionRequest, 'user'>, string[]]>) {
      const { calls } = await act({ ...req, user: 'alice' }, { stdout: '7\n' }, ROOT);
      expect(calls, req.action).toEqual([{ argv: ['runuser', '-u', 'alice', '--', ...argv], input: undefined, bareEnv: true }]);
    }
  });

  it('submit: never as the scribe on someone\'s behalf; refused without a user, and by a scribe that is not root for another user', async () => {
    const submit = { action: 'submit', args: { command: 'id' } } as const;
    for (const scribe of [ROOT, SCRIBE]) {
      const none = await act(submit, {}, scribe);
      expect(none.r).toEqual({ ok: false, code: 'not_permitted', message: 'submit: no scheduler user to submit as; the scribe submits only as the requesting user, never as itself' });
      expect(none.calls).toEqual([]);
    }
    const other = await act({ ...submit, user: 'alice' }, {}, SCRIBE);
    expect(other.r).toMatchObject({ ok: false, code: 'not_permitted', message: expect.stringMatching(/^submit as alice: refused: this scribe does not run as root, so it cannot run sbatch as alice \(run the Slurm scribe as root/) });
    expect(other.calls).toEqual([]);
    // the scribe's own user: sbatch as it is, still in a bare environment
    const own = await act({ ...submit, user: 'scribe' }, { stdout: '9\n' }, SCRIBE);
    expect(own.r).toMatchObject({ ok: true, job_id: '9' });
    expect(own.calls).toEqual([{ argv: ['sbatch', '--parsable', '--wrap=id'], input: undefined, bareEnv: true }]);
    // root acting as root: no runuser
    expect((await act({ ...submit, user: 'root' }, { stdout: '9\n' }, ROOT)).calls[0]!.argv).toEqual(['sbatch', '--parsable', '--wrap=id']);
  });

  it('other actions: an admin without a user, or a user on a scribe that is not root, act with the scribe\'s authority (after the owner check)', () => {
    const argv = ['scancel', '--verbose', '3'];
    expect(slurmRunAs(ROOT, { action: 'cancel' }, argv)).toEqual({ ok: true, argv, bareEnv: false });
    expect(slurmRunAs(SCRIBE, { action: 'cancel', user: 'alice' }, argv)).toEqual({ ok: true, argv, bareEnv: false });
  });

  it('a user name that is not one is refused before anything runs', async () => {
    for (const user of ['-froot', '', 'a b', 'x;rm', 'a'.repeat(65)]) {
      const { r, calls } = await act({ action: 'cancel', job_id: '3', user }, {}, ROOT);
      expect(r, user).toMatchObject({ ok: false, code: 'invalid' });
      expect(calls).toEqual([]);
    }
  });

  it('a bare environment keeps where the CLIs and the cluster are, and drops everything else', () => {
    const env = { PATH: '/usr/sbin:/usr/bin', SLURM_CONF: '/etc/slurm/slurm.conf', LANG: 'C.UTF-8', SLURM_JWT: 'root-token', JOBSCRIBE_KAFKA_PASSWORD: 'pw', HOME: '/root', AWS_SECRET_ACCESS_KEY: 'k' };
    expect(bareEnvironment(env)).toEqual({ PATH: '/usr/sbin:/usr/bin', SLURM_CONF: '/etc/slurm/slurm.conf', LANG: 'C.UTF-8' });
  });
});

describe("slurm actions: Slurm's refusals", () => {
  const cases: Array<[string, SlurmActionRequest, string, RegExp]> = [
    ['scancel unknown', { action: 'cancel', job_id: '99999' }, 'no_such_job', /^cancel job 99999: Invalid job id specified$/],
    ['scancel finished', { action: 'cancel', job_id: '5' }, 'invalid', /already completing or completed/],
    ['scancel not owner', { action: 'cancel', job_id: '12' }, 'not_permitted', /Access\/permission denied/],
    ['signal pending', { action: 'signal', job_id: '12', args: { signum: 10 } }, 'invalid', /^signal job 12: Job can not be altered now, try again later$/],
    ['signal bad name', { action: 'signal', job_id: '12', args: { signal: 'FOO' } }, 'invalid', /Unknown job signal: FOO/],
    ['hold unknown', { action: 'hold', job_id: '99999' }, 'no_such_job', /^hold job 99999: Invalid job id specified$/],
    ['hold finished', { action: 'hold', job_id: '5' }, 'invalid', /Job has already finished/],
    ['hold not owner', { action: 'hold', job_id: '4' }, 'not_permitted', /Invalid user id/],
    ['priority held', { action: 'urgency', job_id: '5', args: { priority: 5 } }, 'invalid', /held state/],
    ['update not owner', { action: 'urgency', job_id: '4', args: { nice: -5 } }, 'not_permitted', /Invalid user id/],
    ['timelimit bad', { action: 'time_limit', job_id: '4', args: { time_limit: '99' } }, 'invalid', /Invalid TimeLimit value/],
    ['sbatch no shebang', { action: 'submit', args: { script: 'true' }, user: 'scribe' }, 'invalid', /does not look like a batch script/],
    ['sbatch bad partition', { action: 'submit', args: { command: 'true', partition: 'nosuch' }, user: 'scribe' }, 'invalid', /invalid partition specified: nosuch/],
    ['controller down', { action: 'release', job_id: '4' }, 'failed', /Unable to contact slurm controller/],
  ];
  for (const [capture, req, code, message] of cases) {
    it(`${capture} → ${code}`, async () => {
      const { r } = await act(req, CAPTURED[capture]);
      expect(r).toMatchObject({ ok: false, code });
      expect(r.ok ? '' : r.message).toMatch(message);
    });
  }

  it('a timeout is a failure that says so', async () => {
    const { r } = await act({ action: 'cancel', job_id: '1' }, { code: null, timedOut: true });
    expect(r).toMatchObject({ ok: false, code: 'failed', message: 'cancel job 1: scancel timed out after 1 s' });
  });

  it('helpers', () => {
    expect(slurmMessage(CAPTURED['signal pending']!.stderr)).toBe('Job can not be altered now, try again later');
    expect(classifySlurmError('')).toBe('failed');
  });
});
