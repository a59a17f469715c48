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
      writeFileAtomic(path, checkpoint);
    },
  };
}

/** Replaces a file atomically: writes `<path>.tmp`, fsyncs it, renames it over `path`. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
