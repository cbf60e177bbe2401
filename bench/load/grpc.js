'use strict';
// suite.v1.MessageService/SendMessage (or SendMessageBatch with --batch 100): --concurrency calls in flight
// on one HTTP/2 connection, --amount calls after --warmup calls, a unique idempotency_key per message.
// Prints one JSON line (common.js).
//
// A minimal gRPC client on node:http2 (the gRPC wire format: a length-prefixed protobuf message, the
// status in the grpc-status trailer), the messages encoded by protobufjs from /protos: @grpc/grpc-js
// spent about 3 times its CPU per call on this machine (0.5 against 0.17 ms), enough to make the
// generator the limit of a no-op server.
const http2 = require('node:http2');
const path = require('node:path');
const protobuf = require('protobufjs');
const { options, texts, chunks, pool, print, Measurement, randomUUID } = require('./common');

const given = options({
  target: '127.0.0.1:50051',
  protos: path.join(__dirname, '..', '..', 'protos'),
  concurrency: 16,
  amount: 1000,
  warmup: 100,
  batch: 1,
  timeout: 30,
});

const root = new protobuf.Root();
root.resolvePath = (origin, target) => (target.startsWith('google/') ? target : path.join(given.protos, target));
root.loadSync('suite/v1/messages.proto', { keepCase: true });
const single = root.lookupType('suite.v1.SendMessageRequest');
const batch = root.lookupType('suite.v1.SendMessageBatchRequest');
const method = given.batch === 1 ? 'SendMessage' : 'SendMessageBatch';

// One request message in its gRPC frame: not compressed (0), its length, the message.
function frame(messages) {
  const body = given.batch === 1 ? single.encode(messages[0]).finish() : batch.encode({ messages }).finish();
  const framed = Buffer.alloc(5 + body.length);
  framed.writeUInt32BE(body.length, 1);
  framed.set(body, 5);
  return framed;
}

class CallError extends Error {
  constructor(kind) {
    super(kind);
    this.kind = kind;
  }
}

function call(session, framed) {
  return new Promise((resolve, reject) => {
    const stream = session.request(
      {
        ':method': 'POST',
        ':path': `/suite.v1.MessageService/${method}`,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${given.timeout}S`,
      },
      { endStream: false },
    );
    let status;
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) status = headers['grpc-status']; // trailers-only answer
      else if (headers[':status'] !== 200) status = `http ${headers[':status']}`;
    });
    stream.on('trailers', (trailers) => {
      status = trailers['grpc-status'];
    });
    stream.on('data', () => {});
    stream.on('end', () => (status === '0' ? resolve() : reject(new CallError(grpcStatus(status)))));
    stream.on('error', (error) => reject(new CallError(error.code || 'stream error')));
    stream.end(framed);
  });
}

const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND',
  'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED',
  'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

function grpcStatus(status) {
  return STATUS_NAMES[Number(status)] || String(status);
}

function requests(calls, label) {
  const messages = texts(calls * given.batch, label).map((message) => ({ message, idempotency_key: randomUUID() }));
  return chunks(messages, given.batch).map(frame);
}

async function send(session, framedCalls, measurement) {
  await pool(given.concurrency, framedCalls, async (framed) => {
    const started = performance.now();
    try {
      await call(session, framed);
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
  const session = http2.connect(`http://${given.target}`);
  session.on('error', (error) => {
    console.error(error);
    process.exit(1);
  });
  await new Promise((resolve) => session.once('connect', resolve));
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
