// A short soak (npm run soak runs a long one): HTTP keep-alive load with
// checksummed bodies over SCIF while the server is SIGKILLed and restarted
// three times. Every request is answered whole or fails with a coded error;
// none is answered wrong, none hangs.
require('./fixtures/fabric');
const t = require('tap');
const { soak } = require('./fixtures/soak');

t.test('keep-alive load across three server kills', async (t) => {
  const { counts, errors } = await soak({ kills: 3, clients: 4, log: (l) => t.comment(l) });
  t.comment(JSON.stringify({ ...counts, errors }));
  t.equal(counts.kills, 3, 'the server was killed three times under load');
  t.equal(counts.wrong, 0, 'no answer carried wrong bytes');
  t.equal(counts.hung, 0, 'no request hung');
  t.equal(counts.answered + counts.failedCleanly, counts.sent, 'every request ended, answered or failed cleanly');
  t.ok(counts.answered >= 800, `${counts.answered} answered: the server came back each time`);
  for (const code of Object.keys(errors)) t.match(code, /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/, `failures are coded (${code})`);
});
