/** Calls `each` with every complete, non-blank line a stream emits (a partial line waits for its end). */
export function forEachLine(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let partial = '';
  stream.on('data', (chunk: Buffer | string) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) if (line.trim()) each(line);
  });
}
