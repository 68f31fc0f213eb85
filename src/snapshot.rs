//! Remote snapshot (being written).
