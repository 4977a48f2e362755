//! Shared helpers for the accuracy suite: locating fixtures and comparing outputs.
