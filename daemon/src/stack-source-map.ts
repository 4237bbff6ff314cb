/**
 * Stack traces that name the TypeScript sources, paid for only when a stack is formatted.
 *
 * The bundle (scripts/bundle.ts) ships a linked source map. Node's `--enable-source-maps` would
 * parse it at start and keep it on the heap for good (~2.6 MiB of idle RSS, docs/benchmarks.md
 * "Idle memory"), for stacks that fleetd formats only when something goes wrong: its logger
 * writes an error's name and message, not its stack (log.ts). So instead the map is read the
 * first time V8 formats a stack (`Error.prepareStackTrace`: an uncaught exception's report,
 * `util.inspect` of an error) and dropped again `MAP_KEEP_MS` after its last use.
 * Without a map beside the running file (a checkout run through tsx) nothing is installed:
 * those stacks name the sources already.
 */
import * as fs from 'node:fs';
import { SourceMap } from 'node:module';
import * as path from 'node:path';

/** How long a parsed map stays after the last stack it mapped (a crash's or a burst's stacks share one parse). */
export const MAP_KEEP_MS = 60_000;

/** One frame's place in the generated file, as V8 reports it (1-based line and column). */
interface GeneratedPosition {
  readonly line: number;
  readonly column: number;
}

/** The map of one generated file, parsed on demand and released when unused. */
export class LazySourceMap {
  private map?: SourceMap | null;
  private dropTimer?: NodeJS.Timeout;

  constructor(
    private readonly mapFile: string,
    private readonly keepMs = MAP_KEEP_MS,
  ) {}

  /** `source:line:column` of a generated position (1-based), or undefined when the map has no entry. */
  original(at: GeneratedPosition): string | undefined {
    const map = this.load();
    if (!map) return undefined;
    const entry = map.findEntry(at.line - 1, at.column - 1) as Partial<{ originalSource: string; originalLine: number; originalColumn: number }>;
    if (entry.originalSource === undefined || entry.originalLine === undefined || entry.originalColumn === undefined) return undefined;
    return `${displaySource(entry.originalSource)}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  }

  /** Whether a parsed map is held now (tests). */
  get loaded(): boolean {
    return this.map !== undefined && this.map !== null;
  }

  private load(): SourceMap | null {
    if (this.map === undefined) {
      try {
        this.map = new SourceMap(JSON.parse(fs.readFileSync(this.mapFile, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]);
      } catch {
        // Unreadable or not a map: stacks stay as V8 made them, and we do not try again.
        this.map = null;
      }
    }
    if (this.map) {
      clearTimeout(this.dropTimer);
      this.dropTimer = setTimeout(() => (this.map = undefined), this.keepMs);
      this.dropTimer.unref();
    }
    return this.map;
  }
}

/**
 * The source's path as an operator reads it: relative to the map it is the repository's path
 * behind some `../` (e.g. `../../daemon/src/receiver.ts` → `daemon/src/receiver.ts`); a
 * `file://` URL becomes its path, an absolute path stays.
 */
function displaySource(source: string): string {
  if (source.startsWith('file://')) return new URL(source).pathname;
  return path.isAbsolute(source) ? source : path.normalize(source).replace(/^(\.\.[\\/])+/, '');
}

/**
 * Formats stacks of `generatedFile` frames through its map. Frames of other files keep V8's
 * text. Formatting never throws: on any failure the frame (or the stack) stays unmapped.
 * Returns false (and installs nothing) when the file has no `.map` beside it.
 */
export function installStackSourceMap(generatedFile: string): boolean {
  const mapFile = `${generatedFile}.map`;
  if (!fs.existsSync(mapFile)) return false;
  const map = new LazySourceMap(mapFile);
  Error.prepareStackTrace = (error: Error, frames: NodeJS.CallSite[]) => formatStack(error, frames, generatedFile, map);
  return true;
}

/** V8's own layout (`Name: message` then `    at …` per frame), with the generated file's frames mapped. */
export function formatStack(error: unknown, frames: readonly NodeJS.CallSite[], generatedFile: string, map: LazySourceMap): string {
  let header: string;
  try {
    header = Error.prototype.toString.call(error);
  } catch {
    header = 'Error';
  }
  const lines = frames.map((frame) => {
    const text = String(frame);
    try {
      const line = frame.getLineNumber();
      const column = frame.getColumnNumber();
      if (frame.getFileName() !== generatedFile || line === null || column === null) return text;
      const original = map.original({ line, column });
      return original ? text.replace(`${generatedFile}:${line}:${column}`, original) : text;
    } catch {
      return text;
    }
  });
  return [header, ...lines.map((l) => `    at ${l}`)].join('\n');
}
