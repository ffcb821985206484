// Module boundaries, checked by `npm run lint` (dependency-cruiser). Each domain is a module under
// src/modules/; the others reach it only through its index.ts, and the ledger reaches no other module.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A circle between files makes neither readable alone. Type-only imports do not count.',
      from: { path: '^src/' },
      to: { circular: true, dependencyTypesNot: ['type-only'], viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'module-through-index',
      severity: 'error',
      comment:
        "Another module is reached only through its index.ts, its public face; what it keeps inside can change.",
      from: { path: '^src/(?!modules/)|^src/modules/([^/]+)/' },
      to: {
        path: '^src/modules/([^/]+)/(?!index\\.ts$).+',
        pathNot: '^src/modules/$1/',
      },
    },
    {
      name: 'ledger-depends-on-no-module',
      severity: 'error',
      comment: 'The ledger is the core: every other module builds on it, and it on none of them.',
      from: { path: '^src/modules/ledger/' },
      to: { path: '^src/modules/(?!ledger/)' },
    },
    {
      name: 'infrastructure-below-modules',
      severity: 'error',
      comment:
        'src/lib and src/db sit under the modules: they import none (src/db/database.ts may import table types).',
      from: { path: '^src/(lib|db)/' },
      to: { path: '^src/modules/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|tests|bench)/' },
  },
};
