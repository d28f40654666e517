// Learning-rate drop on a validation-loss plateau (the paper: lr x0.1 when the validation loss stops
// improving). Same rules as PyTorch's ReduceLROnPlateau in 'min' mode with a relative threshold.
import { DermtlError } from '../util/errors.ts';

export interface PlateauOptions {
  /** Multiplier applied on a plateau; default 0.1. */
  factor?: number;
  /** Evaluations without improvement that are tolerated; the next one without improvement lowers lr. Default 2. */
  patience?: number;
  /** Improvement means loss < best * (1 - threshold); default 1e-4. */
  threshold?: number;
  /** Evaluations to wait after a drop before counting again; default 0. */
  cooldown?: number;
  /** The lr never goes below this; default 0. */
  minLr?: number;
}

export interface PlateauState {
  best: number | null;
  badEvals: number;
  cooldownLeft: number;
  evals: number;
  reductions: number;
}

/** Anything with a learning rate (the optimizer). */
export interface LrTarget {
  readonly learningRate: number;
  setLearningRate(lr: number): void;
}

export class ReduceOnPlateau {
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly cooldown: number;
  readonly minLr: number;
  private s: PlateauState = { best: null, badEvals: 0, cooldownLeft: 0, evals: 0, reductions: 0 };

  constructor(
    private readonly target: LrTarget,
    opts: PlateauOptions = {},
  ) {
    this.factor = opts.factor ?? 0.1;
    this.patience = opts.patience ?? 2;
    this.threshold = opts.threshold ?? 1e-4;
    this.cooldown = opts.cooldown ?? 0;
    this.minLr = opts.minLr ?? 0;
    if (!(this.factor > 0 && this.factor < 1))
      throw new DermtlError(`plateau factor must be in (0, 1), got ${this.factor}`);
    for (const [k, v] of [
      ['patience', this.patience],
      ['cooldown', this.cooldown],
    ] as const) {
      if (!(Number.isInteger(v) && v >= 0)) throw new DermtlError(`plateau ${k} must be a whole number >= 0, got ${v}`);
    }
    if (!(this.threshold >= 0 && this.threshold < 1))
      throw new DermtlError(`plateau threshold must be in [0, 1), got ${this.threshold}`);
    if (!(this.minLr >= 0 && Number.isFinite(this.minLr)))
      throw new DermtlError(`minimum lr must be a finite number >= 0, got ${this.minLr}`);
  }

  /** Feeds one validation loss; returns true when it lowered the learning rate. */
  observe(loss: number): boolean {
    if (!Number.isFinite(loss))
      throw new DermtlError(`validation loss is ${loss} at evaluation ${this.s.evals + 1}; training has diverged`);
    const s = this.s;
    s.evals++;
    if (s.best === null || loss < s.best * (1 - this.threshold)) {
      s.best = loss;
      s.badEvals = 0;
    } else {
      s.badEvals++;
    }
    if (s.cooldownLeft > 0) {
      s.cooldownLeft--;
      s.badEvals = 0;
    }
    if (s.badEvals <= this.patience) return false;
    s.badEvals = 0;
    s.cooldownLeft = this.cooldown;
    const old = this.target.learningRate;
    const lr = Math.max(old * this.factor, this.minLr);
    if (old - lr <= 1e-12 * old) return false; // already at the floor
    this.target.setLearningRate(lr);
    s.reductions++;
    return true;
  }

  get best(): number | null {
    return this.s.best;
  }

  state(): PlateauState {
    return { ...this.s };
  }

  loadState(s: PlateauState, label = 'scheduler state'): void {
    if (!isPlateauState(s)) throw new DermtlError(`${label}: not a plateau scheduler state: ${JSON.stringify(s)}`);
    this.s = {
      best: s.best,
      badEvals: s.badEvals,
      cooldownLeft: s.cooldownLeft,
      evals: s.evals,
      reductions: s.reductions,
    };
  }
}

export function isPlateauState(s: unknown): s is PlateauState {
  const x = s as PlateauState | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    (x.best === null || Number.isFinite(x.best)) &&
    [x.badEvals, x.cooldownLeft, x.evals, x.reductions].every((v) => Number.isInteger(v) && v >= 0)
  );
}
