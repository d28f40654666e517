/**
 * JSON schemas of the HTTP API (the routes validate with them) and the hand-written OpenAPI 3 description built
 * from the same objects, so the two cannot drift apart.
 */
import { TTA_MODES } from './api.ts';

export const DEFAULT_TOP = 5;
export const MAX_TOP = 1000;

/** Query of POST /api/predict. */
export const predictQuerySchema = {
  type: 'object',
  properties: {
    tta: {
      type: 'string',
      enum: [...TTA_MODES],
      default: 'center',
      description:
        'Test-time augmentation: the centre crop, or the mean over 10 crops (4 corners + centre, and their mirrors)',
    },
    top: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_TOP,
      default: DEFAULT_TOP,
      description: 'How many labels of each list to return (most probable first)',
    },
    location: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      description:
        "The photo's known body site, one of the model's locations (GET /api/model: labels.location). A model that takes a site (takesSite, trained with fusion) gives it to its lesion head; without it the model uses its own predicted location. " +
        "A model without site inputs ignores it (the answer's site says so). A name the model does not know: 400 unknown_location, naming the model's sites",
    },
  },
  additionalProperties: false,
} as const;

export interface PredictQuery {
  tta: 'center' | '10crop';
  top: number;
  location?: string;
}

const siteSchema = {
  type: 'object',
  required: ['given', 'used'],
  description: 'Present for a model that takes a body site, and whenever a location was given: what became of it',
  properties: {
    given: { type: ['string', 'null'], description: 'The location given, or null' },
    used: { type: 'boolean', description: 'Whether the lesion head received it (a fusion model given a site)' },
    note: { type: 'string', description: 'Why not, when used is false' },
  },
};

const labelScore = {
  type: 'object',
  required: ['label', 'p'],
  properties: {
    label: { type: 'string' },
    p: { type: 'number', minimum: 0, maximum: 1 },
    present: { type: 'boolean', description: 'Lesions only: p >= threshold' },
    threshold: {
      type: 'number',
      description:
        "Lesions only: the model's decision threshold for the label (max F1 on its validation part; 0.5 for a model without calibration)",
    },
  },
};

const predictionSchema = {
  type: 'object',
  required: ['image', 'lesions', 'location', 'tta', 'timing'],
  properties: {
    image: {
      type: ['string', 'null'],
      description: 'The multipart file name (directories stripped), or null for a raw body',
    },
    lesions: {
      type: 'array',
      items: labelScore,
      description: 'Lesion morphology labels (independent sigmoids), most probable first',
    },
    location: { type: 'array', items: labelScore, description: 'Body locations (softmax), most probable first' },
    tta: { type: 'string', enum: [...TTA_MODES] },
    site: siteSchema,
    timing: {
      type: 'object',
      required: ['decodeMs', 'inferenceMs', 'totalMs'],
      properties: {
        decodeMs: { type: 'number', description: 'decode, resize, crop and preprocess' },
        inferenceMs: { type: 'number', description: 'onnxruntime run over all views' },
        totalMs: { type: 'number', description: 'whole prediction, including the wait for the model' },
      },
    },
  },
};

const labelMapSchema = {
  type: 'object',
  required: ['label', 'score', 'p', 'max', 'map'],
  properties: {
    label: { type: 'string' },
    score: { type: 'number', description: "The label's logit on the explained view (what Grad-CAM differentiates)" },
    p: { type: 'number', minimum: 0, maximum: 1, description: "The label's probability on the explained view" },
    max: {
      type: 'number',
      minimum: 0,
      description: 'Largest map value; 0 when no position raises the score (empty map)',
    },
    map: { type: 'array', items: { type: 'number', minimum: 0 }, description: 'grid.h x grid.w values, row-major' },
  },
};

const explanationSchema = {
  type: 'object',
  required: ['method', 'grid', 'view', 'region', 'lesions', 'location', 'explainMs'],
  description:
    'Grad-CAM (Selvaraju et al. 2017) of every label on the conv5_x activation of the centre view: channel weights = spatial mean of d score / d activation, map = ReLU(weighted sum of channels)',
  properties: {
    method: { type: 'string', const: 'grad-cam' },
    grid: { type: 'object', properties: { h: { type: 'integer' }, w: { type: 'integer' } } },
    view: {
      type: 'object',
      description: 'The explained crop (x, y, size, flip) of the image resized to width x height',
    },
    region: { type: 'object', description: 'The same crop as fractions of the photo (x0, y0, x1, y1)' },
    lesions: { type: 'array', items: labelMapSchema, description: 'Every lesion label, in the head order' },
    location: { type: 'array', items: labelMapSchema, description: 'Every body location, in the head order' },
    explainMs: { type: 'number' },
  },
};

const explainedPredictionSchema = {
  ...predictionSchema,
  required: [...predictionSchema.required, 'explanation'],
  properties: { ...predictionSchema.properties, explanation: explanationSchema },
};

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
};

const modelInfoSchema = {
  type: 'object',
  required: [
    'format',
    'formatVersion',
    'labels',
    'preprocessing',
    'metrics',
    'network',
    'outputs',
    'onnx',
    'tta',
    'takesSite',
  ],
  properties: {
    format: { type: 'string', const: 'dermtl-model' },
    formatVersion: { type: 'integer' },
    labels: {
      type: 'object',
      properties: {
        lesion: { type: 'array', items: { type: 'string' } },
        location: { type: 'array', items: { type: 'string' } },
      },
    },
    preprocessing: {
      type: 'object',
      description: 'How to turn an image into the network input (see model.onnx metadata dermtl.preprocessing)',
    },
    metrics: { description: "The training run's evaluation results (any JSON)" },
    network: { type: 'object' },
    calibration: {
      type: ['object', 'null'],
      description:
        'Temperatures fitted on the validation part (already in model.onnx) and lesion thresholds; null: uncalibrated',
    },
    thresholds: {
      type: 'object',
      additionalProperties: { type: 'number' },
      description: 'Lesion label -> decision threshold (present when p >= threshold)',
    },
    outputs: { type: 'array', items: { type: 'object' } },
    onnx: {
      type: 'object',
      properties: { url: { type: 'string' }, bytes: { type: 'integer' }, sha256: { type: 'string' } },
    },
    tta: { type: 'array', items: { type: 'string' } },
    takesSite: {
      type: 'boolean',
      description: "Whether the model takes the photo's body site (query parameter location; trained with fusion)",
    },
  },
};

