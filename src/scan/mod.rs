//! Local scanner (being written).
