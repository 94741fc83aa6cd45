// An integrator's client written in Node: loads lanesight's protos/ directly with
// @grpc/proto-loader and calls health plus one real RPC on each service.
// Usage: node client.js device=HOST:PORT vision=HOST:PORT fusion=HOST:PORT reporting=HOST:PORT
// Prints one JSON object with what each call returned; exits 1 on any failure.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const repoRoot = path.resolve(__dirname, '..', '..');
const loadOptions = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [path.join(repoRoot, 'protos'), path.join(__dirname, 'protos')],
};
const definition = protoLoader.loadSync(
  [
    'lanesight/v1/device.proto',
    'lanesight/v1/vision.proto',
    'lanesight/v1/fusion.proto',
    'lanesight/v1/reporting.proto',
    'grpc/health/v1/health.proto',
  ],
  loadOptions,
);
const pkg = grpc.loadPackageDefinition(definition);
const v1 = pkg.lanesight.v1;
const Health = pkg.grpc.health.v1.Health;

const addresses = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=')));

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10000);
    client[method](request, { deadline }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

// Sends one event on FusionService.Ingest (a bidi stream) and resolves with the ack.
function ingestOne(client, event) {
  return new Promise((resolve, reject) => {
    const stream = client.Ingest({ deadline: new Date(Date.now() + 10000) });
    stream.on('data', (reply) => {
      resolve(reply.acked_sequence);
      stream.end();
    });
    stream.on('error', reject);
    stream.write({ events: [event] });
  });
}

async function main() {
  const creds = grpc.credentials.createInsecure();
  const out = {};
  const services = {
    device: ['DeviceService', v1.DeviceService],
    vision: ['VisionService', v1.VisionService],
    fusion: ['FusionService', v1.FusionService],
    reporting: ['ReportingService', v1.ReportingService],
  };
  for (const [name, [serviceName, Ctor]] of Object.entries(services)) {
    const address = addresses[name];
    const health = new Health(address, creds);
    const status = await call(health, 'Check', { service: `lanesight.v1.${serviceName}` });
    out[name] = { health: status.status };
    const client = new Ctor(address, creds);
    if (name === 'device') {
      const reply = await call(client, 'GetDeviceStatus', {});
      out[name].rpc = { lane: reply.lane, peripherals: reply.peripherals.length };
    } else if (name === 'vision') {
      const reply = await call(client, 'GetVisionStats', {});
      out[name].rpc = { providers: reply.providers, open_streams: reply.open_streams };
    } else if (name === 'fusion') {
      const item = {
        sku: 'node-sku-1',
        gtins: ['05000112637922'],
        description: 'Integrator test item',
        unit_of_measure: 'UNIT_OF_MEASURE_EACH',
        unit_price: { amount_minor: '249', currency_code: 'EUR' },
        category: 'test',
      };
      const upsert = await call(client, 'UpsertCatalogItems', { store_id: 'node-store', items: [item] });
      let invalid = null;
      try {
        await call(client, 'UpsertCatalogItems', {
          store_id: 'node-store',
          items: [{ ...item, unit_price: { amount_minor: '249', currency_code: 'XXQ' } }],
        });
      } catch (err) {
        invalid = { code: err.code, details: err.details };
      }
      const acked = await ingestOne(client, {
        event_id: 'node-event-1',
        store_id: 'node-store',
        lane_id: 'lane-1',
        sequence: '1',
        lane_time: { seconds: String(Math.floor(Date.now() / 1000)) },
        transaction_id: 'node-tx-1',
        source_device_id: 'pos',
        transaction_started: { self_checkout: true, kind: 'TRANSACTION_KIND_SALE' },
      });
      const state = await call(client, 'GetLaneState', { lane: { store_id: 'node-store', lane_id: 'lane-1' } });
      out[name].rpc = {
        inserted: upsert.inserted,
        invalid,
        acked,
        lane: state.state.lane,
        transaction_id: state.state.transaction_id,
      };
    } else if (name === 'reporting') {
      const reply = await call(client, 'ListAlerts', { page: { page_size: 10 } });
      let invalid = null;
      try {
        await call(client, 'ListAlerts', {
          filter: { range: { start: { seconds: '2000' }, end: { seconds: '1000' } } },
        });
      } catch (err) {
        invalid = { code: err.code, details: err.details };
      }
      out[name].rpc = { alerts: reply.alerts.length, total_size: reply.page ? reply.page.total_size : null, invalid };
    }
    client.close();
    health.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`integrator client failed: ${err.code} ${err.details || err.message}\n`);
  process.exit(1);
});
