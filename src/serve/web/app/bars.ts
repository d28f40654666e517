/**
 * Horizontal bar charts as plain list items: a label, a CSS bar and the percentage as text. A handful to a few
 * dozen bars need no chart library, stay crisp at any zoom, follow the page's colours (dark mode included) and
 * read naturally in a screen reader ("papule, 72 percent").
 */
import type { Scored } from './api.ts';

export function renderBars(list: HTMLOListElement, scores: Scored[]): void {
  list.replaceChildren(...scores.map(barItem));
}

function barItem({ label, p, threshold, present }: Scored): HTMLLIElement {
  const li = document.createElement('li');
  li.className = 'bar';
  li.dataset.label = label;
  li.dataset.p = String(p);
  if (present !== undefined) li.dataset.present = String(present);
  const name = document.createElement('span');
  name.className = 'bar-label';
  name.append(...breakable(label));
  const track = document.createElement('span');
  track.className = 'bar-track';
  track.setAttribute('aria-hidden', 'true');
  // the notch marks the label's decision threshold (lesions; 50% by default)
  if (threshold !== undefined)
    track.style.setProperty('--threshold', `${(Math.min(1, Math.max(0, threshold)) * 100).toFixed(2)}%`);
  const fill = document.createElement('span');
  fill.className = 'bar-fill';
  fill.style.width = `${(Math.min(1, Math.max(0, p)) * 100).toFixed(2)}%`;
  track.append(fill);
  const value = document.createElement('span');
  value.className = 'bar-value';
  value.textContent = percent(p);
  li.append(name, track, value);
  return li;
}

/**
 * A label as text with line-break opportunities (<wbr>) after each ':' and '_', so a long derm7pt name such as
 * `vascular_structures:linear irregular` wraps at its criterion and words rather than being cut; the text itself
 * (textContent, what a screen reader says) is unchanged.
 */
export function breakable(label: string): (string | HTMLElement)[] {
  return label.split(/(?<=[:_])/).flatMap((part, i) => (i === 0 ? [part] : [document.createElement('wbr'), part]));
}

/** 0.7234 -> "72%"; small values keep a digit so that 0.4% does not read as zero. */
export function percent(p: number): string {
  const v = p * 100;
  if (v > 0 && v < 1) return `${v.toFixed(1)}%`;
  return `${Math.round(v)}%`;
}
