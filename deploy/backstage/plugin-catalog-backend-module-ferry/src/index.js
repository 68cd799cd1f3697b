'use strict';
// The Backstage backend module: `backend.add(require('@ferry/plugin-catalog-backend-module-ferry'))`
// (or `backend.add(import(...))`) in packages/backend/src/index.ts, and in app-config.yaml:
//
//   ferry:
//     producerUrl: http://ferry-producer:8080   # ferry-producer serve --http ...
//     token: ${FERRY_API_TOKEN}                  # its http.token_file
const { createBackendModule, coreServices } = require('@backstage/backend-plugin-api');
const { FerryStatusProcessor } = require('./processor');

// catalog-node >= 1.13 exports the extension point from its main entry; older from /alpha.
function processingExtensionPoint() {
  const main = require('@backstage/plugin-catalog-node');
  if (main.catalogProcessingExtensionPoint) return main.catalogProcessingExtensionPoint;
  return require('@backstage/plugin-catalog-node/alpha').catalogProcessingExtensionPoint;
}

module.exports = createBackendModule({
  pluginId: 'catalog',
  moduleId: 'ferry-status',
  register(reg) {
    reg.registerInit({
      deps: {
        catalog: processingExtensionPoint(),
        config: coreServices.rootConfig,
        logger: coreServices.logger,
      },
      async init({ catalog, config, logger }) {
        const producerUrl = config.getOptionalString('ferry.producerUrl');
        if (!producerUrl) {
          logger.warn('ferry.producerUrl is not set: ferry status write-back is off');
          return;
        }
        catalog.addProcessor(
          new FerryStatusProcessor({
            producerUrl,
            token: config.getOptionalString('ferry.token'),
            timeoutMs: config.getOptionalNumber('ferry.timeoutMs') ?? 2000,
            logger,
          }),
        );
        logger.info(`ferry status write-back from ${producerUrl}`);
      },
    });
  },
});
