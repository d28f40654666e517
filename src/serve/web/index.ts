// The web page's entry for the server (src/serve/webAssets.ts loads this file): url path -> asset, built in memory.
export { buildWebAssets, ORT_FILES, type WebAsset, type WebAssets } from './build.ts';
