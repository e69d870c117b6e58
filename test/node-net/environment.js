// Kept tests that run.js runs with something added to their environment,
// each with its reason: { file: [env, why] }.
'use strict';

module.exports = {
  'test-net-connect-options-port.js': [
    { SCIF_NET_LOCALHOST: 'tcp' },
    'listens on 127.0.0.1 and expects connections to \'localhost\' and to a bare port to reach it: run with ' +
      'localhost meaning TCP, as SCIF_NET_LOCALHOST=tcp offers (its port checks are compared with node:net\'s ' +
      'over SCIF in test/net-compat.js)',
  ],
};
