// my-plugin: a scaffold generator. Write the files a new project gets.
import { about, entity, fromJson, generator as g } from './portolan.js';

const PARAMETERS = {
  type: 'object', required: ['name', 'owner'],
  properties: { name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$' }, owner: { type: 'string' } },
};

export const generator = {
  describe() {
    return g.info(about('my-plugin', '0.1.0', 'What my template creates.'), PARAMETERS);
  },
  generate(parameters) {
    const { name, owner } = fromJson(parameters);
    const readme = g.file('README.md', `# ${name}\n\nOwned by ${owner}.\n`);
    return g.output([readme], {
      entity: entity('Component', name, {
        description: `${name}, created from my-plugin`,
        spec: { type: 'service', lifecycle: 'experimental', owner },
      }),
    });
  },
};
