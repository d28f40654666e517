// The house rules of src/ (README "Layout"): data flows one way through the folders, and no file imports itself
// back through a chain of others. Lists (a) file-level import cycles and (b) imports that go UP the layer order.
// Every import counts: static, `import type`, re-exports and dynamic `import()`.
//   node --import tsx scripts/check-layers.ts [--json]      exit 1 when anything is found
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folders of src/, lowest first; a file may import its own folder and any folder before it. */
export const LAYERS: readonly (readonly string[])[] = [
  ['util'],
  ['data'],
  ['image'],
  ['graph'],
  ['models'],
  ['metrics'],
  ['train'],
  ['eval'],
  ['report'],
  ['serve'],
  ['explain'], // Grad-CAM overlays and `dermtl explain`, drawn from the serving library's explanations
  ['cli'],
  ['.'], // src/index.ts, the library's public face
];

export interface ImportEdge {
  from: string; // path relative to src/, '/'-separated
  to: string;
  kind: 'static' | 'type' | 'dynamic';
  line: number;
}

export interface LayerReport {
  /** Every source file, relative to src/. */
  paths: string[];
  files: number;
  edges: ImportEdge[];
  /** Each group of files that reach one another (a strongly connected component), with one example loop. */
  cycles: { files: string[]; loop: string[] }[];
  upward: ImportEdge[];
}

const EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

function listFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return listFiles(p);
      return EXTENSIONS.some((e) => name.endsWith(e)) && !name.endsWith('.d.ts') ? [p] : [];
    });
}

/** The source with comments blanked out (strings, template literals and regular expressions kept; newlines kept). */
export function stripComments(src: string): string {
  let out = '';
  let i = 0;
  const n = src.length;
  const templateDepth: number[] = []; // brace depth at which each open `${` returns to its template literal
  let braces = 0;
  let lastSignificant = '';
  const regexAllowedAfter = '(,=:[!&|?{};+-*%<>~^';
  while (i < n) {
    const c = src[i];
    const d = src[i + 1];
    if (c === '/' && d === '/') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && d === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < n && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
      lastSignificant = c;
      continue;
    }
    if (c === '`' || (c === '}' && templateDepth.length && templateDepth[templateDepth.length - 1] === braces)) {
      if (c === '}') templateDepth.pop();
      let j = i + 1;
      while (j < n && src[j] !== '`' && !(src[j] === '$' && src[j + 1] === '{')) j += src[j] === '\\' ? 2 : 1;
      if (src[j] === '$') {
        templateDepth.push(braces);
        out += src.slice(i, j + 2);
        i = j + 2;
      } else {
        out += src.slice(i, j + 1);
        i = j + 1;
      }
      lastSignificant = '`';
      continue;
    }
    if (c === '/') {
      const before = out.trimEnd();
      const word = /([A-Za-z_$][\w$]*)$/.exec(before)?.[1];
      const isRegex =
        lastSignificant === '' ||
        regexAllowedAfter.includes(lastSignificant) ||
        (word !== undefined && ['return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'void'].includes(word));
      if (isRegex) {
        let j = i + 1;
        let inClass = false;
        while (j < n && src[j] !== '\n' && (inClass || src[j] !== '/')) {
          if (src[j] === '\\') j++;
          else if (src[j] === '[') inClass = true;
          else if (src[j] === ']') inClass = false;
          j++;
        }
        out += src.slice(i, j + 1);
        i = j + 1;
        lastSignificant = 'a';
        continue;
      }
    }
    if (c === '{') braces++;
    if (c === '}') braces--;
    if (!/\s/.test(c)) lastSignificant = /[\w$)\]]/.test(c) ? 'a' : c;
    out += c;
    i++;
  }
  return out;
}

