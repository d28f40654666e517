import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** A sibling temp path, so the final rename stays on one filesystem and is atomic. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.tmp-${basename(path)}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Flushes a folder's entries (a rename into it, a new file) to disk. Best effort: some platforms and file systems
 * cannot open or fsync a folder (Windows, some network mounts), and there the rename is as durable as they make it.
 */
async function syncDir(dir: string): Promise<void> {
  let h: FileHandle | undefined;
  try {
    h = await open(dir, 'r');
    await h.sync();
  } catch {
    // not supported here: nothing more can be done
  } finally {
    await h?.close().catch(() => {});
  }
}

/**
 * Writes a file through a temp file, fsync and a rename: readers see the old file or the new one, never a
 * half-written one; a failed run leaves the old file in place, and after a crash (power loss included) the path
 * holds the old or the whole new content, as the data reaches the disk before the rename that publishes it.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    const h = await open(tmp, 'w');
    try {
      await h.writeFile(data);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dirname(path));
}

/**
 * Produces a whole directory in a temp sibling, then moves it into place, replacing any old one. The old folder
 * stays whole until the new one is complete and flushed: it is renamed aside, the new one renamed in, and only
 * then deleted (if the second rename fails, the old one is put back). Between those two renames (one system call
 * apart) the path is briefly absent, as no portable call swaps two folders; a crash there leaves the old folder
 * whole beside it (`.tmp-NAME-...-old`), never a half-written one at the path.
 */
export async function writeDirAtomic(path: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  await mkdir(tmp);
  try {
    await fill(tmp);
    await syncDir(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = `${tempPathFor(path)}-old`;
  const hadOld = await stat(path).then(
    () => true,
    () => false,
  );
  try {
    if (hadOld) await rename(path, old);
    try {
      await rename(tmp, path);
    } catch (e) {
      if (hadOld) await rename(old, path);
      throw e;
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  await syncDir(dirname(path));
  if (hadOld) await rm(old, { recursive: true, force: true });
}
