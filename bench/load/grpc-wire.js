'use strict';
// A minimal gRPC client on node:http2 (the gRPC wire format: a length-prefixed protobuf message, the
// status in the grpc-status trailer), the messages encoded by protobufjs from /protos: @grpc/grpc-js
// spent about 3 times its CPU per call on this machine (0.5 against 0.17 ms), enough to make the
// generator the limit of a no-op server. Used by grpc.js and latency.js.
const http2 = require('node:http2');
const path = require('node:path');
const protobuf = require('protobufjs');

const PROTOS = path.join(__dirname, '..', '..', 'protos');

// SendMessage for one message, SendMessageBatch for more; `encode(messages)` frames a request for it.
function method(batch, protos = PROTOS) {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => (target.startsWith('google/') ? target : path.join(protos, target));
  root.loadSync('suite/v1/messages.proto', { keepCase: true });
  const single = root.lookupType('suite.v1.SendMessageRequest');
  const many = root.lookupType('suite.v1.SendMessageBatchRequest');
  return {
    path: `/suite.v1.MessageService/${batch === 1 ? 'SendMessage' : 'SendMessageBatch'}`,
    // One request message in its gRPC frame: not compressed (0), its length, the message.
    encode(messages) {
      const body = batch === 1 ? single.encode(messages[0]).finish() : many.encode({ messages }).finish();
      const framed = Buffer.alloc(5 + body.length);
      framed.writeUInt32BE(body.length, 1);
      framed.set(body, 5);
      return framed;
    },
  };
}

async function connect(target) {
  const session = http2.connect(`http://${target}`);
  session.on('error', (error) => {
    console.error(error);
    process.exit(1);
  });
  await new Promise((resolve) => session.once('connect', resolve));
  return session;
}

class CallError extends Error {
  constructor(kind) {
    super(kind);
    this.kind = kind;
  }
}

function call(session, methodPath, framed, timeoutSeconds = 30) {
  return new Promise((resolve, reject) => {
    const stream = session.request(
      {
        ':method': 'POST',
        ':path': methodPath,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${timeoutSeconds}S`,
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

module.exports = { method, connect, call, CallError };
