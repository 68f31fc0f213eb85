//! State database (being written).
