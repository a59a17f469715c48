/** A one-line progress bar with rate and ETA for replays and rebuilds (redrawn on a TTY). */
import type { ReplayProgress } from '../projector/rebuild.js';

export function progressBar(out: NodeJS.WriteStream, label: string) {
  let lastDraw = 0;
  let last: ReplayProgress | undefined;
  const draw = (p: ReplayProgress, final = false) => {
    const total = Number(p.total) || 1;
    const done = Math.max(0, total - Number(p.remaining));
    const frac = Math.min(1, done / total);
    const rate = p.elapsedMs > 0 ? (done / p.elapsedMs) * 1000 : 0;
    const eta = rate > 0 ? Number(p.remaining) / rate : 0;
    const width = 30;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const line = `${label} [${bar}] ${(frac * 100).toFixed(1)}% ${done}/${total} offsets, ${Math.round(rate)}/s, ETA ${eta.toFixed(0)}s`;
    if (out.isTTY) out.write(`\r${line}${final ? '\n' : ''}`);
    else out.write(line + '\n');
  };
  return {
    update(p: ReplayProgress) {
      last = p;
      const now = Date.now();
      if (now - lastDraw >= (out.isTTY ? 100 : 2000)) {
        lastDraw = now;
        draw(p);
      }
    },
    done() {
      if (last) draw({ ...last, remaining: 0n }, true);
    },
  };
}
