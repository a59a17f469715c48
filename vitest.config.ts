import { defineConfig } from 'vitest/config';

// Tiers are in the file names: *.unit.test.ts (pure), *.int.test.ts (real chDB / Kafka / Slurm),
// *.e2e.test.ts (the built CLI and an MCP client). Integration tests open chDB data directories,
// which one process can hold at a time, so files run in separate forked workers.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
