// A POS integration in Node.js: a sale with a voided line, a refund and a no-sale at one
// lane, then the alert lanesight raised, acknowledged and resolved as an attendant would.
//
//   npm install @grpc/grpc-js @grpc/proto-loader lanesight-api-0.1.0.tgz
//   node examples/integrating/pos_client.js --lane 127.0.0.1:50061 --fusion 127.0.0.1:50063
//
// Prints one JSON object. docs/integrating.md walks through it; tests/integrator runs it.
'use strict';
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const { load } = require('@lanesight/api');

const { lanesight } = load(); // proto field names, 64-bit ints as strings, enums as names
const v1 = lanesight.v1;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

// Money is integer minor units with its ISO 4217 currency, never a float.
const usd = (cents) => ({ amount_minor: String(cents), currency_code: 'USD' });

// A POS event: the event id is yours and makes a resubmission harmless; the lane agent
// stamps store, lane, sequence and lane time.
const event = (transactionId, payload) => ({
  event_id: crypto.randomUUID(),
  transaction_id: transactionId,
  ...payload,
});

const sale = (tx) => [
  event(tx, { transaction_started: { operator_id: 'op-17', kind: 'TRANSACTION_KIND_SALE' } }),
  event(tx, {
    item_added: {
      line_id: '1', gtin: '05000112637922', description: 'Oat drink 1 l', quantity: 1,
      unit_price: usd(249), extended_price: usd(249), entry_method: 'ENTRY_METHOD_SCANNED',
    },
  }),
  event(tx, {
    item_added: {
      line_id: '2', gtin: '00012345678905', description: 'Soup', quantity: 2,
      unit_price: usd(199), extended_price: usd(398), entry_method: 'ENTRY_METHOD_SCANNED',
    },
  }),
  event(tx, { item_voided: { line_id: '2', operator_id: 'op-17', amount: usd(398) } }),
  event(tx, { tender_started: { total: usd(249) } }),
  event(tx, { tender_completed: { tender_type: 'TENDER_TYPE_CARD', amount: usd(249) } }),
  event(tx, {
    transaction_ended: { total: usd(249), item_count: 1, outcome: 'TRANSACTION_OUTCOME_COMPLETED' },
  }),
];

const refund = (tx, originalTx) => [
  event(tx, { transaction_started: { operator_id: 'op-17', kind: 'TRANSACTION_KIND_RETURN' } }),
  event(tx, {
    refund_issued: {
      line_id: '1', gtin: '05000112637922', amount: usd(249), with_receipt: true,
      original_transaction_id: originalTx, operator_id: 'op-17',
    },
  }),
  event(tx, { tender_completed: { tender_type: 'TENDER_TYPE_CASH', amount: usd(-249) } }),
  event(tx, {
    transaction_ended: { total: usd(-249), item_count: 1, outcome: 'TRANSACTION_OUTCOME_COMPLETED' },
  }),
];

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10000);
    client[method](request, { deadline }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

async function main() {
  const creds = grpc.credentials.createInsecure(); // mTLS + token in production: docs/deploy.md
  const lane = new v1.DeviceService(arg('lane', '127.0.0.1:50061'), creds);
  const fusion = new v1.FusionService(arg('fusion', '127.0.0.1:50063'), creds);
  const out = {};
  const status = await unary(lane, 'GetDeviceStatus', {});
  out.lane = `${status.lane.store_id}/${status.lane.lane_id}`;

  // An attendant app's feed: every new alert of the store (and lane commands), from now
  // on. Fusion sends its headers once the watch is in place: wait for them first.
  const watch = fusion.WatchAlerts({ store_ids: [status.lane.store_id], include_commands: true });
  await new Promise((resolve, reject) => {
    watch.once('metadata', resolve);
    watch.once('error', reject);
  });
  const alert = new Promise((resolve, reject) => {
    watch.on('data', (message) => {
      if (message.alert && message.alert.type === 'ALERT_TYPE_POS_EXCEPTION') resolve(message.alert);
    });
    watch.on('error', (err) => (err.code === grpc.status.CANCELLED ? null : reject(err)));
  });

  // A sale, a refund and a no-sale; the reply comes once they are durable at the lane.
  const events = [
    ...sale('T-2001'),
    ...refund('T-2002', 'T-2001'),
    event('', { no_sale_drawer_open: { operator_id: 'op-17' } }),
  ];
  const reply = await unary(lane, 'SubmitPosEvents', { events });
  out.sequences = reply.sequences.map(Number);
  const again = await unary(lane, 'SubmitPosEvents', { events });
  out.resubmit_same_sequences = again.sequences.join() === reply.sequences.join();

  // Bad input is refused whole, with the field that is wrong.
  try {
    await unary(lane, 'SubmitPosEvents', {
      events: [event('T-2003', {
        item_added: {
          line_id: '1', gtin: '00012345678905', quantity: 1,
          unit_price: { amount_minor: '100', currency_code: 'usd' }, extended_price: usd(100),
        },
      })],
    });
  } catch (err) {
    out.invalid = { code: grpc.status[err.code], details: err.details };
  }

  const raised = await Promise.race([
    alert,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no alert in 30 s')), 30000)),
  ]);
  out.alert = {
    type: raised.type,
    kind: raised.pos_exception_kind,
    severity: raised.severity,
    escalation: raised.escalation,
    reason: raised.reason,
  };
  await unary(fusion, 'AcknowledgeAlert', { alert_id: raised.alert_id, attendant_id: 'att-3' });
  const resolved = await unary(fusion, 'ResolveAlert', {
    alert_id: raised.alert_id,
    attendant_id: 'att-3',
    disposition: 'DISPOSITION_NO_ACTION',
    note: 'change for the coffee machine',
  });
  out.resolved_state = resolved.alert.state;
  watch.cancel();
  lane.close();
  fusion.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
