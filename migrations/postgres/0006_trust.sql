-- Postgres dialect of ../0006_trust.sql (the same statements).
-- Trust (issue 12): accounts that can be disabled and demo accounts that can be found again,
-- login tokens that can be revoked and purged, conversations linked by a verified customer
-- identity only, and tickets listed by status.

-- An account that may no longer log in (`frontdesk agent disable`); its tokens are deleted too.
ALTER TABLE agents ADD COLUMN disabled_at BIGINT;
-- Created by `agents.demo_agent` (password `demo`): removed at start-up when the setting is off.
ALTER TABLE agents ADD COLUMN demo BOOLEAN NOT NULL DEFAULT FALSE;
-- Accounts made before this migration by `agents.demo_agent` had no mark: they are these two.
UPDATE agents SET demo = TRUE WHERE email IN ('demo@example.com', 'editor@example.com');
-- When every token of the account was last revoked (logout everywhere, password change,
-- disable): a running server closes the account's open sockets when it sees this move.
ALTER TABLE agents ADD COLUMN tokens_revoked_at BIGINT;

CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id);
CREATE INDEX agent_tokens_expiry ON agent_tokens (expires_at);

-- The customer's identity as the operator's site signed it (HMAC with identity.secret):
-- `id:<user id>` or `email:<address>`. Only conversations with a verified identity are linked to
-- each other; what a page merely claims (visitor.email) never is.
ALTER TABLE conversations ADD COLUMN customer_key TEXT;
CREATE INDEX conversations_customer ON conversations (customer_key, created_at)
    WHERE customer_key IS NOT NULL;

CREATE INDEX tickets_status ON tickets (status, id);
