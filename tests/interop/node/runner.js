// The interop suite's Node client: @grpc/grpc-js calling Patchbay as a platform
// service written in Node would.
//
// Reads the plan the Rust harness wrote (tests/interop/main.rs), runs its cases one by
// one and prints one JSON line per case: the status code grpc-js reports, its message,
// the answers' bytes, the `x-request-id` it saw, and the google.rpc.BadRequest field
// violations read from `grpc-status-details-bin` (decoded with protobufjs and the
// googleapis protos beside this file). Then it opens the last watch, says "ready",
// and reports how that watch ended once the server is stopped.
//
// Requests and answers travel as the bytes the harness encoded; the typed case loads
// the repository's .proto files with @grpc/proto-loader, as the Node example of docs/api.md
// does.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const CLIENT = `node-grpc-js ${require('@grpc/grpc-js/package.json').version}`;
const raw = (bytes) => bytes;
const rpc = protobuf.loadSync([
  path.join(__dirname, 'protos/google/rpc/status.proto'),
  path.join(__dirname, 'protos/google/rpc/error_details.proto'),
]);
const RpcStatus = rpc.lookupType('google.rpc.Status');
const BadRequest = rpc.lookupType('google.rpc.BadRequest');

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function codeName(code) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === code) || `CODE_${code}`;
}

function metadataOf(c) {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(c.metadata || {})) metadata.set(key, value);
  if (c.token) metadata.set('authorization', `Bearer ${c.token}`);
  return metadata;
}

function violationsOf(error) {
  const details = error.metadata && error.metadata.get('grpc-status-details-bin');
  if (!details || details.length === 0) return null;
  const status = RpcStatus.decode(details[0]);
  const found = [];
  for (const detail of status.details) {
    if (detail.type_url === 'type.googleapis.com/google.rpc.BadRequest') {
      for (const v of BadRequest.decode(detail.value).fieldViolations) found.push([v.field, v.description]);
    }
  }
  return found;
}

function outcome(name, code, message, responses, requestId, violations) {
  return {
    case: name,
    client: CLIENT,
    code: codeName(code),
    message: message || '',
    responses: responses.map((r) => Buffer.from(r).toString('base64')),
    request_id: requestId || null,
    violations: violations || null,
  };
}

function deadlineOf(c) {
  return new Date(Date.now() + (c.timeout_ms || 120000));
}

function runUnary(client, c) {
  return new Promise((resolve) => {
    let requestId = null;
    const call = client.makeUnaryRequest(
      c.method, raw, raw, Buffer.from(c.request, 'base64'), metadataOf(c), { deadline: deadlineOf(c) },
      (error, answer) => {
        if (error) resolve(outcome(c.name, error.code, error.details, [], requestId, violationsOf(error)));
        else resolve(outcome(c.name, grpc.status.OK, '', [answer], requestId));
      },
    );
    call.on('metadata', (md) => { requestId = (md.get('x-request-id')[0] || '').toString() || null; });
  });
}

function runStream(client, c) {
  return new Promise((resolve) => {
    const responses = [];
    let requestId = null;
    let done = false;
    const call = client.makeServerStreamRequest(
      c.method, raw, raw, Buffer.from(c.request, 'base64'), metadataOf(c), { deadline: deadlineOf(c) },
    );
    call.on('metadata', (md) => { requestId = (md.get('x-request-id')[0] || '').toString() || null; });
    call.on('data', (answer) => {
      responses.push(answer);
      if (c.take != null && responses.length >= c.take && !done) {
        done = true;
        call.cancel();
        resolve(outcome(c.name, grpc.status.OK, '', responses, requestId));
      }
    });
    call.on('error', (error) => {
      if (done) return;
      done = true;
      resolve(outcome(c.name, error.code, error.details, responses, requestId, violationsOf(error)));
    });
    call.on('status', (status) => {
      if (done || status.code !== grpc.status.OK) return;
      done = true;
      resolve(outcome(c.name, status.code, status.details, responses, requestId));
    });
  });
}

