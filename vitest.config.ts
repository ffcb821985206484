import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Test files that need no Postgres: the `unit` project runs them without starting one
 * (`npx vitest run --project unit`). A file here that asks for a database fails (inject() gives nothing).
 */
const UNIT = [
  'tests/cli/token-cli.test.ts',
  'tests/config/*.test.ts',
  'tests/console/view-logic.test.ts',
  'tests/docs/docs.test.ts',
  'tests/http/validation-messages.test.ts',
  'tests/lib/currency.test.ts',
  'tests/lib/text.test.ts',
  'tests/lint/*.test.ts',
  'tests/modules/events-out/url-guard.test.ts',
  'tests/modules/ledger/group-commit-scheduler.test.ts',
  'tests/modules/providers/revenuecat/revenuecat-rules.test.ts',
  'tests/modules/providers/stripe/stripe-rules.test.ts',
  'tests/server/start-errors.test.ts',
];

export default defineConfig({
  test: {
    // One database per test file (cloned from a migrated template), so files run in parallel.
    fileParallelism: true,
    maxWorkers: 4,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      {
        extends: true,
        test: {
          name: 'db',
          include: ['tests/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...UNIT],
          // The console's static files are built (when stale) before the tests that serve them.
          globalSetup: ['tests/helpers/global-setup.ts', 'tests/helpers/console-build.ts'],
        },
      },
    ],
  },
});
