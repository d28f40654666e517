// Entry of an ImageLoader worker thread. Node 20 does not pass tsx's loader hooks to worker threads, so this
// plain-JS entry registers tsx itself (resolved from this file, whatever the cwd) and then loads the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./loader-worker.ts');
