// The package as a user gets it (src/index.ts and bin/dermtl.js, built): `npm pack` (which builds dist/ through the
// `prepare` script), the tarball installed into a blank project with npm's ordinary install (dependencies from the
// npm cache where they are there: --prefer-offline), then, in that project and with none of dermtl's devDependencies
// (no tsx, no esbuild, no typescript in its node_modules):
//   - a plain .mjs file: import { loadModel } from 'dermtl';
//   - a TypeScript file type-checked against the published declarations (strict, no skipLibCheck);
//   - the installed `dermtl` command: --version (package.json's), --help;
//   - the web page served from the prebuilt bundle, and the image loader's worker threads, from dist/.
// Slow (about a minute, mostly npm extracting onnxruntime-node): one test with every check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import sharp from 'sharp';
import { tempDir } from './data/helpers.ts';

const ROOT = join(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const require = createRequire(import.meta.url);
const TSC = join(require.resolve('typescript/package.json'), '..', 'bin', 'tsc');
const TYPES_NODE = (
  JSON.parse(readFileSync(require.resolve('@types/node/package.json'), 'utf8')) as { version: string }
).version;
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd: string, args: string[], opts: SpawnSyncOptions): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 240_000, ...opts });
  const out = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${out.stdout}\n${out.stderr}`);
  return out;
}

test('npm pack -> npm install in a blank project -> import, types, CLI, web page and workers from the package', {
  timeout: 300_000,
}, async (t) => {
  const dir = await tempDir('dermtl-pack-');
  const project = join(dir, 'project');
  await mkdir(project);
  try {
    const t0 = Date.now();
    run(NPM, ['pack', '--pack-destination', dir], { cwd: ROOT });
    const tarball = join(dir, `${pkg.name}-${pkg.version}.tgz`);
    assert.ok(existsSync(tarball), `npm pack wrote no ${tarball}`);
    const tPack = Date.now();

    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // The repository's own .npmrc setting: onnxruntime-node's install script would fetch CUDA binaries.
    await writeFile(join(project, '.npmrc'), 'onnxruntime-node-install=skip\n');
    run(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `@types/node@${TYPES_NODE}`], {
      cwd: project,
    });
    const tInstall = Date.now();
    const installed = join(project, 'node_modules', pkg.name);
    for (const dev of ['tsx', 'esbuild', 'typescript'])
      assert.ok(!existsSync(join(project, 'node_modules', dev)), `${dev} was installed with the package`);
    assert.deepEqual(readdirSync(installed).sort(), ['LICENSE', 'README.md', 'bin', 'dist', 'package.json']);

    // Plain JavaScript, as in the README.
    await writeFile(
      join(project, 'plain.mjs'),
      [
        "import { loadModel, TTA_MODES, DermtlError } from 'dermtl';",
        "if (typeof loadModel !== 'function') throw new Error(`loadModel is ${typeof loadModel}`);",
        'console.log(JSON.stringify({ loadModel: typeof loadModel, tta: TTA_MODES, error: typeof DermtlError }));',
      ].join('\n'),
    );
    const plain = run(process.execPath, ['plain.mjs'], { cwd: project });
    assert.deepEqual(JSON.parse(plain.stdout), { loadModel: 'function', tta: ['center', '10crop'], error: 'function' });

    // TypeScript against the published declarations; the @ts-expect-error lines fail the check if the types were `any`.
    await writeFile(
      join(project, 'typed.ts'),
      [
        "import { loadModel, createServer, DermtlError, type DermtlModel, type Prediction } from 'dermtl';",
        "const model: DermtlModel = await loadModel('model-folder', { threads: 1 });",
        "const p: Prediction = await model.predict('lesion.jpg', { tta: '10crop', top: 3 });",
        'const label: string | undefined = p.lesions[0]?.label;',
        'console.log(label, p.location[0]?.p.toFixed(2), model.labels, createServer, DermtlError);',
        '// @ts-expect-error: a model folder is a path',
        'await loadModel(42);',
        '// @ts-expect-error: no such test-time augmentation',
        "await model.predict('lesion.jpg', { tta: 'five-crop' });",
        'await model.dispose();',
      ].join('\n'),
    );
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      files: ['typed.ts'],
    };
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify(tsconfig));
    run(process.execPath, [TSC, '-p', project], { cwd: project });

    // The command npm links for the package.
    const bin = join(project, 'node_modules', '.bin', 'dermtl');
    assert.equal(run(bin, ['--version'], { cwd: project }).stdout.trim(), pkg.version);
    assert.match(run(bin, ['--help'], { cwd: project }).stdout, /^Usage: dermtl \[options\] \[command\]/);

    // Served from dist/serve/web/page (esbuild is not installed here), and the loader's workers start from dist/.
    await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 120, b: 90 } } })
      .jpeg()
      .toFile(join(project, 'a.jpg'));
    await writeFile(
      join(project, 'dist.mjs'),
      [
        `import { buildWebAssets } from ${JSON.stringify(join(installed, 'dist/serve/web/index.js'))};`,
        `import { ImageLoader } from ${JSON.stringify(join(installed, 'dist/image/loader.js'))};`,
        'const assets = await buildWebAssets();',
        'const loader = new ImageLoader({ workers: 1, prefetch: 1 });',
        'const sizes = [];',
        "for await (const b of loader.batches([{ path: 'a.jpg' }], { mode: 'center', batchSize: 1, seed: 0 })) sizes.push(b.data.length);",
        'await loader.close();',
        "console.log(JSON.stringify({ paths: [...assets.keys()].sort(), app: String(assets.get('/app.js').body).length, sizes }));",
      ].join('\n'),
    );
    const out = JSON.parse(run(process.execPath, ['dist.mjs'], { cwd: project }).stdout) as {
      paths: string[];
      app: number;
      sizes: number[];
    };
    assert.deepEqual(out.paths, [
      '/',
      '/app.js',
      '/app.js.map',
      '/ort/ort-wasm-simd-threaded.mjs',
      '/ort/ort-wasm-simd-threaded.wasm',
      '/ort/ort.wasm.min.mjs',
      '/style.css',
    ]);
    assert.ok(out.app > 1000, `app.js has ${out.app} characters`);
    assert.deepEqual(out.sizes, [3 * 224 * 224]);
    const s = (a: number, b: number) => ((b - a) / 1000).toFixed(1);
    t.diagnostic(
      `npm pack ${s(t0, tPack)} s, npm install ${s(tPack, tInstall)} s, checks ${s(tInstall, Date.now())} s`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
