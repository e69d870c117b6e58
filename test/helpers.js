// Shared by the tap files: small helpers most of them want.

/**
 * The first `event` from `emitter`, as a Promise of its first argument. Unlike
 * events.once it does not reject on 'error': tests wait for an 'error' or a
 * 'close' on purpose.
 */
function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, resolve));
}

/** The same, resolving with all of the event's arguments. */
function onceArgs(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

module.exports = { once, onceArgs };
