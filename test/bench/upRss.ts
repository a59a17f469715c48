/**
 * The memory part of `npm run bench` for `jobscribe up` (issue 13 item 5): the built CLI runs
 * `up` on a temp data dir with a fast simulator (BENCH_UP_SPEED simulated seconds per second,
 * default 3600, on BENCH_UP_NODES nodes, default 256) for BENCH_UP_SECONDS (default 60); its RSS
 * is sampled from /proc every 5 s. Then `up` is stopped with SIGINT and `status --json` says how
 * many events it recorded, so the RSS comes with the load it carried. BENCH_UP=0 skips.
 * Linux only (reads /proc/<pid>/status).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../deploy/cli.js', import.meta.url));

function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

export async function benchUpRss(): Promise<void> {
  const seconds = Number(process.env.BENCH_UP_SECONDS ?? 60);
  const speed = Number(process.env.BENCH_UP_SPEED ?? 3600);
  const nodes = Number(process.env.BENCH_UP_NODES ?? 256);
  const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-bench-up-'));
  try {
    const child = spawn(process.execPath, [CLI, 'up', '--data-dir', dataDir, '--http-port', '0', '--sim-speed', String(speed), '--sim-nodes', String(nodes), '--log-level', 'warn'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const samples: number[] = [];
    const started = Date.now();
    while (Date.now() - started < seconds * 1000 && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 5000));
      const r = rssMiB(child.pid!);
      if (r !== undefined) samples.push(r);
    }
    if (child.exitCode !== null) throw new Error(`up exited early (${child.exitCode}): ${stderr}`);
    child.kill('SIGINT');
    await exited;
    const status = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [CLI, 'status', '--json', '--data-dir', dataDir], { timeout: 120_000 }, (err, out) => (err ? reject(new Error(`jobscribe status failed: ${err.message}`, { cause: err })) : resolve(out))),
    );
    const events = Number((JSON.parse(status) as { job_events: number }).job_events);
    console.log(
      `up (sim ${speed}x, ${nodes} nodes, ${seconds} s)  rss every 5 s: ${samples.join(' ')} MiB (max ${Math.max(...samples)}); ` +
        `${events} events projected (${Math.round(events / seconds).toLocaleString()} events/s on average)`,
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
