#[derive(clap::Args)]
pub struct SlideshowArgs {}
pub async fn run(
    _d: &crate::context::Deployment,
    _a: SlideshowArgs,
    _j: bool,
) -> crate::context::CliResult<crate::context::Output> {
    todo!()
}
