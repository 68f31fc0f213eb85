//! Shell completions and the man page (being written).
