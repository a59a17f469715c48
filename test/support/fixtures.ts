/** The real-data fixtures in test/fixtures (provenance in each folder's README.md). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';

export const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures');

function fixtureReader(kind: string) {
  const read = (name: string): string => readFileSync(join(FIXTURES_DIR, kind, name), 'utf8');
  read.path = (name: string): string => join(FIXTURES_DIR, kind, name);
  return read;
}

export const fluxFixture = fixtureReader('flux');
export const slurmFixture = fixtureReader('slurm');
