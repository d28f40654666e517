// Shared by the eval tests: in-memory samples and manifests (no files needed: metrics only read labels).
import type { Manifest, Sample } from '../../src/data/types.ts';

export function sample(image: string, lesions: string[], location: string, line = 0): Sample {
  return { image, path: `/data/${image}`, lesions, location, group: image, line, extra: {} };
}

export function manifestOf(samples: Sample[]): Manifest {
  samples.forEach((s, i) => (s.line = i + 2));
  return { file: '/data/m.csv', dir: '/data', samples, extraColumns: [] };
}
