/**
 * The browser page: src/serve/web (built by its own module) returns a map url path -> asset, served from memory
 * exactly as given. Nothing here touches the file system per request, so no URL can reach outside it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface WebAsset {
  body: Buffer | string;
  /** Content-Type. */
  type: string;
}
/** url path ('/', '/app.js', ...) -> asset. */
export type WebAssets = Map<string, WebAsset>;
export type WebAssetsLoader = () => Promise<WebAssets>;

// Run from the sources (tsx) this file is webAssets.ts and the page's module index.ts; built, both are .js.
const WEB_MODULE = new URL(import.meta.url.endsWith('.ts') ? './web/index.ts' : './web/index.js', import.meta.url);

/** 'not built': the page's module is absent (a checkout without src/serve/web); anything else is a real failure. */
export type WebState = { kind: 'ready'; assets: WebAssets } | { kind: 'absent' } | { kind: 'failed'; error: Error };

/** Loads src/serve/web's buildWebAssets() when that module exists; null when it does not. */
export async function defaultWebAssets(): Promise<WebAssets | null> {
  if (!existsSync(fileURLToPath(WEB_MODULE))) return null;
  // A computed specifier: this file type-checks whether or not the web module is there yet.
  const mod = (await import(WEB_MODULE.href)) as { buildWebAssets?: WebAssetsLoader };
  if (typeof mod.buildWebAssets !== 'function')
    throw new Error(`${fileURLToPath(WEB_MODULE)} does not export buildWebAssets()`);
  return mod.buildWebAssets();
}

/** Builds the assets once, on first use (an esbuild bundle takes a moment); a failure is remembered, not retried per request. */
export function memoWebAssets(load: () => Promise<WebAssets | null>): () => Promise<WebState> {
  let state: Promise<WebState> | null = null;
  return () => {
    state ??= load().then(
      (assets): WebState => (assets ? { kind: 'ready', assets } : { kind: 'absent' }),
      (error: unknown): WebState => ({
        kind: 'failed',
        error: error instanceof Error ? error : new Error(String(error)),
      }),
    );
    return state;
  };
}
