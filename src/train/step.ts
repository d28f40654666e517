// One training step: run the training graph (forward + backward), refuse non-finite losses or gradients
// without touching the parameters, then apply the optimizer. Trainable params are graph inputs fed from
// `params` (name -> Float32Array, updated in place); gradients come back as `grad/<name>` outputs.
import { DermtlError } from '../util/errors.ts';
import { Float32Arena, Graph, GraphSession, buildTrainingGraph, type Feed, type Preallocated } from '../graph/index.ts';
import { numel } from '../graph/types.ts';
import { SgdMomentum, firstNonFinite, type Multipliers, type SgdOptions } from './optimizer.ts';
import { ReduceOnPlateau, type PlateauOptions } from './scheduler.ts';

export type Feeds = Record<string, Feed>;

export interface LossSpec {
  name: string;
  /** Weight of this loss in the differentiated total (the per-task weight); default 1. */
  weight?: number;
}

export interface StepResult {
  /** Updates applied, this one included. */
  step: number;
  losses: Record<string, number>;
  /** The learning rate this update used. */
  lr: number;
}

export interface TrainerOptions {
  /** Forward graph: trainable params as inputs, the loss tensors named. */
  forward: Graph;
  losses: readonly (string | LossSpec)[];
  sgd: SgdOptions;
  /** Per-param lr / decay multipliers (e.g. x10 / x20 for new head weights / biases); unknown names are refused. */
  multipliers?: Readonly<Record<string, Multipliers>>;
  /** A learning-rate drop on validation plateaus, saved with checkpoints. */
  plateau?: PlateauOptions;
  /**
   * Graph for evalLoss (same trainable params, dropout off); default: the training graph itself, fetching
   * only the losses.
   */
  evalForward?: Graph;
  /** ORT intra-op threads. */
  threads?: number;
}

/** Where the trainer's float32 state lives: one arena for params, momentum and gradients (when WebAssembly SIMD is there). */
export interface TrainerBuffers {
  arena?: Float32Arena;
  /** Gradient buffers by param name, which ORT writes into on every step. */
  grads: Map<string, Float32Array>;
}

export class Trainer {
  /** The gradient outputs, written by ORT into the same buffers on every step. */
  private readonly gradOutputs: Record<string, Preallocated>;
  private readonly arena?: Float32Arena;

  constructor(
    readonly session: GraphSession,
    readonly params: Map<string, Float32Array>,
    readonly optimizer: SgdMomentum,
    readonly lossNames: readonly string[],
    readonly scheduler?: ReduceOnPlateau,
    private readonly evalSession?: GraphSession,
    buffers?: TrainerBuffers,
  ) {
    const gradNames = optimizer.params.map((p) => `grad/${p.name}`);
    const missing = [...lossNames, ...gradNames].filter((n) => !session.outputNames.includes(n));
    if (missing.length) throw new Error(`training graph lacks output(s) ${missing.join(', ')}`);
    for (const p of optimizer.params) if (!params.has(p.name)) throw new Error(`no value for param ${p.name}`);
    this.arena = buffers?.arena;
    this.gradOutputs = Object.fromEntries(
      optimizer.params.map((p) => {
        const data = buffers?.grads.get(p.name) ?? new Float32Array(numel(p.shape));
        if (data.length !== numel(p.shape))
          throw new Error(`gradient buffer of ${p.name} has ${data.length} values, expected ${numel(p.shape)}`);
        return [`grad/${p.name}`, { data, dims: p.shape }];
      }),
    );
  }

