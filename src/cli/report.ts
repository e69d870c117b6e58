// One line for an error, and the line after it that says what to do.
import { hintFor } from './hints';

export function describe(err: unknown): string {
  const e = err as { message?: string };
  return e && typeof e.message === 'string' ? e.message : String(err);
}

/** Writes the error (and its fix, when known) to stderr, as `scif-net CMD: ...`. */
export function report(command: string, err: unknown): void {
  process.stderr.write(`scif-net${command ? ` ${command}` : ''}: ${describe(err)}\n`);
  const hint = hintFor(err as object);
  if (hint) process.stderr.write(`  fix: ${hint}\n`);
}
