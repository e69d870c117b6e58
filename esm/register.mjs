// node --import scif-net/register app.mjs: the same redirection as --require
// (dist/register.js), installed before the program's modules are loaded.
import '../dist/register.js';
