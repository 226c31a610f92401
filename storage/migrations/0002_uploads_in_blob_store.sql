-- Upload sessions now live in the blob store alone (their staging file is
-- the session: it survives restarts and its mtime is its last activity).
DROP TABLE uploads;
