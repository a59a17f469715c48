/**
 * Suites that need an outside service (Kafka, Slurm) call `prerequisite` in a beforeAll. When
 * the service is missing the suite is skipped LOUDLY locally, and FAILS under CI=true: CI must
 * never pass by skipping.
 */
export function inCI(): boolean {
  return process.env.CI === 'true' || process.env.CI === '1';
}

export async function prerequisite(name: string, check: () => Promise<string | undefined>): Promise<boolean> {
  let problem: string | undefined;
  try {
    problem = await check();
  } catch (err) {
    problem = (err as Error).message;
  }
  if (!problem) return true;
  const msg = `${name} is not available: ${problem}`;
  if (inCI()) throw new Error(`${msg} (CI=true: failing instead of skipping)`);
  process.stderr.write(`\n\n!!!!!!!!!! SKIPPING ${name} suite: ${msg} !!!!!!!!!!\n\n`);
  return false;
}

/**
 * One test whose prerequisite is missing (e.g. it must restart a broker it does not own): skipped
 * LOUDLY locally, and under CI=true it FAILS instead.
 */
export function skipLoudly(skip: () => void, name: string, problem: string): never {
  const msg = `${name}: ${problem}`;
  if (inCI()) throw new Error(`${msg} (CI=true: failing instead of skipping)`);
  process.stderr.write(`\n\n!!!!!!!!!! SKIPPING ${msg} !!!!!!!!!!\n\n`);
  skip();
  throw new Error('unreachable: skip() returns only outside a test');
}
