// `dermtl explain`: predicts each photo with its Grad-CAM maps, writes one PNG overlay per chosen label and a JSON file
// with the prediction and every label's raw map. Files are written atomically; a bad label stops before any work.
import { mkdir, readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { loadModel, type DermtlModel } from '../serve/api.ts';
import type { Explanation, LabelMap } from '../serve/explain.ts';
import { siteOf } from '../serve/predictor.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError } from '../util/errors.ts';
import { overlayPhoto, overlayPng } from './overlay.ts';

export interface ExplainRunOptions {
  out: string;
  /** Labels to draw (either head); default: the top 3 lesions and the top location of each photo. */
  labels?: readonly string[];
  threads?: number;
  /** The photos' known body site (PredictOptions.location): a fusion model's maps and scores then use it. */
  location?: string;
  log?: (line: string) => void;
}

/** Checks `--label` names against the model's heads: unknown ones are an error that lists the known ones. */
export function checkLabels(model: Pick<DermtlModel, 'labels'>, labels: readonly string[]): void {
  const known = new Set([...model.labels.lesion, ...model.labels.location]);
  const bad = labels.filter((l) => !known.has(l));
  if (bad.length) {
    throw new DermtlError(
      `--label: unknown label${bad.length > 1 ? 's' : ''} ${bad.map((b) => `'${b}'`).join(', ')}; ` +
        `the model's lesion labels are ${model.labels.lesion.join(', ') || '(none)'} and its body locations ${model.labels.location.join(', ') || '(none)'}`,
    );
  }
}

/** The (head, map) pairs to draw for one photo. */
export function chosenMaps(
  e: Explanation,
  ranked: { lesions: { label: string }[]; location: { label: string }[] },
  labels?: readonly string[],
): { head: 'lesion' | 'location'; map: LabelMap }[] {
  const pick = (head: 'lesion' | 'location', list: LabelMap[], names: readonly string[]) =>
    names.flatMap((n) => list.filter((m) => m.label === n).map((map) => ({ head, map })));
  if (labels?.length) return [...pick('lesion', e.lesions, labels), ...pick('location', e.location, labels)];
  return [
    ...pick(
      'lesion',
      e.lesions,
      ranked.lesions.slice(0, 3).map((l) => l.label),
    ),
    ...pick(
      'location',
      e.location,
      ranked.location.slice(0, 1).map((l) => l.label),
    ),
  ];
}

/** A file-name-safe form of a label ('pigment_network:atypical' -> 'pigment_network-atypical'). */
export function fileSafe(label: string): string {
  return label.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'label';
}

/** Explains each image in turn; an image that cannot be read is recorded in `errors` (message naming it) and skipped. */
export async function explainImages(
  modelPath: string,
  images: readonly string[],
  opts: ExplainRunOptions,
): Promise<{ written: string[]; errors: string[] }> {
  const model = await loadModel(modelPath, { threads: opts.threads });
  const log = opts.log ?? (() => {});
  const written: string[] = [];
  const errors: string[] = [];
  try {
    if (opts.labels) checkLabels(model, opts.labels);
    const site = siteOf(model, opts.location).use;
    if (site && opts.location !== undefined && !site.used) log(`note: --location ${opts.location}: ${site.note}`);
    await mkdir(opts.out, { recursive: true });
    const stems = new Set<string>();
    for (const image of images) {
      try {
        const bytes = new Uint8Array(
          await readFile(image).catch((e: NodeJS.ErrnoException) => {
            throw new DermtlError(`${image}: cannot read it (${e.code ?? e.message})`);
          }),
        );
        const t0 = performance.now();
        const prediction = await model.predict(bytes, { name: image, explain: true, location: opts.location });
        const ms = performance.now() - t0;
        const e = prediction.explanation!;
        let stem = fileSafe(basename(image, extname(image)));
        for (let k = 2; stems.has(stem); k++) stem = `${fileSafe(basename(image, extname(image)))}-${k}`;
        stems.add(stem);
        const photo = await overlayPhoto(bytes, image);
        for (const { head, map } of chosenMaps(e, prediction, opts.labels)) {
          const path = join(opts.out, `${stem}-${head}-${fileSafe(map.label)}.png`);
          await writeFileAtomic(path, await overlayPng(photo, e, head, map));
          written.push(path);
        }
        const json = join(opts.out, `${stem}.json`);
        await writeFileAtomic(json, `${JSON.stringify({ image, model: model.dir, ...prediction }, null, 1)}\n`);
        written.push(json);
        log(
          `${image}: ${chosenMaps(e, prediction, opts.labels).length} overlay(s) and ${json} (predict + explain ${ms.toFixed(0)} ms, explain.onnx ${e.explainMs.toFixed(1)} ms)`,
        );
      } catch (e) {
        if (!(e instanceof DermtlError)) throw e;
        errors.push(e.message);
      }
    }
  } finally {
    await model.dispose();
  }
  return { written, errors };
}
