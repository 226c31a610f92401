-- Each account's credential generation: a random value, new when the
-- account is made, its password changed or its secret rotated. Refresh
-- tokens carry the generation they were issued against and are refused once
-- it changed. Accounts made before this migration start at '' (the tokens
-- of before carry none, and are judged by their issue time).
ALTER TABLE users ADD COLUMN credential_gen TEXT NOT NULL DEFAULT '';
ALTER TABLE robots ADD COLUMN credential_gen TEXT NOT NULL DEFAULT '';
