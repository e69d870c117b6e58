#!/usr/bin/env node
// The scif-net command (src/cli/main.ts). The exit status is set, not forced:
// a command's last output reaches a pipe before the process ends.
'use strict';
let main;
try {
  ({ main } = require('../dist/cli/main.js'));
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]main/.test(err.message)) {
    process.stderr.write('scif-net: dist/ is not built: run `npm run build` (or `npm install`) in the scif-net package\n');
    process.exit(1);
  }
  throw err;
}
main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
