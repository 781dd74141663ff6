#!/usr/bin/env node
// snap7's S7 server (node-snap7 1.0.9, MIT; snap7 itself is LGPL v3) as a test PLC for EdgeShield.
//
//   node server.js --port P [--host 127.0.0.1] [--log FILE] [--watch-stdin] [--seed AREA:START:HEX]...
//
// Registers DB1, DB2, DB3 and DB100 (128 bytes each) and the M (MK), I (PE) and Q (PA) areas
// (256 bytes each); DB1 is seeded with its byte index (0, 1, 2, ...) so reads can be checked.
// --seed AREA:START:HEX (repeatable) puts bytes into an area before the server starts, with no client
// and so no write event: AREA is DB2 (any registered DB), MK, PE or PA; START the byte offset.
// Prints `ready` on stdout once listening, then logs every server event as one JSON object per
// line (to FILE, or to stdout after `ready`), written synchronously so a reader sees it at once:
//   {"t":"…","EvtSender":"127.0.0.1","EvtCode":262144,"name":"evcDataWrite","EvtRetCode":0,
//    "EvtParam1":132,"EvtParam2":1,"EvtParam3":4,"EvtParam4":3,"text":"…"}
// For evcDataRead/evcDataWrite the parameters are area (0x81 I, 0x82 Q, 0x83 M, 0x84 DB),
// DB number, start byte and size in bytes (snap7 s7_server.cpp). SIGTERM/SIGINT stop it, and with
// --watch-stdin so does the end of stdin (a test harness's lifeline: no PLC is left listening when
// the harness dies).
'use strict';
const fs = require('fs');
const snap7 = require('node-snap7');

function parseArgs(argv) {
  const a = { host: '127.0.0.1', port: 0, log: null, watchStdin: false, seeds: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (k === '--port') { a.port = Number(v); i++; }
    else if (k === '--host') { a.host = v; i++; }
    else if (k === '--log') { a.log = v; i++; }
    else if (k === '--watch-stdin') { a.watchStdin = true; }
    else if (k === '--seed') { a.seeds.push(v); i++; }
    else { fail(`unknown argument ${k}`); }
  }
  if (!Number.isInteger(a.port) || a.port <= 0 || a.port > 65535) fail('--port P is required (1..65535)');
  return a;
}

function fail(message) {
  process.stderr.write(`server.js: ${message}\n`);
  process.exit(2);
}

// The event codes of snap7's server (s7_server.h, doc/server.md "SetEventMask").
const EventNames = {
  0x00000001: 'evcServerStarted', 0x00000002: 'evcServerStopped', 0x00000004: 'evcListenerCannotStart',
  0x00000008: 'evcClientAdded', 0x00000010: 'evcClientRejected', 0x00000020: 'evcClientNoRoom',
  0x00000040: 'evcClientException', 0x00000080: 'evcClientDisconnected', 0x00000100: 'evcClientTerminated',
  0x00000200: 'evcClientsDropped', 0x00010000: 'evcPDUincoming', 0x00020000: 'evcDataRead',
  0x00040000: 'evcDataWrite', 0x00080000: 'evcNegotiatePDU', 0x00100000: 'evcReadSZL',
  0x00200000: 'evcClock', 0x00400000: 'evcUpload', 0x00800000: 'evcDownload',
  0x01000000: 'evcDirectory', 0x02000000: 'evcSecurity', 0x04000000: 'evcControl',
};

const args = parseArgs(process.argv.slice(2));
const server = new snap7.S7Server();

const DbSize = 128, AreaSize = 256;
const areas = {};
for (const db of [1, 2, 3, 100]) {
  const buffer = Buffer.alloc(DbSize);
  if (db === 1) for (let i = 0; i < DbSize; i++) buffer[i] = i;
  areas[`DB${db}`] = buffer;
}
for (const name of ['MK', 'PE', 'PA']) areas[name] = Buffer.alloc(AreaSize);
// Seeds go in before RegisterArea: node-snap7 copies a buffer when it is registered.
for (const seed of args.seeds) {
  const m = /^(DB\d+|MK|PE|PA):(\d+):((?:[0-9A-Fa-f]{2})+)$/.exec(seed || '');
  if (!m || !areas[m[1]]) fail(`--seed ${seed}: want AREA:START:HEX with AREA one of ${Object.keys(areas).join(', ')}`);
  const bytes = Buffer.from(m[3], 'hex'), start = Number(m[2]);
  if (start + bytes.length > areas[m[1]].length) fail(`--seed ${seed}: past the end of ${m[1]} (${areas[m[1]].length} bytes)`);
  bytes.copy(areas[m[1]], start);
}
for (const db of [1, 2, 3, 100]) {
  if (!server.RegisterArea(server.srvAreaDB, db, areas[`DB${db}`])) fail(`RegisterArea DB${db} failed`);
}
for (const [name, code] of [['MK', server.srvAreaMK], ['PE', server.srvAreaPE], ['PA', server.srvAreaPA]]) {
  if (!server.RegisterArea(code, areas[name])) fail(`RegisterArea ${name} failed`);
}

let logFd = 1;
if (args.log) logFd = fs.openSync(args.log, 'a');
let started = false;
const early = [];

function writeLine(obj) {
  const line = JSON.stringify(obj) + '\n';
  if (logFd === 1 && !started) { early.push(line); return; } // keep `ready` the first stdout line
  fs.writeSync(logFd, line);
}

server.on('event', (event) => {
  writeLine({
    t: new Date().toISOString(),
    EvtSender: event.EvtSender,
    EvtCode: event.EvtCode,
    name: EventNames[event.EvtCode] || 'unknown',
    EvtRetCode: event.EvtRetCode,
    EvtParam1: event.EvtParam1,
    EvtParam2: event.EvtParam2,
    EvtParam3: event.EvtParam3,
    EvtParam4: event.EvtParam4,
    text: server.EventText(event),
  });
});

if (!server.SetParam(server.LocalPort, args.port)) fail(`SetParam LocalPort ${args.port} failed`);
if (server.StartTo(args.host) === false) {
  const code = server.LastError();
  fail(`StartTo ${args.host}:${args.port} failed: ${code} ${server.ErrorText(code)}`);
}
fs.writeSync(1, 'ready\n');
started = true;
for (const line of early.splice(0)) fs.writeSync(logFd, line);

function stop() {
  try { server.Stop(); } catch (e) { /* already stopped */ }
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args.watchStdin) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
