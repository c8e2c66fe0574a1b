-- Plans, quotas, metered prices, rate limits and key lifecycle.

-- A plan's definition (JSON, see tenancy::plans::Plan); absent = the built-in default of that id.
CREATE TABLE plans (
    id          TEXT PRIMARY KEY CHECK (id IN ('free', 'pro', 'enterprise')),
    spec        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- A tenant's overrides of its plan, as a JSON merge patch (RFC 7386) over the plan's JSON.
ALTER TABLE tenants ADD COLUMN plan_overrides TEXT;

-- Money is integer micro-units of the plan's currency (1 USD = 1 000 000): a 10 % discount of a
-- 0.02 USD unit is exact, and invoices round once, at the total, to minor units (cents).
ALTER TABLE usage_events RENAME COLUMN unit_price_minor TO unit_price_micros;
ALTER TABLE usage_events ADD COLUMN list_price_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN discount_percent INTEGER NOT NULL DEFAULT 0;
-- The calendar month (UTC, 'YYYY-MM') whose quota the unit counted against.
ALTER TABLE usage_events ADD COLUMN period TEXT NOT NULL DEFAULT '';
-- Beyond the quota on a soft-quota plan.
ALTER TABLE usage_events ADD COLUMN overage INTEGER NOT NULL DEFAULT 0;
UPDATE usage_events SET period = strftime('%Y-%m', at, 'unixepoch');
CREATE INDEX usage_events_tenant_period ON usage_events(tenant_id, period, module);

-- Units per tenant, module and month, written in the transaction of each usage event: `used`
-- (every unit; quotas) and `billed` (units billed; volume tiers).
CREATE TABLE usage_counters (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    module     TEXT NOT NULL,
    period     TEXT NOT NULL,
    used       INTEGER NOT NULL,
    billed     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, module, period)
);
INSERT INTO usage_counters (tenant_id, module, period, used, billed)
    SELECT tenant_id, module, period, COUNT(*), SUM(billed) FROM usage_events
    GROUP BY tenant_id, module, period;

-- Quota thresholds crossed (80, 100 percent): the key makes each one fire once per period.
CREATE TABLE quota_alerts (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    module     TEXT NOT NULL,
    period     TEXT NOT NULL,
    threshold  INTEGER NOT NULL,
    used       INTEGER NOT NULL,
    quota      INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, module, period, threshold)
);

-- Keys: which modules they may call (JSON array; NULL = all), sandbox or live, rotation overlap
-- (the previous secret verifies until prev_valid_until) and when they were last used.
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
ALTER TABLE api_keys ADD COLUMN environment TEXT NOT NULL DEFAULT 'live'
    CHECK (environment IN ('sandbox', 'live'));
ALTER TABLE api_keys ADD COLUMN prev_secret_enc BLOB;
ALTER TABLE api_keys ADD COLUMN prev_valid_until INTEGER;
ALTER TABLE api_keys ADD COLUMN rotated_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
UPDATE api_keys SET environment = 'sandbox'
    WHERE tenant_id IN (SELECT id FROM tenants WHERE plan = 'free');
