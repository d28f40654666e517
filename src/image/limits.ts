// Limits on input images, apart from decode.ts so that code which only needs the numbers (the CLI's --help, the
// server's defaults) does not load sharp.

/** Images with more pixels than this are refused before their pixels are decoded. */
export const DEFAULT_MAX_PIXELS = 50_000_000;
