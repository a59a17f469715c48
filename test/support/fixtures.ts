/** The shared real-data fixtures (../shared/fixtures beside the repo, or JOBSCRIBE_SHARED_DIR). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';

export const SHARED_DIR = process.env.JOBSCRIBE_SHARED_DIR ?? join(REPO_ROOT, '..', 'shared');

function fixtureReader(kind: string) {
  const read = (name: string): string => readFileSync(join(SHARED_DIR, 'fixtures', kind, name), 'utf8');
  read.path = (name: string): string => join(SHARED_DIR, 'fixtures', kind, name);
  return read;
}

export const fluxFixture = fixtureReader('flux');
export const slurmFixture = fixtureReader('slurm');
