//! The contract suite's app (`tests/it/contract`), on whichever provider the
//! environment names: the suite runs this binary as each function's
//! bootstrap on the AWS emulation.

#![forbid(unsafe_code)]

mod app;

#[tokio::main]
async fn main() -> Result<(), cloudfn::Error> {
    cloudfn::run(app::app()).await
}
