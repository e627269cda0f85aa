//! One folder per command.

pub(crate) mod bench;
pub(crate) mod workflows;
