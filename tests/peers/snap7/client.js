#!/usr/bin/env node
// snap7's S7 client (node-snap7 1.0.9, MIT; snap7 itself is LGPL v3) as a test HMI / engineering
// station for EdgeShield. One operation per run:
//
//   node client.js --host H --port P [--conn-type pg|op|basic] [--rack R] [--slot S] OP [ARGS…]
//
// OP and ARGS (numbers are decimal or 0x-hex; HEX is a byte string such as 0a0b0c):
//   db-read DB START SIZE            db-write DB START HEX
//   read-area AREA DB START SIZE     write-area AREA DB START HEX      AREA: m | i | q | db
//   multi-read AREA:DB:START:SIZE…   (several items in one read-var job, e.g. db:1:0:4 m:0:0:2)
//   plc-stop | plc-hot-start | plc-cold-start
//   list-blocks | block-info TYPE NUM | upload TYPE NUM [SIZE] | delete TYPE NUM
//                                    TYPE: ob db sdb fc sfc fb sfb; SIZE: upload buffer (default 4096)
//   download NUM HEX|sample-db       HEX: a whole block, header and footer included; sample-db: a
//                                    minimal 96-byte DB block built here that snap7's client accepts
//   read-szl ID INDEX | get-cpu-info | get-plc-status
//   get-clock | set-clock [ISO-8601 time, default now]
//   set-password PWD | clear-password
//
// Prints one JSON line and exits 0 whether or not the PLC did it (the caller judges the error):
//   {"op":"db-read","ok":true,"error":0,"text":"…","data":"000102…","connType":"pg","pdu":480}
// error is snap7's error code (0 = none), text is client.ErrorText(error); data is the hex of what
// was read (absent when nothing was); value carries structured results (block list, block info,
// clock, CPU info, status); items carries multi-read's per-item results; stage is "connect" when
// the connection (COTP connect or setup-communication) failed. Exit 2 only for a bad command line.
// The connection type is PG unless --conn-type says otherwise (snap7's own default, stated here
// because a PLC and a firewall treat PG, OP and basic connections differently).
'use strict';
const snap7 = require('node-snap7');

const ConnTypes = { pg: 1, op: 2, basic: 3 }; // S7Client.CONNTYPE_PG / _OP / _BASIC
const client = new snap7.S7Client();
const Areas = { m: client.S7AreaMK, i: client.S7AreaPE, q: client.S7AreaPA, db: client.S7AreaDB };
const BlockTypes = {
  ob: client.Block_OB, db: client.Block_DB, sdb: client.Block_SDB, fc: client.Block_FC,
  sfc: client.Block_SFC, fb: client.Block_FB, sfb: client.Block_SFB,
};

function usage(message) {
  process.stderr.write(`client.js: ${message}\n`);
  process.exit(2);
}

function num(text, what) {
  const n = Number(text);
  if (text === undefined || text === '' || !Number.isInteger(n) || n < 0) usage(`${what}: not a number: ${text}`);
  return n;
}

function hex(text, what) {
  if (text === undefined || !/^([0-9a-fA-F]{2})+$/.test(text)) usage(`${what}: not a hex byte string: ${text}`);
  return Buffer.from(text, 'hex');
}

function area(text) {
  const a = Areas[String(text).toLowerCase()];
  if (a === undefined) usage(`unknown area ${text} (m, i, q, db)`);
  return a;
}

function blockType(text) {
  const t = BlockTypes[String(text).toLowerCase()];
  if (t !== undefined) return t;
  return num(text, 'block type');
}

const argv = process.argv.slice(2);
const opt = { host: '127.0.0.1', port: 102, connType: 'pg', rack: 0, slot: 2 };
let i = 0;
for (; i < argv.length && argv[i].startsWith('--'); i += 2) {
  const k = argv[i], v = argv[i + 1];
  if (k === '--host') opt.host = v;
  else if (k === '--port') opt.port = num(v, '--port');
  else if (k === '--conn-type') {
    if (!(v in ConnTypes)) usage(`--conn-type ${v}: pg, op or basic`);
    opt.connType = v;
  } else if (k === '--rack') opt.rack = num(v, '--rack');
  else if (k === '--slot') opt.slot = num(v, '--slot');
  else usage(`unknown option ${k}`);
}
const op = argv[i];
const args = argv.slice(i + 1);
if (!op) usage('no operation given');