// Opens a watch and waits for its first message: { call } or { error }.
function firstMessage(client, watch, deadline = new Date(Date.now() + 120000)) {
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest(
      watch.method, raw, raw, Buffer.from(watch.request, 'base64'), metadataOf(watch),
      { deadline },
    );
    let settled = false;
    call.on('data', () => { if (!settled) { settled = true; resolve({ call }); } });
    call.on('error', (error) => { if (!settled) { settled = true; resolve({ error }); } });
  });
}

async function watchShare(client, plan) {
  const watch = plan.watch_share;
  const held = [];
  // The watches of the cases above give their places back as the server notices
  // them gone: a place may take a moment to be free.
  const filledBy = Date.now() + 5000;
  while (held.length < watch.share) {
    const { call, error } = await firstMessage(client, watch);
    if (call) held.push(call);
    else if (Date.now() > filledBy) return outcome('watch_share_filled', error.code, error.details, []);
    else await new Promise((r) => setTimeout(r, 50));
  }
  emit(outcome('watch_share_filled', grpc.status.OK, '', []));
  const refused = await firstMessage(client, watch);
  emit(refused.error
    ? outcome('watch_beyond_share', refused.error.code, refused.error.details, [])
    : outcome('watch_beyond_share', grpc.status.OK, '', []));
  if (refused.call) refused.call.cancel();
  held.pop().cancel();
  const deadline = Date.now() + 5000;
  let last;
  for (;;) {
    last = await firstMessage(client, watch);
    if (!last.error || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (last.call) held.push(last.call);
  held.forEach((call) => call.cancel());
  return last.error
    ? outcome('watch_after_cancel', last.error.code, last.error.details, [])
    : outcome('watch_after_cancel', grpc.status.OK, '', []);
}

// The example of docs/api.md: the service from the repository's .proto files.
function typed(plan) {
  const definition = protoLoader.loadSync('patchbay/v1/account_service.proto', {
    includeDirs: [plan.proto_root], enums: String, longs: String, defaults: true,
  });
  const { AccountService } = grpc.loadPackageDefinition(definition).patchbay.v1;
  const accounts = new AccountService(plan.target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${plan.typed.token}`);
  return new Promise((resolve) => {
    accounts.getDefaultAccount({ channel: 'CHANNEL_EMAIL' }, metadata, (error, answer) => {
      accounts.close();
      if (error) resolve(outcome('typed_get_default_account', error.code, error.details, []));
      else resolve({ ...outcome('typed_get_default_account', grpc.status.OK, '', []), typed: answer });
    });
  });
}

async function main() {
  const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const client = new grpc.Client(plan.target, grpc.credentials.createInsecure());
  // grpc-js compresses per channel: gzip (2) on every message of this one.
  const gzipped = new grpc.Client(plan.target, grpc.credentials.createInsecure(), {
    'grpc.default_compression_algorithm': 2,
  });
  for (const c of plan.cases) {
    const over = c.compress ? gzipped : client;
    emit(await (c.stream ? runStream(over, c) : runUnary(over, c)));
  }
  emit(await watchShare(client, plan));
  emit(await typed(plan));
  const final = plan.final;
  // No deadline: it ends when the server stops. The places of the watches just
  // cancelled come back as the server notices.
  const openBy = Date.now() + 5000;
  let opened;
  for (;;) {
    opened = await firstMessage(client, final, Infinity);
    const exhausted = opened.error && opened.error.code === grpc.status.RESOURCE_EXHAUSTED;
    if (!exhausted || Date.now() > openBy) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const { call, error } = opened;
  emit({ ready: true, client: CLIENT });
  if (error) {
    emit(outcome(final.name, error.code, error.details, []));
  } else {
    const ended = await new Promise((resolve) => {
      call.on('error', (e) => resolve(e));
      call.on('status', (s) => { if (s.code === grpc.status.OK) resolve(s); });
    });
    emit(outcome(final.name, ended.code, ended.details, []));
  }
  client.close();
  gzipped.close();
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