/** The relative imports of one source text: specifier, kind and line. */
export function scanImports(src: string): { specifier: string; kind: ImportEdge['kind']; line: number }[] {
  const code = stripComments(src);
  const found: { specifier: string; kind: ImportEdge['kind']; line: number; at: number }[] = [];
  const lineOf = (at: number) => code.slice(0, at).split('\n').length;
  // import x from '...', import { a, type b } from '...', import type { T } from '...', export { a } from '...',
  // export * from '...', import '...'
  const statement = /(^|[;}\s])(import|export)(\s+type)?(?:\s*[\w$*{][^;'"`]*?\bfrom)?\s*(['"])([^'"\n]+)\4/g;
  for (let m = statement.exec(code); m; m = statement.exec(code)) {
    const head = code.slice(m.index, m.index + m[0].length);
    if (m[2] === 'export' && !/\bfrom\s*['"]/.test(head)) continue;
    // `import type` / `export type` statements; `import { type A, type B }` with only types also erases
    const named = /\{([^}]*)\}/.exec(head)?.[1];
    const allTypeNames =
      named !== undefined &&
      !/^\s*(?:import|export)\s+[\w$]+\s*,/.test(head.replace(/^[;}\s]/, '')) &&
      named.split(',').every((s) => s.trim() === '' || /^type\s/.test(s.trim()));
    const kind = m[3] || allTypeNames ? 'type' : 'static';
    found.push({ specifier: m[5], kind, line: lineOf(m.index + m[1].length), at: m.index });
  }
  const dynamic = /\bimport\s*\(\s*(['"`])([^'"`\n$]+)\1\s*[,)]/g;
  for (let m = dynamic.exec(code); m; m = dynamic.exec(code)) {
    found.push({ specifier: m[2], kind: 'dynamic', line: lineOf(m.index), at: m.index });
  }
  return found
    .filter((f) => f.specifier.startsWith('.'))
    .sort((a, b) => a.at - b.at)
    .map(({ specifier, kind, line }) => ({ specifier, kind, line }));
}

/** The layer index of a file (path relative to src/), or -1 for a folder the order does not name. */
export function layerOf(file: string): number {
  const top = file.includes('/') ? file.slice(0, file.indexOf('/')) : '.';
  return LAYERS.findIndex((names) => names.includes(top));
}

function resolveImport(srcRoot: string, fromAbs: string, specifier: string, known: Set<string>): string | undefined {
  const target = resolve(dirname(fromAbs), specifier);
  const candidates = [target, ...EXTENSIONS.map((e) => target.replace(/\.(js|mjs)$/, '') + e)];
  candidates.push(...EXTENSIONS.map((e) => join(target, 'index' + e)));
  for (const c of candidates) {
    const rel = relative(srcRoot, c).split(sep).join('/');
    if (known.has(rel)) return rel;
  }
  return undefined;
}

/** Tarjan's strongly connected components; returns those with a loop (more than one file, or a self import). */
function loops(nodes: string[], next: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1 || (next.get(v) ?? []).includes(v)) out.push(group.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) visit(v);
  return out;
}

/** One shortest loop through the first file of a group, inside the group. */
function exampleLoop(group: string[], next: Map<string, string[]>): string[] {
  const inGroup = new Set(group);
  const start = group[0];
  const prev = new Map<string, string>();
  const queue = [start];
  const seen = new Set([start]);
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of next.get(v) ?? []) {
      if (!inGroup.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(prev.get(path[0])!);
        return [...path, start];
      }
      if (!seen.has(w)) {
        seen.add(w);
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

export function checkLayers(srcRoot: string): LayerReport {
  const abs = listFiles(srcRoot);
  const files = abs.map((f) => relative(srcRoot, f).split(sep).join('/'));
  const known = new Set(files);
  const edges: ImportEdge[] = [];
  abs.forEach((f, i) => {
    for (const imp of scanImports(readFileSync(f, 'utf8'))) {
      const to = resolveImport(srcRoot, f, imp.specifier, known);
      if (to !== undefined) edges.push({ from: files[i], to, kind: imp.kind, line: imp.line });
    }
  });
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...new Set([...(next.get(e.from) ?? []), e.to])]);
  const cycles = loops(files, next).map((g) => ({ files: g, loop: exampleLoop(g, next) }));
  const upward = edges.filter((e) => {
    const a = layerOf(e.from);
    const b = layerOf(e.to);
    return a < 0 || b < 0 || b > a;
  });
  return { paths: files, files: files.length, edges, cycles, upward };
}

export function formatReport(r: LayerReport): string {
  const lines = [`${r.files} files, ${r.edges.length} imports`];
  lines.push(`import cycles: ${r.cycles.length}`);
  for (const c of r.cycles) {
    lines.push(`  ${c.files.length} files: ${c.files.join(', ')}`);
    lines.push(`    e.g. ${c.loop.join(' -> ')}`);
  }
  lines.push(`imports up the layers (${LAYERS.map((l) => l.join('|')).join(' < ')}): ${r.upward.length}`);
  for (const e of r.upward) lines.push(`  ${e.from}:${e.line} -> ${e.to}${e.kind === 'static' ? '' : ` (${e.kind})`}`);
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const report = checkLayers(root);
  console.log(process.argv.includes('--json') ? JSON.stringify(report, null, 2) : formatReport(report));
  process.exit(report.cycles.length || report.upward.length ? 1 : 0);
}
