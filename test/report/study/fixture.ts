import {
  comparisonResults,
  modelResult,
  pairedResults,
  type LesionEval,
  type LocationEval,
  type MtlEval,
  type StudyResults,
} from '../../../src/eval/studyResults.ts';

/**
 * A synthetic 3-fold study with plausible numbers. Lesion labels: nevus and melanoma in every fold,
 * dermatofibroma with a positive test image in fold 0 only, vascular with none (AP undefined,
 * skipped everywhere). The location-only model is skipped in fold 2. The baselines: linear a little below
 * lesion-only (and location-only), prior far below.
 */
export const LESIONS = ['nevus', 'melanoma', 'dermatofibroma', 'vascular'];
export const LOCATIONS = ['back', 'face', 'leg', 'hand'];
const K = 3;
const N = [60, 58, 62];
const POSITIVES: Record<string, number[]> = {
  nevus: [40, 38, 42],
  melanoma: [12, 10, 11],
  dermatofibroma: [1, 0, 0],
  vascular: [0, 0, 0],
};
const LOCATION_COUNTS = [
  [25, 15, 12, 8],
  [24, 14, 12, 8],
  [26, 16, 12, 8],
];

/** AP of a label by model and fold: a label base, a model shift, a fold wobble. */
const BASE: Record<string, number> = { nevus: 0.82, melanoma: 0.55, dermatofibroma: 0.4 };
const SHIFT = { lesion: 0, mtl: 0.02, ensemble: 0.025, linear: -0.03, prior: -0.35 };
const WOBBLE = [0.01, -0.015, 0.005];
/** MTL's extra per fold, so the paired differences vary: mapClass differences straddle 0, mapImage ones do not. */
const MTL_AP = [0.01, -0.025, 0];
const MTL_MAP_IMAGE = [0.002, 0.001, 0];

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

function lesionEval(model: 'lesion' | 'mtl' | 'ensemble' | 'linear' | 'prior', fold: number | 'pooled'): LesionEval {
  const folds = fold === 'pooled' ? [0, 1, 2] : [fold];
  const positives = Object.fromEntries(LESIONS.map((l) => [l, folds.reduce((a, f) => a + POSITIVES[l][f], 0)]));
  const ap: Record<string, number> = {};
  for (const l of LESIONS) {
    if (positives[l] === 0) continue;
    const wobble =
      fold === 'pooled' ? 0 : WOBBLE[fold] * (l === 'melanoma' ? 2 : 1) + (model === 'mtl' ? MTL_AP[fold] : 0);
    ap[l] = round(BASE[l] + SHIFT[model] + wobble);
  }
  const values = Object.values(ap);
  const mapClass = round(values.reduce((a, b) => a + b, 0) / values.length);
  const n = folds.reduce((a, f) => a + N[f], 0);
  return {
    n,
    ap,
    mapClass,
    mapImage: round(
      0.88 +
        SHIFT[model] / 2 +
        (fold === 'pooled' ? 0 : WOBBLE[fold] / 2 + (model === 'mtl' ? MTL_MAP_IMAGE[fold] : 0)),
    ),
    mapImageImages: n - 5,
    skipped: LESIONS.filter((l) => positives[l] === 0).map((label) => ({ label, reason: 'no positive test image' })),
    positives: { lesion: positives },
  };
}

const TOP1 = { location: 0.5, mtl: 0.52, linear: 0.45, prior: 0.3 };
const TOP3 = { location: 0.85, mtl: 0.86, linear: 0.8, prior: 0.6 };

function locationEval(model: 'location' | 'mtl' | 'linear' | 'prior', fold: number | 'pooled'): LocationEval {
  const folds = fold === 'pooled' ? (model === 'location' ? [0, 1] : [0, 1, 2]) : [fold];
  const wobble = fold === 'pooled' ? 0 : WOBBLE[fold];
  const positives = Object.fromEntries(
    LOCATIONS.map((l, j) => [l, folds.reduce((a, f) => a + LOCATION_COUNTS[f][j], 0)]),
  );
  return {
    n: folds.reduce((a, f) => a + N[f], 0),
    top1: round(TOP1[model] + wobble * (model === 'linear' ? -1 : 1)),
    top3: round(TOP3[model] + wobble / 2),
    skipped: [],
    positives: { location: positives },
  };
}