  /**
   * Builds the training graph and sessions. Params start as copies of the values the graph declared
   * them with (the graph's arrays are left alone: callers may share them, e.g. the cached ImageNet weights).
   * Params, momentum and gradient buffers are allocated once, together in a Float32Arena where WebAssembly
   * SIMD is available (the update and the finite scan then run as SIMD kernels).
   */
  static async create(opts: TrainerOptions): Promise<Trainer> {
    const g = opts.forward;
    const losses = opts.losses.map((l) => (typeof l === 'string' ? { name: l } : l));
    const trainable = g.params({ trainable: true });
    const known = new Set(trainable.map((p) => p.name));
    const unknown = Object.keys(opts.multipliers ?? {}).filter((n) => !known.has(n));
    if (unknown.length)
      throw new DermtlError(`multipliers name param(s) the model has no trainable param for: ${unknown.join(', ')}`);
    const total = trainable.reduce((a, p) => a + p.data.length, 0);
    const arena = Float32Arena.create(3 * total, 3 * trainable.length);
    const optimizer = new SgdMomentum(
      trainable.map((p) => ({ name: p.name, shape: p.shape, ...opts.multipliers?.[p.name] })),
      opts.sgd,
      arena,
    );
    const copy = (a: Float32Array) => {
      if (!arena) return a.slice();
      const c = arena.alloc(a.length);
      c.set(a);
      return c;
    };
    const params = new Map(trainable.map((p) => [p.name, copy(p.data)]));
    const grads = new Map(
      trainable.map((p) => [p.name, arena ? arena.alloc(p.data.length) : new Float32Array(p.data.length)]),
    );
    const tg = buildTrainingGraph(
      g,
      losses.map((l) => ({ tensor: g.tensor(l.name), weight: l.weight })),
    );
    // The params are checked by the trainer itself (it never writes a non-finite value): only scan data feeds.
    const dataInputs = (graph: Graph) => graph.inputs.map((i) => i.name).filter((n) => !known.has(n));
    const session = await GraphSession.fromGraph(tg, {
      training: true,
      threads: opts.threads,
      checkFinite: dataInputs(g),
    });
    let evalSession: GraphSession | undefined;
    if (opts.evalForward) {
      const evalParams = opts.evalForward.params({ trainable: true }).map((p) => p.name);
      if (evalParams.length !== known.size || !evalParams.every((n) => known.has(n))) {
        throw new Error('evalForward must declare the same trainable params as forward');
      }
      const ev = opts.evalForward.clone(); // the losses become outputs of a copy, as buildTrainingGraph does
      for (const l of losses) if (!ev.outputs.some((o) => o.name === l.name)) ev.output(ev.tensor(l.name));
      evalSession = await GraphSession.fromGraph(ev, { threads: opts.threads, checkFinite: dataInputs(ev) });
    }
    const scheduler = opts.plateau ? new ReduceOnPlateau(optimizer, opts.plateau) : undefined;
    return new Trainer(
      session,
      params,
      optimizer,
      losses.map((l) => l.name),
      scheduler,
      evalSession,
      { arena, grads },
    );
  }

  get stepCount(): number {
    return this.optimizer.stepCount;
  }

  /** Forward + backward + update. A non-finite loss or gradient throws a DermtlError and changes nothing. */
  async step(feeds: Feeds): Promise<StepResult> {
    const step = this.optimizer.stepCount + 1;
    const out = await this.session.run(this.withParams(feeds), this.lossNames, this.gradOutputs);
    const losses = this.readLosses(out, `at step ${step}; parameters were not updated`);
    const grads: Record<string, Float32Array> = {};
    for (const p of this.optimizer.params) {
      const g = this.gradOutputs[`grad/${p.name}`].data;
      const suspect = this.arena?.owns(g) ? this.arena.hasNonFinite(g) : true;
      const bad = suspect ? firstNonFinite(g) : -1;
      if (bad >= 0)
        throw new DermtlError(
          `gradient of ${p.name} is ${g[bad]} at index ${bad} at step ${step}; parameters were not updated`,
        );
      grads[p.name] = g;
    }
    const lr = this.optimizer.learningRate;
    this.optimizer.update(this.params, grads);
    return { step, losses, lr };
  }

  /** The losses on one batch without updating anything (on the eval graph when there is one). */
  async evalLoss(feeds: Feeds): Promise<Record<string, number>> {
    const s = this.evalSession ?? this.session;
    return this.readLosses(await s.run(this.withParams(feeds), this.lossNames), 'in evaluation');
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.evalSession?.release();
  }

  private withParams(feeds: Feeds): Feeds {
    const clash = Object.keys(feeds).filter((k) => this.params.has(k));
    if (clash.length)
      throw new DermtlError(`feed(s) ${clash.join(', ')} are trainable params; the trainer feeds them itself`);
    return { ...feeds, ...Object.fromEntries(this.params) };
  }

  private readLosses(out: Record<string, { data: ArrayLike<unknown> }>, when: string): Record<string, number> {
    const losses: Record<string, number> = {};
    for (const name of this.lossNames) {
      const v = Number(out[name].data[0]);
      if (!Number.isFinite(v)) throw new DermtlError(`loss ${name} is ${v} ${when}`);
      losses[name] = v;
    }
    return losses;
  }
}
