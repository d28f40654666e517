import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic.ts';
import { correlationHeatmapSpec } from '../figures/correlation.ts';
import { renderVegaLite } from '../render.ts';
import { confusionSpec, reliabilitySpec } from './calibrationFigures.ts';
import { figure3Spec } from './figure3.ts';
import { reportHtml } from './html.ts';
import { readResults, validateResults, type StudyResults } from '../../eval/studyResults.ts';
import { table1, table1Markdown } from './table1.ts';
import { REPORT_FILES } from '../../eval/studyPlan.ts';

// The study folder's file names (eval/studyPlan.ts), re-exported where they have always been found.
export { REPORT_FILES };

/**
 * Writes a study's report into `dir`: results.json, table1.md, figure1.svg/.png, figure3.svg/.png
 * and report.html, each atomically. `results` is validated first, so a runner that builds a wrong
 * object learns it before anything is written. results.json goes first: if rendering fails, the
 * numbers are kept and `rewriteStudyReport` can render them again.
 * A figure with nothing to draw (no lesion label in the manifest, no location results) is not
 * written; the page says why. Returns the paths written.
 */
export async function writeStudyReport(dir: string, results: StudyResults): Promise<string[]> {
  const r = validateResults(JSON.parse(JSON.stringify(results)), `study results for ${dir}`);
  const path = (name: string) => join(dir, name);
  const written: string[] = [];
  const write = async (name: string, data: string) => {
    await writeFileAtomic(path(name), data);
    written.push(path(name));
  };
  await write(REPORT_FILES.results, JSON.stringify(r, null, 2) + '\n');
  const t = table1(r);
  await write(REPORT_FILES.table1, table1Markdown(r, t));
  let figure1: string | null = null;
  if (r.dataset.cooccurrence.lesions.length > 0) {
    figure1 = (
      await renderVegaLite(correlationHeatmapSpec(r.dataset.cooccurrence), {
        svg: path(REPORT_FILES.figure1Svg),
        png: path(REPORT_FILES.figure1Png),
      })
    ).svg;
    written.push(path(REPORT_FILES.figure1Svg), path(REPORT_FILES.figure1Png));
  }
  let figure3: string | null = null;
  const spec3 = figure3Spec(r);
  if (spec3) {
    figure3 = (await renderVegaLite(spec3, { svg: path(REPORT_FILES.figure3Svg), png: path(REPORT_FILES.figure3Png) }))
      .svg;
    written.push(path(REPORT_FILES.figure3Svg), path(REPORT_FILES.figure3Png));
  }
  const optional = async (spec: ReturnType<typeof reliabilitySpec>, svg: string, png: string) => {
    if (!spec) return null;
    written.push(path(svg), path(png));
    return (await renderVegaLite(spec, { svg: path(svg), png: path(png) })).svg;
  };
  const reliability = await optional(reliabilitySpec(r), REPORT_FILES.reliabilitySvg, REPORT_FILES.reliabilityPng);
  const confusion = await optional(confusionSpec(r), REPORT_FILES.confusionSvg, REPORT_FILES.confusionPng);
  await write(REPORT_FILES.html, reportHtml(r, { figure1, figure3, reliability, confusion }, t));
  return written;
}

/** Renders the report again from a study folder's results.json (e.g. after a report change). */
export async function rewriteStudyReport(dir: string): Promise<string[]> {
  return writeStudyReport(dir, await readResults(join(dir, REPORT_FILES.results)));
}
