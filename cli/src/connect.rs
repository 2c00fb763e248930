#[derive(clap::Args)]
pub struct ConnectArgs {}
pub async fn run(
    _d: &crate::context::Deployment,
    _a: ConnectArgs,
    _j: bool,
) -> crate::context::CliResult<crate::context::Output> {
    todo!()
}
