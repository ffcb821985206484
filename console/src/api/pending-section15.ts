/**
 * CONTRACT section 15 (reports and exports) by hand, until its routes are in openapi.yaml: the same shapes
 * openapi-typescript generates, so the screens are typed now and this file is deleted when the routes land
 * (then `paths` comes from openapi.gen.ts alone and the type checker says what changed).
 */
import type { components, paths as generated } from './openapi.gen.ts';

type Schemas = components['schemas'];
type Ok<D> = { isSuccess: true; statusCode: number; data: D; errors: string[]; timestamp: string };
type Page<T> = { items: T[]; nextCursor: string | null };
type Json<T> = { headers: { [name: string]: unknown }; content: { 'application/json': T } };
type Header = { 'Accept-Language'?: string };
type Errors = {
  400: Json<Schemas['ValidationError']>;
  401: Json<Schemas['UnauthorizedError']>;
  403: Json<Schemas['ForbiddenError']>;
  404: Json<Schemas['NotFoundError']>;
};
type Get<Query, Path, Data> = {
  parameters: { query?: Query; header?: Header; path: Path; cookie?: never };
  requestBody?: never;
  responses: { 200: Json<Ok<Data>> } & Errors;
};
type GetAll<Query, Data> = {
  parameters: { query?: Query; header?: Header; path?: never; cookie?: never };
  requestBody?: never;
  responses: { 200: Json<Ok<Data>> } & Errors;
};
type Only<G> = {
  parameters: { query?: never; header?: never; path?: never; cookie?: never };
  get: G;
  put?: never;
  post?: never;
  delete?: never;
  options?: never;
  head?: never;
  patch?: never;
  trace?: never;
};

type Paging = { limit?: number; cursor?: string };
type LedgerFilter = Paging & { type?: string; from?: string; to?: string };
type UserPath = { userId: string };

export interface Account {
  userId: string;
  balance: number;
  available: number;
  held: number;
  createdAt: string;
  updatedAt: string;
}

export interface Lot {
  id: string;
  entryId: string;
  purchaseId: string | null;
  source: string;
  amount: number;
  remaining: number;
  held: number;
  expiresAt: string | null;
  status: 'active' | 'spent' | 'expired';
  price: number | null;
  currency: string | null;
  createdAt: string;
}

export interface BalanceHistory {
  userId: string;
  interval: 'hour' | 'day' | 'week' | 'month';
  items: { at: string; balance: number; credited: number; debited: number }[];
}

export interface CreditsReport {
  interval: 'day' | 'week' | 'month';
  items: {
    at: string;
    currency: string | null;
    credits: {
      granted: number;
      debited: number;
      debitReversed: number;
      clawedBack: number;
      expired: number;
      outstanding: number;
    };
    money: { sold: number; recognized: number; breakage: number; clawedBack: number; deferred: number };
  }[];
}

export interface Section15Paths {
  '/api/v1/accounts': Only<GetAll<Paging & { prefix?: string }, Page<Account>>>;
  '/api/v1/accounts/{userId}/ledger': Only<
    Get<LedgerFilter & { expand?: 'purchase' }, UserPath, Page<Schemas['LedgerEntry']>>
  >;
  '/api/v1/ledger': Only<GetAll<LedgerFilter & { userId?: string }, Page<Schemas['LedgerEntry']>>>;
  '/api/v1/accounts/{userId}/balance-history': Only<
    Get<{ from?: string; to?: string; interval?: BalanceHistory['interval'] }, UserPath, BalanceHistory>
  >;
  '/api/v1/accounts/{userId}/lots': Only<Get<Paging & { status?: Lot['status'] }, UserPath, Page<Lot>>>;
  '/api/v1/reports/credits': Only<
    GetAll<{ from?: string; to?: string; interval?: CreditsReport['interval'] }, CreditsReport>
  >;
}

export type paths = Omit<generated, keyof Section15Paths> & Section15Paths;
