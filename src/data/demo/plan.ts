import { Rng } from '../../util/rng.ts';
import {
  GROUP_SIZE_WEIGHTS,
  LESION_COUNT_WEIGHTS,
  LESION_WEIGHTS,
  LESIONS,
  SITE_WEIGHTS,
  SITES,
  type Lesion,
  type Site,
} from './table.ts';

/** How one photograph looks at the drawn scene: framing, lighting and camera quality. */
export interface DemoView {
  /** Manifest path of the image, relative to the demo folder. */
  image: string;
  /** Rotation of the camera in radians. */
  rotation: number;
  /** Output pixels per scene pixel (>1 is a closer shot). */
  zoom: number;
  /** Offset of the view centre from the scene centre, as a fraction of the image size. */
  dx: number;
  dy: number;
  flip: boolean;
  /** Height / width of the photo (width is the requested size). */
  aspect: number;
  /** Overall exposure, per-channel white balance, and a light falloff across the frame. */
  gain: number;
  tint: [number, number, number];
  gradientAngle: number;
  gradientAmount: number;
  /** Sensor noise (standard deviation in 0..255 units), optical blur (sigma in px) and JPEG quality. */
  noise: number;
  blur: number;
  quality: number;
}

/** One drawn scene (a patient's lesion at one site) and the 1-3 photos taken of it. */
export interface DemoScene {
  index: number;
  group: string;
  site: Site;
  lesions: Lesion[];
  views: DemoView[];
}

/**
 * Decides every label and camera setting of the dataset without drawing anything, so label statistics
 * can be checked cheaply. Labels come from one stream per scene: the same seed gives the same dataset
 * whatever the image size.
 */
export function planDemo(n: number, seed: number): DemoScene[] {
  const scenes: DemoScene[] = [];
  let images = 0;
  for (let index = 0; images < n; index++) {
    const rng = Rng.derive(seed, 'scene-labels', index);
    const site = SITES[rng.weighted(SITES.map((s) => SITE_WEIGHTS[s]))];
    const lesions = pickLesions(rng, site);
    const count = Math.min(1 + rng.weighted(GROUP_SIZE_WEIGHTS), n - images);
    const group = `demo-${String(index + 1).padStart(4, '0')}`;
    const viewRng = Rng.derive(seed, 'scene-views', index);
    const views = Array.from({ length: count }, (_, v) => planView(viewRng, `images/${group}-${v + 1}.jpg`));
    scenes.push({ index, group, site, lesions, views });
    images += count;
  }
  return scenes;
}

/** Distinct lesion types drawn without replacement, weighted by the site's row of the table. */
function pickLesions(rng: Rng, site: Site): Lesion[] {
  const k = rng.weighted(LESION_COUNT_WEIGHTS);
  const left = [...LESIONS];
  const picked: Lesion[] = [];
  for (let i = 0; i < k; i++) {
    const j = rng.weighted(left.map((l) => LESION_WEIGHTS[site][l]));
    picked.push(left[j]);
    left.splice(j, 1);
  }
  // table order, so the manifest reads the same way whatever order they were drawn in
  return picked.sort((a, b) => LESIONS.indexOf(a) - LESIONS.indexOf(b));
}

function planView(rng: Rng, image: string): DemoView {
  const zoom = rng.uniform(1.0, 1.3);
  // the rotated frame's half-diagonal must stay inside the scene (1.5 x size): see SCENE_SCALE
  const slack = Math.max(0, 0.75 - 0.75 / zoom) * 0.6;
  const warm = Math.max(-0.045, Math.min(0.045, rng.normal(0, 0.02))); // white balance: mild, never blue-grey skin
  return {
    image,
    rotation: rng.uniform(-Math.PI, Math.PI),
    zoom,
    dx: rng.uniform(-slack, slack),
    dy: rng.uniform(-slack, slack),
    flip: rng.bool(),
    aspect: rng.bool(0.3) ? rng.pick([0.75, 0.8, 0.9]) : 1,
    gain: rng.uniform(0.78, 1.12),
    tint: [1 + warm, 1 + rng.normal(0, 0.015), 1 - warm],
    gradientAngle: rng.uniform(0, 2 * Math.PI),
    gradientAmount: rng.uniform(0, 0.25),
    noise: rng.uniform(1, 6),
    blur: rng.bool(0.5) ? rng.uniform(0.3, 1.4) : 0,
    quality: rng.int(78, 92),
  };
}
