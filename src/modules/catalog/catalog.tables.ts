import type { Generated } from 'kysely';

export interface CreditPackagesTable {
  id: string;
  name: string;
  description: string | null;
  credits: number;
  price: number;
  currency: string;
  is_active: Generated<boolean>;
  stripe_price_id: string | null;
  credit_expiry_days: number | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface PackageRevenuecatProductsTable {
  product_id: string;
  package_id: string;
}
