//! One module per subcommand.

pub mod ctl;
pub mod proxy;
