-- What users buy (packages) and every attempt to buy one (purchases).
-- created_at is kept to the millisecond: it is a keyset-pagination key that round-trips through a JS Date
-- and a cursor, and a microsecond part would make rows sharing the page's last millisecond go missing.
create table credit_packages (
  id text primary key,
  name text not null check (length(name) between 1 and 200),
  description text,
  credits bigint not null check (credits > 0),
  price bigint not null check (price >= 0),
  currency text not null check (currency ~ '^[a-z]{3}$'),
  is_active boolean not null default true,
  stripe_price_id text,
  credit_expiry_days integer check (credit_expiry_days between 1 and 3650),
  created_at timestamptz(3) not null default now(),
  updated_at timestamptz not null default now()
);
create index credit_packages_page on credit_packages (created_at desc, id desc);

-- A store product id maps to at most one package: the primary key is the uniqueness rule.
create table package_revenuecat_products (
  product_id text primary key,
  package_id text not null references credit_packages (id) on delete cascade
);
create index package_revenuecat_products_package on package_revenuecat_products (package_id);

-- A purchase copies credits, price, currency and expiry from the package when it is made,
-- so later edits of the package change nothing already sold.
create table purchases (
  id text primary key,
  user_id text not null,
  package_id text not null references credit_packages (id),
  provider text not null check (provider in ('stripe', 'revenuecat', 'dev')),
  provider_ref text,
  status text not null check (status in
    ('pending', 'completed', 'failed', 'expired', 'refunded', 'partially_refunded', 'disputed')),
  credits bigint not null check (credits > 0),
  price bigint not null check (price >= 0),
  currency text not null,
  credit_expiry_days integer,
  credits_reversed bigint not null default 0 check (credits_reversed >= 0),
  credits_disputed bigint not null default 0 check (credits_disputed >= 0),
  stripe_payment_intent_id text,
  created_at timestamptz(3) not null default now(),
  completed_at timestamptz,
  updated_at timestamptz not null default now()
);
create unique index purchases_provider_ref on purchases (provider, provider_ref) where provider_ref is not null;
create index purchases_user_page on purchases (user_id, created_at desc, id desc);
create index purchases_payment_intent on purchases (stripe_payment_intent_id)
  where stripe_payment_intent_id is not null;
