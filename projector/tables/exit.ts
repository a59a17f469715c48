/**
 * How a job's process ended, one rule for every scheduler (the `jobs` columns exit_code, signal,
 * signal_name, oom). Pure.
 *
 * - exit_code: the exit status when the process exited (WIFEXITED), null when it did not: killed
 *   by a signal, or it never ran (a job canceled while pending, an exec or alloc exception).
 * - signal / signal_name: the signal that ended it (WIFSIGNALED), null / '' otherwise.
 * - oom: the scheduler says the job ran out of memory (Slurm OUT_OF_MEMORY or its SIG_OOM
 *   marker, sacct `0:125`; a Flux exception of type `oom`).
 *
 * A batch script that ran a program killed by a signal usually exits 128 + signal itself (the
 * shell's convention); that is an exit status like any other and stays one.
 */

export interface ProcessEnd {
  exit_code: number | null;
  signal: number | null;
  signal_name: string;
}

export const NO_END: ProcessEnd = { exit_code: null, signal: null, signal_name: '' };

/**
 * Slurm's SIG_OOM (253): the value slurmstepd stores as a step's status when the cgroup reports
 * an OOM kill; as a wait status that is "signal" 253 & 0x7f = 125, which sacct prints as `0:125`.
 */
export const SLURM_SIG_OOM_TERMSIG = 253 & 0x7f;

const LINUX_SIGNALS = [
  '', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1',
  'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

/** Linux signal name: SIGSEGV for 11, SIGRTMIN+n for 34..64, '' for anything else. */
export function signalName(n: number): string {
  if (Number.isInteger(n) && n >= 1 && n < LINUX_SIGNALS.length) return LINUX_SIGNALS[n]!;
  if (n === 32 || n === 33) return `SIG${n}`; // reserved by glibc's threads
  if (Number.isInteger(n) && n >= 34 && n <= 64) return n === 34 ? 'SIGRTMIN' : `SIGRTMIN+${n - 34}`;
  return '';
}

const isSignal = (n: number) => Number.isInteger(n) && n >= 1 && n <= 64;

export function exited(code: number): ProcessEnd {
  return { exit_code: code, signal: null, signal_name: '' };
}

export function signaled(sig: number): ProcessEnd {
  return isSignal(sig) ? { exit_code: null, signal: sig, signal_name: signalName(sig) } : NO_END;
}

/**
 * A raw wait status (waitpid): exited → its status, signaled → the signal; a stopped status,
 * or a termination "signal" that is no signal (Slurm's SIG_OOM marker), tells neither.
 */
export function fromWaitStatus(status: number | null): ProcessEnd {
  if (status === null || !Number.isInteger(status) || status < 0) return NO_END;
  const termsig = status & 0x7f;
  if (termsig === 0) return exited((status >> 8) & 0xff);
  if (termsig === 0x7f) return NO_END;
  return signaled(termsig);
}

/** sacct's ExitCode "exit:signal" pair; a signal of 0 means it exited, 125 is SIG_OOM. */
export function fromExitSignalPair(exit: number | null, sig: number | null): ProcessEnd {
  if (sig !== null && sig !== 0) return signaled(sig);
  return exit === null ? NO_END : exited(exit);
}

/** Whether a wait status or a sacct signal is Slurm's out-of-memory marker. */
export function isSlurmOomStatus(status: number | null): boolean {
  return status !== null && status >= 0 && (status & 0x7f) === SLURM_SIG_OOM_TERMSIG;
}
