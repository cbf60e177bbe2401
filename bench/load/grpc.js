'use strict';
// suite.v1.MessageService/SendMessage (or SendMessageBatch with --batch 100): --concurrency calls in flight
// on one HTTP/2 connection, --amount calls after --warmup calls, a unique idempotency_key per message.
// Prints one JSON line (common.js).
// The client is grpc-wire.js.
const { method, connect, call } = require('./grpc-wire');
const { options, texts, chunks, pool, print, Measurement, randomUUID } = require('./common');

const given = options({
  target: '127.0.0.1:50051',
  concurrency: 16,
  amount: 1000,
  warmup: 100,
  batch: 1,
  timeout: 30,
});

const wanted = method(given.batch);

function requests(calls, label) {
  const messages = texts(calls * given.batch, label).map((message) => ({ message, idempotency_key: randomUUID() }));
  return chunks(messages, given.batch).map((call) => wanted.encode(call));
}

async function send(session, framedCalls, measurement) {
  await pool(given.concurrency, framedCalls, async (framed) => {
    const started = performance.now();
    try {
      await call(session, wanted.path, framed, given.timeout);
      if (measurement) {
        measurement.latencies.push(performance.now() - started);
        measurement.completedRequests += 1;
      }
    } catch (error) {
      if (measurement) measurement.error(error.kind || String(error));
    }
  });
}

async function main() {
  const session = await connect(given.target);
  if (given.warmup > 0) await send(session, requests(given.warmup, 'bench warm-up'), null);
  const measured = requests(given.amount, 'bench');
  const measurement = new Measurement(given.batch);
  measurement.start();
  await send(session, measured, measurement);
  print(measurement.finish());
  session.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
