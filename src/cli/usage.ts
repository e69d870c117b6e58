// How the CLI fails: a usage error (exit 2, with a pointer to --help) or a
// runtime error (exit 1), each one line on stderr naming the cause, and where
// the cause is a known one, a second line with the fix (hints.ts).

/** Bad command-line arguments: exit status 2, as getopt-style tools. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;
