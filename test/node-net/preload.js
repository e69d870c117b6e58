// Preloaded (NODE_OPTIONS=--require) into every process of a Node test that
// run.js runs, its children included: `require('net')` / `require('node:net')`
// (and `import 'node:net'`, through esm-hooks.mjs) give scif-net, except
// inside scif-net itself, which is built on the real node:net.
//
// With SCIF_NET_NODE_TEST_USAGE set it also notes, the first time each
// happens in a process, that the test made a SCIF connection or listened
// over SCIF, or used node:net's own transports (TCP or a pipe, through
// scif-net's pass-through or directly): one line appended to that file per
// kind, at once (a child killed later has still told), so the runner can say
// which tests exercised SCIF and which only node:net.
'use strict';
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const url = require('node:url');

const root = path.resolve(__dirname, '..', '..');
const dist = path.join(root, 'dist') + path.sep;
const realNet = require('node:net');

let scifNet = null;
function loadScifNet() {
  if (!scifNet) {
    scifNet = require(root);
    instrument(scifNet);
  }
  return scifNet;
}

const load = Module._load;
Module._load = function (request, parent, isMain) {
  if ((request === 'net' || request === 'node:net') && !parent?.filename?.startsWith(dist)) return loadScifNet();
  return load.apply(this, arguments);
};

if (process.argv[1]?.endsWith('.mjs')) {
  Module.register(url.pathToFileURL(path.join(__dirname, 'esm-hooks.mjs')));
}

const report = process.env.SCIF_NET_NODE_TEST_USAGE;
const noted = new Set();
function note(kind) {
  if (noted.has(kind)) return;
  noted.add(kind);
  try {
    fs.appendFileSync(report, `${kind}\n`);
  } catch {
    // Only a report.
  }
}

function instrument(net) {
  if (!report) return;
  const carriesSCIF = (socket) => {
    const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kScif');
    return sym !== undefined && socket[sym] != null;
  };
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    const result = connect.apply(this, args);
    if (carriesSCIF(this)) note('scif');
    return result;
  };
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (...args) {
    const result = listen.apply(this, args);
    if (this._handle?.constructor?.name === 'ListenHandle') note('scif');
    return result;
  };
}

if (report) {
  for (const [proto, name] of [[realNet.Socket.prototype, 'connect'], [realNet.Server.prototype, 'listen']]) {
    const original = proto[name];
    proto[name] = function (...args) {
      const result = original.apply(this, args);
      note('node:net');  // not for calls that throw (bad arguments)
      return result;
    };
  }
}
