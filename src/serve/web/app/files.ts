/** What the page accepts as a photo: checked before anything is uploaded (the server checks again). */

/** Larger photos are refused (10 MB). */
export const MAX_BYTES = 10 * 1024 * 1024;

/** Content type -> the file names that type is guessed from when the browser gives no type. */
const ACCEPTED = new Map([
  ['image/jpeg', /\.jpe?g$/i],
  ['image/png', /\.png$/i],
  ['image/webp', /\.webp$/i],
]);

/** Why the page refuses `f` (a sentence naming the file), or null. */
export function checkFile(f: Pick<File, 'name' | 'type' | 'size'>): string | null {
  const known = f.type ? ACCEPTED.has(f.type) : [...ACCEPTED.values()].some((re) => re.test(f.name));
  if (!known)
    return `"${f.name}" is not a JPEG, PNG or WebP image${f.type ? ` (its type is ${f.type})` : ''}. Please choose a photo.`;
  if (f.size > MAX_BYTES) return `"${f.name}" is ${(f.size / 1048576).toFixed(1)} MB; photos up to 10 MB are accepted.`;
  if (f.size === 0) return `"${f.name}" is empty.`;
  return null;
}

/** The content type to upload `f` with (the browser may leave File.type empty; checkFile accepted the name). */
export function contentType(f: Pick<File, 'name' | 'type'>): string {
  if (f.type) return f.type;
  for (const [type, re] of ACCEPTED) if (re.test(f.name)) return type;
  return 'application/octet-stream';
}
