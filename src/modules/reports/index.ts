// Reports: balance history, lots, the credits report at cost and the CSV exports, read from the replica when
// DATABASE_READ_URL is set.
export { default as reportRoutes } from './reports.route.ts';
export { createReportsService, type ReportsService } from './reports.service.ts';
export { costCheckSql } from './reports.sql.ts';
