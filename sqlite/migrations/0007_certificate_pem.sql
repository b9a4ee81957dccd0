-- The certificate's PEM (chain and key) in the state too, so the builder of
-- the app's host -- a worker on another machine included -- writes the file
-- its nginx reads. Certificates recorded before this have none: their file
-- under the conductor's data dir is used as before.
ALTER TABLE certificates ADD COLUMN pem BLOB;
