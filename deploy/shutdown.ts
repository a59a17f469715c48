/** SIGINT/SIGTERM handling for long-running commands; returns a function removing the handlers. */
export function onShutdown(handler: (signal: NodeJS.Signals) => void): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  let seen = 0;
  const listener = (sig: NodeJS.Signals) => {
    seen += 1;
    if (seen > 1) {
      process.stderr.write(`jobscribe: second ${sig}, exiting now\n`);
      process.exit(130);
    }
    handler(sig);
  };
  for (const s of signals) process.on(s, listener);
  return () => {
    for (const s of signals) process.off(s, listener);
  };
}
