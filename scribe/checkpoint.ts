/**
 * A scribe's local checkpoint: the source's opaque resume position, saved atomically (write,
 * fsync, rename) only after the log accepted the events it covers.
 */
import { mkdirSync, openSync, writeSync, fsyncSync, closeSync, renameSync, readFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';

export interface CheckpointStore {
  load(): string | undefined;
  save(checkpoint: string): void;
}

export function fileCheckpointStore(path: string): CheckpointStore {
  return {
    load: () => (existsSync(path) ? readFileSync(path, 'utf8') : undefined),
    save(checkpoint) {
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.tmp`;
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, checkpoint);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    },
  };
}
