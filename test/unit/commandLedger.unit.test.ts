/**
 * scribe/commandLoop.ts CommandLedger: the scribe's write-ahead record of commands. Last line per
 * command wins across reopenings; the file is compacted while running (not only at restart), and
 * finished commands past their retention are dropped, so a long-running scribe's ledger stays
 * proportional to recent commands.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../support/tempDirs.js';
import { CommandLedger, type LedgerEntry } from '../../scribe/commandLoop.js';

const tempDir = tempDirs('jobscribe-ledger-');
function ledgerPath(): string {
  const d = tempDir();
  return join(d, 'sub', 'alpha.commands.jsonl');
}
const fileLines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const WEEK = 7 * 24 * 3600;

describe('CommandLedger', () => {
  it('the last state per command wins after reopening; a torn last line is ignored', () => {
    const path = ledgerPath();
    const l = new CommandLedger(path, () => 1000);
    l.put({ command_id: id(1), state: 'executing', expires_at: 1300, at: 1000 });
    l.put({ command_id: id(1), state: 'done', expires_at: 1300, at: 1001 });
    l.put({ command_id: id(2), state: 'awaiting_approval', expires_at: 5000, at: 1002 });
    writeFileSync(path, readFileSync(path, 'utf8') + '{"command_id":"torn', { flag: 'w' });
    const again = new CommandLedger(path, () => 1010);
    expect(again.get(id(1))?.state).toBe('done');
    expect(again.awaiting().map((e) => e.command_id)).toEqual([id(2)]);
    // Reopening compacted the file: one line per command.
    expect(fileLines(path).map((line) => (JSON.parse(line) as LedgerEntry).command_id)).toEqual([id(1), id(2)]);
  });

  it('compacts while running once stale lines pile up; nothing live is lost', () => {
    const path = ledgerPath();
    const l = new CommandLedger(path, () => 1000, 10);
    for (let round = 0; round < 50; round++) {
      for (let n = 0; n < 5; n++) l.put({ command_id: id(n), state: round % 2 ? 'done' : 'executing', expires_at: 2000, at: 1000 + round });
      expect(l.fileLines).toBeLessThanOrEqual(2 * 5 + 10 + 1);
    }
    expect(fileLines(path)).toHaveLength(l.fileLines);
    const reread = new CommandLedger(path, () => 1100);
    for (let n = 0; n < 5; n++) expect(reread.get(id(n))).toMatchObject({ state: 'done', at: 1049 });
  });

  it('drops finished commands a week past their expiry while running (hourly at least); awaiting ones stay', () => {
    const path = ledgerPath();
    let now = 1000;
    const l = new CommandLedger(path, () => now);
    l.put({ command_id: id(1), state: 'done', expires_at: 1300, at: 1000 });
    l.put({ command_id: id(2), state: 'awaiting_approval', expires_at: 1300, at: 1000 });
    now = 1300 + WEEK + 1;
    // Every line is live (no size trigger); the first put after the hour prunes.
    l.put({ command_id: id(10), state: 'done', expires_at: now + 300, at: now });
    expect(l.get(id(1))).toBeUndefined();
    expect(l.get(id(2))?.state).toBe('awaiting_approval');
    expect(fileLines(path)).toHaveLength(2);
    expect(new CommandLedger(path, () => now).get(id(1))).toBeUndefined();
  });
});
