#!/usr/bin/env node
// Many hub listeners in one Node process (or K worker processes), for the
// fan-out benchmark (bench/fan_out.py drives it):
//
//   node listeners.js --url ws://127.0.0.1:8765/notifications --after ID --listeners N
//                     [--last ID] [--timeout S] [--workers K] [--token T] [--records FILE]
//
// Opens N listeners with ?after=ID, prints `ready <N>` on stdout once all are
// open, then waits for the expected last id (--last, or a line on stdin).
// Every listener must receive each id from ID+1 to the last exactly once and
// in order (ids are gap-free). When all did, or --timeout seconds after the
// last id was known, it prints one JSON line (see summary()) and exits.
// Delay is a frame's created_at (set by PostgreSQL, same machine clock) to its
// receipt here. Progress and errors go to stderr.
"use strict";

const { fork } = require("node:child_process");
const fs = require("node:fs");
const { monitorEventLoopDelay, performance } = require("node:perf_hooks");
const readline = require("node:readline");
const WebSocket = require("ws");

const OPENING_AT_ONCE = 50; // handshakes in flight: the hub's accept backlog is finite
const OPEN_ATTEMPTS = 3;

function parseArgs(argv) {
  const options = { after: 0, listeners: 1, last: null, timeout: 60, workers: 1, token: null, records: null };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    if (name === "url" || name === "token" || name === "records") options[name] = value;
    else if (name in options) options[name] = Number(value);
    else throw new Error(`unknown option --${name}`);
  }
  if (!options.url) throw new Error("--url is required (ws://host:port/notifications)");
  return options;
}

const now = () => performance.timeOrigin + performance.now(); // epoch ms, sub-ms precision

// "2026-11-28T02:30:00.123456+00:00" to epoch ms keeping the microseconds (Date.parse keeps ms only).
function isoToMs(text) {
  const match = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)$/.exec(text);
  if (!match) return Date.parse(text);
  return Date.parse(match[1] + match[3]) + (match[2] ? Number(match[2]) * 1000 : 0);
}

// A growable column of numbers (millions of frames: no per-frame objects).
class Column {
  constructor(Type) {
    this.Type = Type;
    this.values = new Type(1 << 16);
    this.length = 0;
  }
  push(value) {
    if (this.length === this.values.length) {
      const bigger = new this.Type(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.length++] = value;
  }
  view() {
    return this.values.subarray(0, this.length);
  }
}

// A set of listeners in this process; `base` numbers them across worker processes.
class ListenerGroup {
  constructor(options, count, base) {
    this.options = options;
    this.count = count;
    this.base = base;
    this.last = options.last;
    this.createdMs = new Map(); // frame id -> created_at in epoch ms, parsed once per id
    this.records = { listener: new Column(Uint32Array), id: new Column(Float64Array), receivedMs: new Column(Float64Array), delayMs: new Column(Float64Array) };
    this.state = [];
    this.closes = {};
    this.duplicates = 0;
    this.outOfOrder = 0;
    this.finished = null;
  }

  async open() {
    let next = 0;
    const openOne = async () => {
      while (next < this.count) await this.connect(next++);
    };
    await Promise.all(Array.from({ length: Math.min(OPENING_AT_ONCE, this.count) }, openOne));
  }

