/**
 * A scribe's local checkpoint: the source's opaque resume position, saved atomically (write a
 * temp file, fsync it, rename it over the old one, fsync the directory) only after the log
 * accepted the events it covers, so a crash leaves the old checkpoint or the new one, never a
 * torn one.
 *
 * Only a missing file means "no checkpoint". A file that is empty, not JSON or not a checkpoint
 * the source knows is an error that names the file and what to do (`CheckpointError`): silently
 * starting over would re-read (and re-publish) the whole source.
 */
import { mkdirSync, openSync, writeSync, fsyncSync, closeSync, renameSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface CheckpointStore {
  load(): string | undefined;
  save(checkpoint: string): void;
  /** Where the checkpoint is kept (a file path), for messages. */
  readonly where?: string;
}

/**
 * A checkpoint that cannot be used. Sources throw it without `where` (they only see the text);
 * the scribe adds the store's file (`at`), and the message then says how to recover.
 */
export class CheckpointError extends Error {
  readonly retriable = false;
  constructor(
    readonly reason: string,
    readonly where?: string,
  ) {
    super(where === undefined ? `checkpoint is unreadable (${reason})` : unreadableMessage(where, reason));
    this.name = 'CheckpointError';
  }

  /** The same error naming the checkpoint's file (kept when it names one already). */
  at(where: string | undefined): CheckpointError {
    return this.where !== undefined || where === undefined ? this : new CheckpointError(this.reason, where);
  }
}

function unreadableMessage(where: string, reason: string): string {
  return (
    `checkpoint ${where} is unreadable (${reason}): restore it, or delete it to re-read the source from the start ` +
    `(events already published are deduplicated by their (cluster, job_id, seq) identity)`
  );
}

export function fileCheckpointStore(path: string): CheckpointStore {
  return {
    where: path,
    load() {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new CheckpointError((err as Error).message, path);
      }
      if (text.trim() === '') throw new CheckpointError('the file is empty', path);
      // Every source's checkpoint is JSON: a torn or garbage file is caught here, with its name.
      try {
        JSON.parse(text);
      } catch (err) {
        throw new CheckpointError(`not JSON: ${(err as Error).message}`, path);
      }
      return text;
    },
    save(checkpoint) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileAtomic(path, checkpoint);
    },
  };
}

/** Replaces a file atomically: writes `<path>.tmp`, fsyncs it, renames it over `path`, fsyncs the directory. */
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
  // The rename itself is durable only once the directory is.
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
