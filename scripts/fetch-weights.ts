// Downloads (or checks) the ImageNet ResNet-50 weights into the dermtl cache and prints their folder.
//   node --import tsx scripts/fetch-weights.ts [--full]     (--full re-hashes an existing cache)
// Honours DERMTL_CACHE, XDG_CACHE_HOME and DERMTL_RESNET50_DIR like the library does.
import { ensurePretrainedResNet50 } from '../src/models/pretrained.ts';
import { DermtlError } from '../src/util/errors.ts';

try {
  const t0 = performance.now();
  const folder = await ensurePretrainedResNet50({ fullVerify: process.argv.includes('--full') });
  console.log(`${folder} (verified in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
} catch (e) {
  if (!(e instanceof DermtlError)) throw e;
  console.error(e.message);
  process.exit(e.exitCode);
}
