-- Which side the kept copy's content came from: 'local' (the local version
-- was renamed aside, or our upload was kept as a copy on the host) or
-- 'remote' (backup mode kept the host's version aside, on the host).
-- Conflicts recorded before this migration were all local copies.
ALTER TABLE conflicts ADD COLUMN copy_from TEXT NOT NULL DEFAULT 'local';
