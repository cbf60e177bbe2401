'use strict';
// Persistent messages published with amqplib on confirm channels to exchange `messages`, routing key
// `messages`, with the properties of rabbitmq_client/sender.py. --concurrency channels, each with one
// publish unconfirmed at a time (--batch 100: publishes 100, then waits for their confirms); --amount
// publishes (or batches) after --warmup. The password comes from AMQP_PASSWORD. Prints one JSON line
// (common.js): the publish-to-confirm rate and latency; the bench measures when the messages are consumed.
const amqp = require('amqplib');
const { options, texts, chunks, pool, print, Measurement, randomUUID } = require('./common');

const given = options({
  host: '127.0.0.1',
  port: 5672,
  user: 'publisher',
  concurrency: 16,
  amount: 1000,
  warmup: 0,
  batch: 1,
});

function publish(channel, text, mandatory) {
  return new Promise((resolve, reject) => {
    const properties = {
      messageId: randomUUID(),
      persistent: true,
      contentType: 'text/plain',
      contentEncoding: 'utf-8',
      mandatory,
    };
    channel.publish('messages', 'messages', Buffer.from(text, 'utf-8'), properties, (error) =>
      error ? reject(error) : resolve(),
    );
  });
}

async function send(channels, requests, measurement) {
  await pool(given.concurrency, requests, async (batch, worker) => {
    const channel = channels[worker];
    const started = performance.now();
    try {
      if (batch.length === 1 && given.batch === 1) await publish(channel, batch[0], true);
      else await Promise.all(batch.map((text) => publish(channel, text, false)));
      if (measurement) {
        measurement.latencies.push(performance.now() - started);
        measurement.completedRequests += 1;
      }
    } catch (error) {
      if (measurement) measurement.error(/nack/i.test(String(error && error.message)) ? 'nack' : String(error));
    }
  });
}

async function main() {
  const password = encodeURIComponent(process.env.AMQP_PASSWORD || '');
  const connection = await amqp.connect(
    `amqp://${encodeURIComponent(given.user)}:${password}@${given.host}:${given.port}/`,
  );
  const channels = await Promise.all(
    Array.from({ length: given.concurrency }, () => connection.createConfirmChannel()),
  );
  let returned = 0;
  for (const channel of channels) channel.on('return', () => (returned += 1));
  if (given.warmup > 0) await send(channels, chunks(texts(given.warmup * given.batch, 'bench warm-up'), given.batch), null);
  const measured = chunks(texts(given.amount * given.batch, 'bench'), given.batch);
  const measurement = new Measurement(given.batch);
  measurement.start();
  await send(channels, measured, measurement);
  const result = measurement.finish();
  if (returned > 0) result.errors.unroutable = returned;
  print(result);
  await connection.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
