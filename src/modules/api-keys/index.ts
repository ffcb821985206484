// API keys: created by admins, shown once, stored as hashes, with scopes.
export { default as apiKeyRoutes } from './api-keys.route.ts';
export * from './api-keys.service.ts';
export type * from './api-keys.tables.ts';