// Each operation: a blocking node-snap7 call; false means failed (the code is LastError()).
const ops = {
  'db-read': (a) => client.DBRead(num(a[0], 'DB'), num(a[1], 'START'), num(a[2], 'SIZE')),
  'db-write': (a) => { const b = hex(a[2], 'HEX'); return client.DBWrite(num(a[0], 'DB'), num(a[1], 'START'), b.length, b); },
  'read-area': (a) => client.ReadArea(area(a[0]), num(a[1], 'DB'), num(a[2], 'START'), num(a[3], 'SIZE'), client.S7WLByte),
  'write-area': (a) => {
    const b = hex(a[3], 'HEX');
    return client.WriteArea(area(a[0]), num(a[1], 'DB'), num(a[2], 'START'), b.length, client.S7WLByte, b);
  },
  'multi-read': (a) => {
    if (a.length === 0) usage('multi-read needs AREA:DB:START:SIZE items');
    const items = a.map((spec) => {
      const [ar, db, start, size] = spec.split(':');
      return { Area: area(ar), WordLen: client.S7WLByte, DBNumber: num(db, 'DB'), Start: num(start, 'START'), Amount: num(size, 'SIZE') };
    });
    const r = client.ReadMultiVars(items);
    if (r === false) return false;
    return { items: r.map((x) => ({ error: x.Result, text: client.ErrorText(x.Result), data: x.Data ? x.Data.toString('hex') : null })) };
  },
  'plc-stop': () => client.PlcStop(),
  'plc-hot-start': () => client.PlcHotStart(),
  'plc-cold-start': () => client.PlcColdStart(),
  'list-blocks': () => client.ListBlocks(),
  'block-info': (a) => client.GetAgBlockInfo(blockType(a[0]), num(a[1], 'NUM')),
  // node-snap7's binding takes the buffer size as a third argument (its doc/client.md omits it).
  'upload': (a) => client.Upload(blockType(a[0]), num(a[1], 'NUM'), a[2] === undefined ? 4096 : num(a[2], 'SIZE')),
  'download': (a) => client.Download(Number(a[0]), a[1] === 'sample-db' ? sampleDbBlock(Number(a[0])) : hex(a[1], 'HEX')),
  'delete': (a) => client.Delete(blockType(a[0]), num(a[1], 'NUM')),
  'read-szl': (a) => client.ReadSZL(num(a[0], 'ID'), num(a[1], 'INDEX')),
  'get-clock': () => client.GetPlcDateTime(),
  'set-clock': (a) => {
    const when = a[0] ? new Date(a[0]) : new Date();
    if (Number.isNaN(when.getTime())) usage(`set-clock: not a time: ${a[0]}`);
    return client.SetPlcDateTime(when);
  },
  'set-password': (a) => { if (a[0] === undefined) usage('set-password PWD'); return client.SetSessionPassword(a[0]); },
  'clear-password': () => client.ClearSessionPassword(),
  'get-cpu-info': () => client.GetCpuInfo(),
  'get-plc-status': () => client.PlcStatus(),
};
// The smallest block snap7's client will send (s7_micro_client.cpp CheckBlock: LenLoadMem equals the
// buffer size, and the 56-byte footer follows the MC7 code): the 36-byte compact block header of
// s7_types.h TS7CompactBlockInfo, 4 bytes of DB data, the footer (TS7BlockFooter, B1 = 0x11).
function sampleDbBlock(number) {
  const b = Buffer.alloc(36 + 4 + 56);
  b.writeUInt16BE(0x7070, 0);          // Cst_pp
  b[2] = 0x01;                         // Uk_01
  b[3] = 0x01;                         // BlkFlags
  b[4] = 0x05;                         // BlkLang: DB
  b[5] = 0x0A;                         // SubBlkType: DB
  b.writeUInt16BE(number & 0xFFFF, 6); // BlkNum
  b.writeUInt32BE(b.length, 8);        // LenLoadMem
  b.writeUInt16BE(4, 34);              // MC7Len
  b.write('CAFE', 36, 'latin1');       // the DB's 4 data bytes
  b[40 + 44] = 0x11;                   // footer B1
  return b;
}

const run = ops[op];
if (!run) usage(`unknown operation ${op}`);
if (op === 'download' && !/^-?\d+$/.test(String(args[0]))) usage('download NUM HEX');

function print(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

const result = { op, ok: false, error: 0, text: '', connType: opt.connType };
client.SetConnectionType(ConnTypes[opt.connType]);
client.SetParam(client.RemotePort, opt.port);
// The callback form of ConnectTo: its blocking form returns false with LastError() still 0 (node-snap7
// 1.0.9 keeps the connect's error from LastError, e.g. 111 for a refused TCP connect).
client.ConnectTo(opt.host, opt.rack, opt.slot, (connectError) => {
  if (connectError) {
    result.error = connectError;
    result.text = client.ErrorText(connectError);
    result.stage = 'connect';
    print(result);
    process.exit(0);
  }
  result.pdu = client.PDULength();
  runOp();
});

function runOp() {
  let value;
  try {
    value = run(args);
  } catch (e) {
    // node-snap7 throws only for arguments it rejects (a programming fault of the caller).
    usage(`${op}: ${e.message}`);
  }
  if (value === false) {
    result.error = client.LastError();
  } else {
    result.ok = true;
    if (Buffer.isBuffer(value)) result.data = value.toString('hex');
    else if (value instanceof Date) result.value = value.toISOString();
    else if (value && value.items) {
      result.items = value.items;
      const bad = value.items.find((x) => x.error !== 0);
      if (bad) { result.ok = false; result.error = bad.error; }
      result.data = value.items.map((x) => x.data || '').join('');
    } else if (value !== true && value !== undefined) result.value = value;
  }
  result.text = client.ErrorText(result.error);
  print(result);
  client.Disconnect();
  process.exit(0);
}
