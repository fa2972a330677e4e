// my-plugin: a catalog source. Replace `fetchRecords` with your system's API
// (fetch() reaches the hosts on the sidecar's [http] allow list).
import { about, entity, log, source } from './portolan.js';

async function fetchRecords() {
  return [{ name: 'example-service', owner: 'team-a', description: 'An example' }];
}

// The world exports the interface `source`; the SDK's helpers are imported
// under the same name, so the export is declared under another one.
const sourceImpl = {
  describe() {
    return source.info(about('my-plugin', '0.1.0', 'Where my entities come from.'));
  },
  async sync(request) {
    const records = await fetchRecords();
    const entities = records.map((r) => entity('Component', r.name, {
      description: r.description,
      spec: { type: 'service', lifecycle: 'production', owner: r.owner },
    }));
    log.info(`${entities.length} entities`);
    return source.page(entities); // one page; pass a next cursor to page
  },
};

export { sourceImpl as source };
