//! One module per subcommand.

pub mod controller;
pub mod ctl;
pub mod lint;
pub mod proxy;