function mtlEval(fold: number | 'pooled', model: 'mtl' | 'linear' | 'prior' = 'mtl'): MtlEval {
  const l = lesionEval(model, fold);
  const c = locationEval(model, fold);
  return { ...l, top1: c.top1, top3: c.top3, positives: { ...l.positives, ...c.positives } };
}

export function syntheticResults(): StudyResults {
  const folds = [0, 1, 2];
  const lesion = modelResult(
    lesionEval('lesion', 'pooled'),
    folds.map((f) => lesionEval('lesion', f)),
  );
  const mtl = modelResult(
    mtlEval('pooled'),
    folds.map((f) => mtlEval(f)),
  );
  const models = {
    lesion,
    location: modelResult(locationEval('location', 'pooled'), [
      locationEval('location', 0),
      locationEval('location', 1),
      null,
    ]),
    mtl,
    ensemble: modelResult(
      lesionEval('ensemble', 'pooled'),
      folds.map((f) => lesionEval('ensemble', f)),
    ),
    prior: modelResult(
      mtlEval('pooled', 'prior'),
      folds.map((f) => mtlEval(f, 'prior')),
    ),
    linear: {
      ...modelResult(
        mtlEval('pooled', 'linear'),
        folds.map((f) => mtlEval(f, 'linear')),
      ),
      choices: [
        { lesionLambda: 0.3, locationLambda: 1, rule: 'validation' as const, validationImages: 12 },
        { lesionLambda: 0.1, locationLambda: 1, rule: 'validation' as const, validationImages: 11 },
        {
          lesionLambda: 0.1,
          locationLambda: 0.1,
          rule: 'default' as const,
          reason: 'validation.fraction is 0',
          validationImages: 0,
        },
      ],
    },
  };
  return {
    version: 2,
    createdAt: '2025-01-01T00:00:00.000Z',
    command: 'dermtl cv --manifest data/demo/manifest.csv --folds 3 --out study',
    config: { trunk: 'resnet50', lr: 0.001, batch: 32, iterations: 2000, tenCrop: true, scaleJitter: [256, 288] },
    dataset: {
      manifest: 'data/demo/manifest.csv',
      manifestHash: 'a3f9c2d1e0b4a3f9c2d1e0b4a3f9c2d1e0b4a3f9c2d1e0b4a3f9c2d1e0b4abcd',
      stats: {
        images: 180,
        groups: 150,
        lesions: [
          { label: 'nevus', count: 120 },
          { label: 'melanoma', count: 33 },
          { label: 'dermatofibroma', count: 1 },
        ],
        locations: [
          { label: 'back', count: 75 },
          { label: 'face', count: 45 },
          { label: 'leg', count: 36 },
          { label: 'hand', count: 24 },
        ],
        lesionsPerImage: [30, 146, 4],
        imagesWithoutLesion: 30,
      },
      cooccurrence: {
        lesions: ['nevus', 'melanoma', 'dermatofibroma'],
        locations: [...LOCATIONS],
        counts: [
          [55, 30, 20, 15],
          [10, 12, 8, 3],
          [0, 0, 1, 0],
        ],
        lesionTotals: [120, 33, 1],
        R: [
          [55 / 120, 30 / 120, 20 / 120, 15 / 120],
          [10 / 33, 12 / 33, 8 / 33, 3 / 33],
          [0, 0, 1, 0],
        ],
      },
    },
    lesionLabels: [...LESIONS],
    locationLabels: [...LOCATIONS],
    folds: K,
    models,
    paired: pairedResults(mtl, lesion),
    comparisons: comparisonResults(models),
    timing: {
      totalSeconds: 5432.1,
      models: { lesion: [600.5, 610.2, 598.7], location: [580.1, 575.3, null], mtl: [640.2, 655.9, 630.4] },
    },
    skipped: [{ model: 'location', fold: 2, reason: 'the training part of fold 2 has a single location label' }],
  };
}
