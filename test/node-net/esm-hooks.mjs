// ESM half of preload.js: `import ... from 'node:net'` (or 'net') in a test
// resolves to net-shim.mjs, which re-exports scif-net.
const shim = new URL('./net-shim.mjs', import.meta.url).href;
const dist = new URL('../../dist/', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if ((specifier === 'net' || specifier === 'node:net') && !(context.parentURL ?? '').startsWith(dist) &&
      context.parentURL !== shim) {
    return { url: shim, shortCircuit: true };
  }
  return next(specifier, context);
}
