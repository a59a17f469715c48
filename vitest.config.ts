import { defineConfig } from 'vitest/config';

// Tiers are in the file names and are vitest projects, so each runs alone
// (`npm run test:unit`, `test:int`, `test:e2e`; `npm test` runs all three):
//   unit  *.unit.test.ts  pure functions, no I/O beyond temp files
//   int   *.int.test.ts   real chDB, Kafka, Slurm
//   e2e   *.e2e.test.ts   the built CLI (dist/) and an MCP client
// Integration tests open chDB data directories, which one process can hold at a time, so files
// run in separate forked workers.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: ['unit', 'int', 'e2e'].map((name) => ({ extends: true, test: { name, include: [`test/**/*.${name}.test.ts`] } })),
  },
});
