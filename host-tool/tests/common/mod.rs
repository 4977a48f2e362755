//! Helpers shared by the integration tests (and, by path, the fuzz targets).

pub mod builders;
pub mod targets;
