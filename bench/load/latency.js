'use strict';
// Send-to-notification latency at a fixed offered rate: --rate messages per second for --seconds, each
// sent at its scheduled time whatever the earlier ones are doing (open loop: a sender that falls behind
// shows up as latency), through --protocol rest|grpc|amqp, and received by one hub listener in this
// process. A message's latency is from its scheduled send to its notification's arrival. Prints one JSON
// line: percentiles, how many arrived, the achieved rate and this process's CPU.
const http = require('node:http');
const amqp = require('amqplib');
const WebSocket = require('ws');
const { options, texts, print, percentile, randomUUID } = require('./common');
const grpcWire = require('./grpc-wire');

const given = options({
  protocol: 'rest',
  target: '127.0.0.1:8000',
  hub: 'ws://127.0.0.1:8765/notifications',
  after: 0,
  rate: 200,
  seconds: 5,
  user: 'publisher',
  timeout: 60,
});

async function restSender() {
  const [host, port] = given.target.split(':');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  return (text) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ message: text });
      const request = http.request(
        { host, port: Number(port), path: '/messages', method: 'POST', agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'idempotency-key': randomUUID() } },
        (response) => {
          response.resume();
          response.on('end', () => (response.statusCode < 300 ? resolve() : reject(new Error(`HTTP ${response.statusCode}`))));
        },
      );
      request.on('error', reject);
      request.end(body);
    });
}

async function grpcSender() {
  const session = await grpcWire.connect(given.target);
  const single = grpcWire.method(1);
  return (text) => grpcWire.call(session, single.path, single.encode([{ message: text, idempotency_key: randomUUID() }]));
}

async function amqpSender() {
  const [host, port] = given.target.split(':');
  const connection = await amqp.connect({ hostname: host, port: Number(port), username: given.user, password: process.env.AMQP_PASSWORD });
  const channel = await connection.createConfirmChannel();
  return (text) =>
    new Promise((resolve, reject) =>
      channel.publish('messages', 'messages', Buffer.from(text, 'utf-8'),
        { messageId: randomUUID(), persistent: true, contentType: 'text/plain', contentEncoding: 'utf-8', mandatory: true },
        (error) => (error ? reject(error) : resolve())));
}

function listen(scheduled, arrived, total) {
  return new Promise((resolve, reject) => {
    const listener = new WebSocket(`${given.hub}?after=${given.after}`);
    let done;
    const finished = new Promise((r) => { done = r; });
    listener.on('message', (data) => {
      const now = performance.now();
      const frame = JSON.parse(data);
      if (scheduled.has(frame.message) && !arrived.has(frame.message)) {
        arrived.set(frame.message, now);
        if (arrived.size === total) done();
      }
    });
    listener.on('open', () => resolve({ listener, finished }));
    listener.on('error', reject);
  });
}

async function main() {
  const makers = { rest: restSender, grpc: grpcSender, amqp: amqpSender };
  const send = await makers[given.protocol]();
  const messages = texts(Math.max(1, Math.round(given.rate * given.seconds)), `latency ${given.protocol}`);
  const scheduled = new Map(messages.map((text) => [text, 0]));
  const arrived = new Map();
  const { listener, finished } = await listen(scheduled, arrived, messages.length);
  for (const text of texts(20, 'warm-up')) await send(text); // connections open before the clock starts
  const errors = {};
  const cpuBefore = process.cpuUsage();
  const started = performance.now() + 10;
  let next = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < messages.length && started + (next * 1000) / given.rate <= now) {
        const text = messages[next];
        scheduled.set(text, started + (next * 1000) / given.rate);
        next += 1;
        send(text).catch((error) => { errors[String(error.message || error)] = (errors[String(error.message || error)] || 0) + 1; });
      }
      if (next < messages.length) setTimeout(tick, Math.max(0, started + (next * 1000) / given.rate - performance.now()));
      else resolve();
    };
    setTimeout(tick, 10);
  });
  const timeout = new Promise((resolve) => setTimeout(resolve, given.timeout * 1000));
  await Promise.race([finished, timeout]);
  const cpu = process.cpuUsage(cpuBefore);
  const waits = [...arrived].map(([text, at]) => at - scheduled.get(text)).sort((a, b) => a - b);
  const last = Math.max(...arrived.values());
  listener.close();
  print({
    protocol: given.protocol, offered: given.rate, sent: messages.length, arrived: arrived.size, errors,
    achieved: arrived.size / ((last - started) / 1000),
    p50_ms: percentile(waits, 50), p95_ms: percentile(waits, 95), p99_ms: percentile(waits, 99), max_ms: waits[waits.length - 1],
    cpu_share: (cpu.user + cpu.system) / 1e3 / (last - started),
  });
  process.exit(0);
}

main().catch((error) => { console.error(error); process.exit(1); });
