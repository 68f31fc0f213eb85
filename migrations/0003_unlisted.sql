-- Host entries dcsync made (uploads, copies, folders) or moved that no
-- listing has shown yet. While an entry is here, its vanishing from a
-- listing proves nothing: the folder it went into may have been trashed
-- before it arrived, so nobody deleted it. Entries leave once a listing
-- shows them. Files and folders have separate ids on the host.
CREATE TABLE unlisted (
    kind      TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    remote_id INTEGER NOT NULL,
    PRIMARY KEY (kind, remote_id)
) WITHOUT ROWID;
