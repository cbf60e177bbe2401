'use strict';
// suite.v1.MessageService/SendMessage (or SendMessageBatch with --batch 100) with @grpc/grpc-js:
// --concurrency calls in flight on one channel, --amount calls after --warmup calls, a unique
// idempotency_key per message. Prints one JSON line (common.js).
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { options, texts, chunks, pool, print, Measurement, randomUUID } = require('./common');

const given = options({
  target: '127.0.0.1:50051',
  protos: path.join(__dirname, '..', '..', 'protos'),
  concurrency: 16,
  amount: 1000,
  warmup: 100,
  batch: 1,
});

const definition = protoLoader.loadSync('suite/v1/messages.proto', {
  includeDirs: [given.protos],
  keepCase: true,
  longs: String,
  defaults: true,
});
const { MessageService } = grpc.loadPackageDefinition(definition).suite.v1;
const client = new MessageService(given.target, grpc.credentials.createInsecure());

function call(messages) {
  const deadline = new Date(Date.now() + 30_000);
  return new Promise((resolve, reject) => {
    const done = (error) => (error ? reject(error) : resolve());
    if (messages.length === 1 && given.batch === 1) client.SendMessage(messages[0], { deadline }, done);
    else client.SendMessageBatch({ messages }, { deadline }, done);
  });
}

function requests(calls, label) {
  return chunks(
    texts(calls * given.batch, label).map((message) => ({ message, idempotency_key: randomUUID() })),
    given.batch,
  );
}

async function send(requests, measurement) {
  await pool(given.concurrency, requests, async (messages) => {
    const started = performance.now();
    try {
      await call(messages);
      if (measurement) {
        measurement.latencies.push(performance.now() - started);
        measurement.completedRequests += 1;
      }
    } catch (error) {
      if (measurement) measurement.error(grpc.status[error.code] || String(error.code));
    }
  });
}

async function main() {
  await new Promise((resolve, reject) =>
    client.waitForReady(Date.now() + 30_000, (error) => (error ? reject(error) : resolve())),
  );
  if (given.warmup > 0) await send(requests(given.warmup, 'bench warm-up'), null);
  const measured = requests(given.amount, 'bench');
  const measurement = new Measurement(given.batch);
  measurement.start();
  await send(measured, measurement);
  print(measurement.finish());
  client.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
