-- A digest of each release's migration files: a deploy whose migration
-- files are the serving release's starts its web processes beside
-- collectstatic, before migrate's plan is known (builder/speculative.go).
ALTER TABLE releases ADD COLUMN migrations TEXT NOT NULL DEFAULT '';
