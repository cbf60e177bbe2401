'use strict';
// What every load generator shares: its options, a clock, percentiles and the one JSON line it prints.
const { randomUUID } = require('node:crypto');
const { performance } = require('node:perf_hooks');

// --name value pairs; numbers where the value is one.
function options(defaults) {
  const given = { ...defaults };
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i].replace(/^--/, '');
    if (!(name in defaults)) throw new Error(`unknown option --${name}`);
    const value = args[i + 1];
    given[name] = typeof defaults[name] === 'number' ? Number(value) : value;
  }
  return given;
}

// Milliseconds since the epoch with sub-millisecond precision: the bench process compares it with its own clock.
function epochMs() {
  return performance.timeOrigin + performance.now();
}

function percentile(sortedValues, p) {
  if (sortedValues.length === 0) return null;
  const rank = Math.min(sortedValues.length - 1, Math.ceil((p / 100) * sortedValues.length) - 1);
  return sortedValues[Math.max(0, rank)];
}

function texts(n, label) {
  const run = randomUUID().slice(0, 8);
  return Array.from({ length: n }, (_, i) => `${label} ${run} ${i}`);
}

// Counts errors by kind, runs the measured part, and prints the one line the bench reads.
class Measurement {
  constructor(batch) {
    this.batch = batch;
    this.errors = {};
    this.latencies = []; // ms per request (a batch is one request)
    this.completedRequests = 0;
  }

  // The time of the last answer, when the generator learns of the end later than it happened.
  answered() {
    this.lastAnswerAt = epochMs();
  }

  error(kind) {
    this.errors[kind] = (this.errors[kind] || 0) + 1;
  }

  start() {
    this.cpuBefore = process.cpuUsage();
    this.startedAt = epochMs();
  }

  finish(extra = {}) {
    const cpu = process.cpuUsage(this.cpuBefore);
    const elapsed = ((this.lastAnswerAt || epochMs()) - this.startedAt) / 1000;
    const sorted = this.latencies.slice().sort((a, b) => a - b);
    const completed = this.completedRequests * this.batch;
    return {
      completed,
      requests: this.completedRequests,
      batch: this.batch,
      errors: this.errors,
      elapsed_seconds: elapsed,
      messages_per_second: completed / elapsed,
      p50_ms: percentile(sorted, 50),
      p99_ms: percentile(sorted, 99),
      cpu_seconds: (cpu.user + cpu.system) / 1e6,
      started_at_ms: this.startedAt,
      ...extra,
    };
  }
}

function print(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Runs `worker` `concurrency` times at once; each takes jobs until none are left.
async function pool(concurrency, jobs, worker) {
  let next = 0;
  const take = () => (next < jobs.length ? jobs[next++] : undefined);
  await Promise.all(
    Array.from({ length: concurrency }, async (_, index) => {
      for (let job = take(); job !== undefined; job = take()) await worker(job, index);
    }),
  );
}

function chunks(items, size) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

module.exports = { options, epochMs, percentile, texts, chunks, pool, print, Measurement, randomUUID };
