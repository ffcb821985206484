-- API keys for backend services and operators. Only a SHA-256 hash of the key is stored; the key is shown once.
create table api_keys (
  id text primary key,
  name text not null check (length(name) between 1 and 200),
  prefix text not null,
  key_hash text not null unique,
  scopes text[] not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_page on api_keys (created_at desc, id desc);
