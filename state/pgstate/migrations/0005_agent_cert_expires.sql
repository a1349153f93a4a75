-- The not-after of each agent's certificate, shown to administrators so
-- that an agent is enrolled again before it expires. NULL for agents
-- enrolled before it was kept: their certificate's validity is then
-- derived from the enrollment time.
ALTER TABLE agent ADD COLUMN cert_expires timestamptz;
