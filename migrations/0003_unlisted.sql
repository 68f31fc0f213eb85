-- Host entries dcsync made (uploads, copies, folders) that no listing has
-- shown yet. While an id is here, its vanishing from a listing proves
-- nothing: the folder it went into may have been trashed before it arrived,
-- so nobody deleted it. Ids leave once a listing shows them.
CREATE TABLE unlisted (
    remote_id INTEGER PRIMARY KEY NOT NULL
) WITHOUT ROWID;
