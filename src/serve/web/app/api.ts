/**
 * The server's HTTP API as the page uses it (same origin, relative URLs so the page also works under a path
 * prefix behind a proxy): GET api/model, POST api/predict, GET model.onnx (and explain.ts: POST api/explain,
 * GET explain.onnx).
 */
import type { Preprocessing } from '../../../image/preprocess.ts';
import { contentType } from './files.ts';
import type { Tta } from './preprocess.ts';

export interface Scored {
  label: string;
  p: number;
  /** Lesions: the model's decision threshold for the label and whether p reaches it (the server's rule). */
  threshold?: number;
  present?: boolean;
}

export interface Prediction {
  lesions: Scored[];
  location: Scored[];
}

export interface ServerPrediction extends Prediction {
  timing: { decodeMs: number; inferenceMs: number; totalMs: number };
  tta: Tta;
}

export interface ModelInfo {
  labels: { lesion: string[]; location: string[] };
  preprocessing: Preprocessing;
  /** e.g. "ResNet-50", when the server says which trunk it runs. */
  trunk: string | null;
  /** Lesion label -> decision threshold (0.5 where the server names none). */
  thresholds: Record<string, number>;
  /** Whether the model takes the photo's body site (one of labels.location; a model trained with fusion). */
  takesSite: boolean;
}

/** An error to show in the page as it is (the server's message, or ours). */
export class PageError extends Error {}

export async function fetchModelInfo(): Promise<ModelInfo> {
  const body = (await getJson('api/model')) as Partial<{
    labels: ModelInfo['labels'];
    preprocessing: Preprocessing;
    network: { trunk?: { depth?: unknown } };
    thresholds: Record<string, number>;
    takesSite: boolean;
  }>;
  if (!body.labels || !Array.isArray(body.labels.lesion) || !Array.isArray(body.labels.location)) {
    throw new PageError('The server did not describe its model (no label lists in /api/model).');
  }
  if (!body.preprocessing || typeof body.preprocessing.size !== 'number') {
    throw new PageError('The server did not describe its preprocessing (/api/model).');
  }
  const depth = body.network?.trunk?.depth;
  const thresholds = Object.fromEntries(
    body.labels.lesion.map((l) => [l, typeof body.thresholds?.[l] === 'number' ? body.thresholds[l] : 0.5]),
  );
  return {
    labels: body.labels,
    preprocessing: body.preprocessing,
    trunk: depth === undefined ? null : `ResNet-${String(depth)}`,
    thresholds,
    takesSite: body.takesSite === true,
  };
}

/** The query of api/predict and api/explain; `site` (a body location, '' = unknown) only when given. */
export function predictQuery(tta: Tta, top: number, site = ''): string {
  return `tta=${tta}&top=${top}${site ? `&location=${encodeURIComponent(site)}` : ''}`;
}

/** Sends the photo as it is; the server decodes, preprocesses and runs the model. */
export async function predictOnServer(file: File, tta: Tta, top: number, site = ''): Promise<ServerPrediction> {
  const res = await send(`api/predict?${predictQuery(tta, top, site)}`, {
    method: 'POST',
    body: file,
    headers: { 'content-type': contentType(file) },
  });
  return (await readJson(res)) as ServerPrediction;
}

async function getJson(url: string): Promise<unknown> {
  return readJson(await send(url, {}));
}

export async function send(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch {
    throw new PageError('Cannot reach the dermtl server. Is it still running?');
  }
}

/** The JSON body of a reply; a reply with {error: {message}} (or a non-2xx status) becomes a PageError. */
export async function readJson(res: Response): Promise<unknown> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // handled below: a non-JSON reply is an error whatever its status
  }
  const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
  if (!res.ok || body === null || typeof message === 'string') {
    throw new PageError(
      typeof message === 'string' ? message : `The server answered ${res.status} ${res.statusText || ''}`.trim(),
    );
  }
  return body;
}

/** Each lesion score with its threshold and whether it is present (p >= threshold), as the server's predict says. */
export function decided(scores: Scored[], thresholds: Record<string, number>): Scored[] {
  return scores.map((s) => ({
    ...s,
    threshold: thresholds[s.label] ?? 0.5,
    present: s.p >= (thresholds[s.label] ?? 0.5),
  }));
}

/** Probabilities in label order to {label, p} sorted by p, highest first (ties keep label order). */
export function ranked(labels: string[], probs: ArrayLike<number>): Scored[] {
  return labels.map((label, i) => ({ label, p: probs[i] })).sort((a, b) => b.p - a.p);
}
