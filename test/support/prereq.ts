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
