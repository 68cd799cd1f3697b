'use strict';
// A real Backstage backend, headless: the software catalog (file locations, SQLite in a
// file so entity uids and etags survive a restart), the Template kind, and ferry's status
// write-back module from deploy/backstage/. No frontend, no Backstage CLI, no TypeScript.
//
// Started by `FERRY_STACK_BACKSTAGE=1 scripts/stack up` as
//   node index.js --config app-config.yaml --config <state>/app-config.local.yaml
// (the local file holds the port, the token, the database directory and the locations).
const path = require('node:path');
const Module = require('node:module');

// The write-back module lives in deploy/backstage/ with no node_modules of its own; let its
// require('@backstage/...') resolve to this harness's packages.
process.env.NODE_PATH = [path.join(__dirname, 'node_modules'), process.env.NODE_PATH]
  .filter(Boolean)
  .join(path.delimiter);
Module._initPaths();

const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(import('@backstage/plugin-catalog-backend'));
backend.add(import('@backstage/plugin-catalog-backend-module-scaffolder-entity-model'));
backend.add(
  require(path.join(__dirname, '..', '..', 'deploy', 'backstage', 'plugin-catalog-backend-module-ferry')),
);
backend.start();
