-- Off-host copies of per-app database backups (serve/worker
-- --backup-s3-url): after a backup succeeds its host uploads the file to the
-- S3-compatible target. remote is the object's key in the bucket (set once
-- the upload succeeded), remote_status '' (no target), uploading, uploaded
-- or failed, remote_error why it failed.
ALTER TABLE db_backups ADD COLUMN remote TEXT NOT NULL DEFAULT '';
ALTER TABLE db_backups ADD COLUMN remote_status TEXT NOT NULL DEFAULT '';
ALTER TABLE db_backups ADD COLUMN remote_error TEXT NOT NULL DEFAULT '';
