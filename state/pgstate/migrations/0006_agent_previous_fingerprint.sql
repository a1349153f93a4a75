-- The fingerprint of the certificate an agent's last renewal replaced: its
-- connections made before the renewal still present it until it expires.
ALTER TABLE agent ADD COLUMN previous_fingerprint text;
