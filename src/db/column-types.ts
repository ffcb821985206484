import type { ColumnType } from 'kysely';

/** A timestamptz column that takes a Date or an ISO string on insert and update. */
export type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
