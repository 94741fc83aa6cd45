// @lanesight/api: lanesight's protos and one function that loads them for @grpc/grpc-js.
//
//   const grpc = require('@grpc/grpc-js');
//   const { load } = require('@lanesight/api');
//   const { lanesight, health } = load();
//   const lane = new lanesight.v1.DeviceService('127.0.0.1:50061', grpc.credentials.createInsecure());
//
// Fields keep their proto names (transaction_id, not transactionId), 64-bit integers are
// strings, enums are their names, and a oneof's set field is named in the oneof's key.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = path.join(__dirname, 'protos');
const FILES = [
  'lanesight/v1/common.proto',
  'lanesight/v1/events.proto',
  'lanesight/v1/alerts.proto',
  'lanesight/v1/catalog.proto',
  'lanesight/v1/device.proto',
  'lanesight/v1/vision.proto',
  'lanesight/v1/fusion.proto',
  'lanesight/v1/reporting.proto',
  'grpc/health/v1/health.proto',
];
const DEFAULT_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Load the protos; returns { lanesight, health, grpc } with the service constructors. */
function load(options = {}) {
  const definition = protoLoader.loadSync(FILES, {
    ...DEFAULT_OPTIONS,
    ...options,
    includeDirs: [PROTO_DIR],
  });
  const root = grpc.loadPackageDefinition(definition);
  return { lanesight: root.lanesight, health: root.grpc.health.v1, grpc: root.grpc };
}

module.exports = { load, PROTO_DIR, FILES };
