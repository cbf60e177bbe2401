'use strict';
// POST /messages (or /messages/batch with --batch 100) with autocannon: --concurrency connections,
// --amount requests after a warm-up of --warmup requests; a unique Idempotency-Key per message.
// Prints one JSON line (common.js); only 2xx answers count as completed.
const autocannon = require('autocannon');
const { options, texts, print, Measurement, randomUUID } = require('./common');

const given = options({ url: 'http://127.0.0.1:8000', concurrency: 16, amount: 1000, warmup: 100, batch: 1 });

// The bodies and keys are made before the run, so the generator's CPU goes to sending them. autocannon may
// prepare a request per connection beyond `amount`: those get bodies of their own too.
function request(amount, label) {
  const count = amount + given.concurrency;
  const messages = texts(count * given.batch, label);
  let next = 0;
  if (given.batch === 1) {
    const keys = messages.map(() => randomUUID());
    const bodies = messages.map((message) => JSON.stringify({ message }));
    return {
      method: 'POST',
      path: '/messages',
      setupRequest: (req) => {
        const i = next++ % count;
        return {
          ...req,
          headers: { ...req.headers, 'content-type': 'application/json', 'idempotency-key': keys[i] },
          body: bodies[i],
        };
      },
    };
  }
  const bodies = [];
  for (let i = 0; i < count; i++) {
    const items = messages.slice(i * given.batch, (i + 1) * given.batch);
    bodies.push(JSON.stringify({ messages: items.map((message) => ({ message, idempotency_key: randomUUID() })) }));
  }
  return {
    method: 'POST',
    path: '/messages/batch',
    setupRequest: (req) => ({
      ...req,
      headers: { ...req.headers, 'content-type': 'application/json' },
      body: bodies[next++ % count],
    }),
  };
}

// autocannon settles its promise on its next sample tick: the last answer's time is taken here instead,
// and a short sample interval keeps the wait after it short.
function run(amount, label, measurement) {
  const requests = [request(amount, `${label} ${randomUUID().slice(0, 8)}`)];
  if (measurement) measurement.start();
  const instance = autocannon({
    url: given.url,
    connections: given.concurrency,
    amount,
    timeout: 30,
    sampleInt: 10,
    requests,
  });
  if (measurement) {
    instance.on('response', (client, statusCode, bytes, responseTime) => {
      measurement.answered();
      if (statusCode >= 200 && statusCode < 300) {
        measurement.completedRequests += 1;
        measurement.latencies.push(responseTime);
      } else measurement.error(`http ${statusCode}`);
    });
  }
  return instance;
}

async function main() {
  if (given.warmup > 0) await run(given.warmup, 'bench warm-up', null);
  const measurement = new Measurement(given.batch);
  const result = await run(given.amount, 'bench', measurement);
  if (result.errors - result.timeouts > 0) measurement.errors.socket = result.errors - result.timeouts;
  if (result.timeouts > 0) measurement.errors.timeout = result.timeouts;
  print(measurement.finish());
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
