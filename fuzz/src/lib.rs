//! The checks behind the fuzz targets, in a module of their own so that the main crate's
//! regression test (`tests/it/fuzz_regressions.rs`) runs every saved input through
//! exactly the same code.
pub mod checks;
