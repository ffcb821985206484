// The catalog: credit packages and the RevenueCat products they map.
export { default as packageRoutes } from './packages.route.ts';
export {
  findPackage,
  findPackageByProductId,
  findPackages,
  lockProductMapping,
  type PackageRow,
} from './packages.repository.ts';
export * from './packages.service.ts';
export type * from './catalog.tables.ts';
