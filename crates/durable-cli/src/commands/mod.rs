//! One folder per command.

pub(crate) mod bench;
