#!/usr/bin/env node
// Build the @lanesight/api npm package from protos/: copy the .proto files next to the
// loader and `npm pack` it (offline). Usage: node packages/lanesight-api-js/build.js OUT_DIR
// Prints the path of the .tgz.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const here = __dirname;
const repo = path.resolve(here, '..', '..');
const out = path.resolve(process.argv[2] || path.join(repo, 'dist'));
const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'lanesight-api-js-'));
try {
  for (const name of ['package.json', 'index.js', 'index.d.ts', 'README.md']) {
    fs.copyFileSync(path.join(here, name), path.join(stage, name));
  }
  fs.cpSync(path.join(repo, 'protos', 'lanesight'), path.join(stage, 'protos', 'lanesight'), {
    recursive: true,
    filter: (src) => fs.statSync(src).isDirectory() || src.endsWith('.proto'),
  });
  // grpc.health.v1, vendored from grpc/grpc (Apache-2.0) for health checks.
  fs.cpSync(
    path.join(repo, 'tests', 'integrator', 'protos', 'grpc'),
    path.join(stage, 'protos', 'grpc'),
    { recursive: true },
  );
  // The version is lanesight's (pyproject.toml), so both API packages match the services.
  const version = /^version = "([^"]+)"/m.exec(
    fs.readFileSync(path.join(repo, 'pyproject.toml'), 'utf8'),
  )[1];
  const manifest = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'));
  manifest.version = version;
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  fs.mkdirSync(out, { recursive: true });
  const packed = execFileSync(
    'npm',
    ['pack', '--silent', '--offline', '--pack-destination', out],
    { cwd: stage, encoding: 'utf8' },
  ).trim().split('\n').pop();
  process.stdout.write(path.join(out, packed) + '\n');
} finally {
  fs.rmSync(stage, { recursive: true, force: true });
}
