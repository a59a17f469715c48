/**
 * The Slurm source, for deploy/: `createSlurmSource(options)` polls squeue/sacct and runs
 * actions through the CLIs (README.md beside this file tells how and why).
 */
export { createSlurmSource, type SlurmSource, type SlurmSourceOptions } from './source.js';
export { runuserAs, type SlurmActionName, type SlurmActionRequest } from './actions.js';
export { spawnRunner, SlurmError, type CommandRunner, type CliResult, type CommandOptions } from './cliRunner.js';