  async connect(index) {
    const listener = { expected: this.options.after + 1, broken: false, closed: null, socket: null };
    this.state[index] = listener;
    for (let attempt = 1; ; attempt++) {
      try {
        listener.socket = await this.openSocket(index, listener);
        return;
      } catch (error) {
        if (attempt >= OPEN_ATTEMPTS) throw new Error(`listener ${this.base + index} did not open: ${error.message}`);
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  // Handlers go on before "open": frames sent right after the handshake can arrive in the same read, and ws
  // emits them before an awaiting caller would resume.
  openSocket(index, listener) {
    const headers = this.options.token ? { Authorization: `Bearer ${this.options.token}` } : {};
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${this.options.url}?after=${this.options.after}`, {
        headers,
        perMessageDeflate: false,
        maxPayload: 0,
        handshakeTimeout: 30000,
        skipUTF8Validation: true, // the client's own cost is not what is measured; JSON.parse still reads every frame
      });
      let opened = false;
      socket.on("message", (data) => this.received(index, listener, data));
      socket.once("open", () => {
        opened = true;
        resolve(socket);
      });
      socket.on("error", (error) => opened || reject(error)); // after open, the close that follows is recorded
      socket.once("unexpected-response", (request, response) => {
        reject(new Error(`HTTP ${response.statusCode}`));
        request.destroy();
      });
      socket.on("close", (code, reason) => opened && this.closed(index, listener, code, reason.toString()));
    });
  }

  closed(index, listener, code, reason) {
    listener.closed = { code, reason };
    const key = String(code);
    this.closes[key] = (this.closes[key] || 0) + 1;
    if (listener.expected <= (this.last ?? Infinity)) {
      process.stderr.write(`listener ${this.base + index} closed at id ${listener.expected - 1}: ${code} ${reason}\n`);
    }
    this.checkDone();
  }

  received(index, listener, data) {
    const receivedMs = now();
    const frame = JSON.parse(data);
    const id = frame.id;
    let createdMs = this.createdMs.get(id);
    if (createdMs === undefined) {
      createdMs = isoToMs(frame.created_at);
      this.createdMs.set(id, createdMs);
    }
    if (id < listener.expected) {
      this.duplicates += 1; // a repeat, or an id from before where it stood
      listener.broken = true;
    } else {
      if (id > listener.expected) {
        this.outOfOrder += 1; // ids are gap-free: skipping one is an order fault
        listener.broken = true;
      }
      listener.expected = id + 1;
    }
    const records = this.records;
    records.listener.push(this.base + index);
    records.id.push(id);
    records.receivedMs.push(receivedMs);
    records.delayMs.push(receivedMs - createdMs);
    if (this.last !== null && id >= this.last) this.checkDone();
  }

  reachedLast(listener) {
    return this.last !== null && listener.expected > this.last;
  }

  complete(listener) {
    return !listener.broken && this.reachedLast(listener);
  }

  // Every listener either has the last id or is closed: nothing more to wait for.
  checkDone() {
    if (!this.finished || this.last === null) return;
    if (this.state.every((listener) => this.reachedLast(listener) || listener.closed)) this.finished();
  }

  // Resolves when every listener is done, or `timeout` seconds after the last id is known.
  finish(last) {
    this.last = last;
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.options.timeout * 1000);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.finished = null;
        resolve(self.result());
      }
      this.finished = done;
      this.checkDone();
    });
  }

  result() {
    const complete = this.state.filter((listener) => this.complete(listener)).length;
    const closedEarly = this.state.filter((listener) => listener.closed && !this.complete(listener)).length;
    for (const listener of this.state) listener.socket.terminate();
    if (this.options.records) this.writeRecords(this.options.workers > 1 ? `${this.options.records}.${this.base}` : this.options.records);
    return { complete, closedEarly, closes: { ...this.closes }, duplicates: this.duplicates, outOfOrder: this.outOfOrder, delays: this.records.delayMs.view() };
  }

  writeRecords(path) {
    const { listener, id, receivedMs, delayMs } = this.records;
    const lines = ["listener,id,received_ms,delay_ms"];
    for (let i = 0; i < listener.length; i++) {
      lines.push(`${listener.values[i]},${id.values[i]},${receivedMs.values[i].toFixed(3)},${delayMs.values[i].toFixed(3)}`);
    }
    fs.writeFileSync(path, lines.join("\n") + "\n");
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = (p / 100) * (sorted.length - 1); // linear between closest ranks, as Python's "inclusive"
  const low = Math.floor(rank);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

function cpuSeconds(usage) {
  return (usage.user + usage.system) / 1e6;
}

function summary(options, results, window) {
  const total = results.reduce((sum, result) => sum + result.delays.length, 0);
  const delays = new Float64Array(total);
  let offset = 0;
  for (const result of results) {
    delays.set(result.delays, offset);
    offset += result.delays.length;
  }
  delays.sort();
  const closes = {};
  for (const result of results) {
    for (const [code, n] of Object.entries(result.closes)) closes[code] = (closes[code] || 0) + n;
  }
  const sum = (key) => results.reduce((acc, result) => acc + result[key], 0);
  const round = (value) => (value === null ? null : Math.round(value * 1000) / 1000);
  return {
    listeners: options.listeners,
    workers: options.workers,
    after: options.after,
    last: window.last,
    frames_per_listener: window.last - options.after,
    frames_received: total,
    listeners_complete: sum("complete"),
    listeners_closed_early: sum("closedEarly"),
    closes,
    out_of_order: sum("outOfOrder"),
    duplicates: sum("duplicates"),
    delay_ms: { p50: round(percentile(delays, 50)), p95: round(percentile(delays, 95)), p99: round(percentile(delays, 99)), max: round(total ? delays[total - 1] : null) },
    open_seconds: round(window.openSeconds),
    cpu_seconds: round(window.cpuSeconds), // all processes, from ready to the end
    elapsed_seconds: round(window.elapsedSeconds),
    event_loop_delay_p99_ms: round(window.loopDelayP99Ms),
  };
}

// The expected last id: --last, else the first whole number on stdin.
function lastId(options) {
  if (options.last !== null) return Promise.resolve(options.last);
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: process.stdin });
    lines.on("line", (line) => {
      if (/^\s*\d+\s*$/.test(line)) {
        resolve(Number(line)); // first: close() below emits "close" at once
        lines.close();
      }
    });
    lines.on("close", () => reject(new Error("stdin closed before the last id was given")));
  });
}

// A worker process: its share of the listeners, driven by the parent over IPC.
async function worker(options, count, base) {
  const group = new ListenerGroup(options, count, base);
  await group.open();
  const startCpu = process.cpuUsage();
  process.send({ ready: true });
  process.on("message", async (message) => {
    const result = await group.finish(message.last);
    // Advanced serialization: the delays travel as a typed array, not as JSON numbers.
    process.send({ result: { ...result, delays: result.delays.slice() }, cpuSeconds: cpuSeconds(process.cpuUsage(startCpu)) }, () => process.exit(0));
  });
}

function forkWorkers(options) {
  const share = Math.ceil(options.listeners / options.workers);
  const children = [];
  for (let k = 0, base = 0; base < options.listeners; k++, base += share) {
    const count = Math.min(share, options.listeners - base);
    const child = fork(__filename, process.argv.slice(2), { env: { ...process.env, FANOUT_WORKER: `${base}:${count}` }, stdio: ["ignore", "ignore", "inherit", "ipc"], serialization: "advanced" });
    children.push(child);
  }
  const message = (child, key) =>
    new Promise((resolve, reject) => {
      child.on("message", (m) => key in m && resolve(m));
      child.once("exit", (code) => reject(new Error(`worker exited (${code}) before sending ${key}`)));
    });
  return {
    ready: Promise.all(children.map((child) => message(child, "ready"))),
    finish: async (last) => {
      const replies = children.map((child) => message(child, "result"));
      for (const child of children) child.send({ last });
      const answers = await Promise.all(replies);
      return {
        results: answers.map(({ result }) => result),
        cpuSeconds: answers.reduce((acc, answer) => acc + answer.cpuSeconds, 0),
      };
    },
  };
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (process.env.FANOUT_WORKER) {
    const [base, count] = process.env.FANOUT_WORKER.split(":").map(Number);
    return worker(options, count, base);
  }
  const openedAt = now();
  let finish;
  if (options.workers > 1) {
    const workers = forkWorkers(options);
    await workers.ready;
    finish = workers.finish;
  } else {
    const group = new ListenerGroup(options, options.listeners, 0);
    await group.open();
    finish = async (last) => ({ results: [await group.finish(last)], cpuSeconds: 0 });
  }
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const readyAt = now();
  const startCpu = process.cpuUsage();
  process.stdout.write(`ready ${options.listeners}\n`);
  const last = await lastId(options);
  const { results, cpuSeconds: workersCpu } = await finish(last);
  loopDelay.disable();
  const window = {
    last,
    openSeconds: (readyAt - openedAt) / 1000,
    cpuSeconds: cpuSeconds(process.cpuUsage(startCpu)) + workersCpu,
    elapsedSeconds: (now() - readyAt) / 1000,
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
  };
  process.stdout.write(JSON.stringify(summary(options, results, window)) + "\n");
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(`listeners.js: ${error.stack || error}\n`);
  process.exit(1);
});
