// Which of the ten test views a TTA mode uses ('center': view 4 of the ten, the same box of the same resize); the
// averaging itself is image/tta.ts, shared with the server and the page.
import type { Tta } from './config.ts';
import { CENTER_VIEW, TEN_CROP_VIEWS } from './features.ts';

/** Which of the ten test views a TTA mode averages. */
export function ttaViews(tta: Tta): number[] {
  return tta === 'center' ? [CENTER_VIEW] : Array.from({ length: TEN_CROP_VIEWS }, (_, k) => k);
}

export { averageViews } from '../image/tta.ts';