const json = (schema: object) => ({ 'application/json': { schema } });
const errorResponse = (description: string) => ({ description, content: json({ $ref: '#/components/schemas/Error' }) });
const retryAfter = {
  'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer' } },
};

export interface OpenApiInfo {
  bodyLimit: number;
  maxPixels: number;
  timeoutMs: number;
}

/** The OpenAPI 3.0 description served at GET /api/openapi.json. */
export function openApiDocument(info: OpenApiInfo): object {
  const mb = (info.bodyLimit / 1024 / 1024).toFixed(1);
  const imageBody = { schema: { type: 'string', format: 'binary' } };
  // the one image upload of /api/predict and /api/explain: a raw image body, or the multipart field 'image'
  const imageContent = {
    'image/jpeg': imageBody,
    'image/png': imageBody,
    'image/webp': imageBody,
    'application/octet-stream': imageBody,
    'multipart/form-data': {
      schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary' } } },
    },
  };
  return {
    openapi: '3.0.3',
    info: {
      title: 'dermtl',
      version: '1',
      description:
        'Skin-lesion morphology and body-location prediction with a dermtl multi-task model (Liao & Luo, AAAI-17).',
    },
    paths: {
      '/api/predict': {
        post: {
          summary: 'Predict lesion labels and body location of one image',
          parameters: Object.entries(predictQuerySchema.properties).map(([name, schema]) => ({
            name,
            in: 'query',
            required: false,
            schema,
          })),
          requestBody: {
            required: true,
            description: `The image (JPEG, PNG or WebP; at most ${mb} MB and ${info.maxPixels} pixels) as the raw body, or as the multipart field 'image'`,
            content: imageContent,
          },
          responses: {
            200: { description: 'The prediction', content: json({ $ref: '#/components/schemas/Prediction' }) },
            400: errorResponse(
              'Bad query (code unknown_location: a body site the model does not know), empty body or malformed multipart',
            ),
            413: errorResponse(`Body larger than ${mb} MB`),
            415: errorResponse('Not an image content type'),
            422: errorResponse('Not a readable image, or more pixels than allowed (code image_too_large)'),
            503: {
              ...errorResponse(
                'Prediction queue full, or the request waited too long in it (code busy / queue_timeout)',
              ),
              headers: retryAfter,
            },
            504: errorResponse(`The prediction took longer than ${info.timeoutMs} ms`),
          },
        },
      },
      '/api/explain': {
        post: {
          summary: 'Predict one image and return the Grad-CAM map of every lesion label and body location',
          parameters: Object.entries(predictQuerySchema.properties).map(([name, schema]) => ({
            name,
            in: 'query',
            required: false,
            schema,
          })),
          requestBody: {
            required: true,
            description: 'The image, as for /api/predict',
            content: imageContent,
          },
          responses: {
            200: {
              description: 'The prediction with its maps',
              content: json({ $ref: '#/components/schemas/ExplainedPrediction' }),
            },
            400: errorResponse(
              'Bad query (code unknown_location: a body site the model does not know), empty body or malformed multipart',
            ),
            413: errorResponse(`Body larger than ${mb} MB`),
            415: errorResponse('Not an image content type'),
            422: errorResponse('Not a readable image, or more pixels than allowed (code image_too_large)'),
            503: {
              ...errorResponse(
                'Prediction queue full, or the request waited too long in it (code busy / queue_timeout)',
              ),
              headers: retryAfter,
            },
            504: errorResponse(`The prediction took longer than ${info.timeoutMs} ms`),
          },
        },
      },
      '/explain.onnx': {
        get: {
          summary:
            "The Grad-CAM graph (for in-browser maps): input conv5_x, model.onnx's output of that name (a model that takes the body site also takes location_given / location_known, one row per label)",
          responses: {
            200: { description: 'ONNX model bytes', content: { 'application/octet-stream': imageBody } },
            304: { description: 'Not modified' },
          },
        },
      },
      '/api/model': {
        get: {
          summary: 'Label lists, preprocessing, training metrics and format version of the served model',
          responses: {
            200: { description: 'Model description', content: json({ $ref: '#/components/schemas/ModelInfo' }) },
          },
        },
      },
      '/model.onnx': {
        get: {
          summary:
            'The model file itself (for in-browser inference); ETag + Cache-Control: no-cache, so clients revalidate cheaply',
          responses: {
            200: { description: 'ONNX model bytes', content: { 'application/octet-stream': imageBody } },
            304: { description: 'Not modified' },
          },
        },
      },
      '/healthz': {
        get: {
          summary: 'Liveness and queue state',
          responses: {
            200: {
              description: 'Healthy',
              content: json({ type: 'object', properties: { status: { type: 'string', const: 'ok' } } }),
            },
          },
        },
      },
      '/api/openapi.json': {
        get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3 document' } } },
      },
    },
    components: {
      schemas: {
        Prediction: predictionSchema,
        ExplainedPrediction: explainedPredictionSchema,
        Error: errorSchema,
        ModelInfo: modelInfoSchema,
      },
    },
  };
}
