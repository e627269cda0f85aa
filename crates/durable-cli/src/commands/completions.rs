//! `durable completions SHELL`: the shell completion script on stdout
//! (clap_complete), e.g. `durable completions bash > /etc/bash_completion.d/durable`.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::error::Result;

/// `durable completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

/// Run `durable completions`.
///
/// # Errors
/// None: the script is written to stdout.
pub(crate) fn run(args: CompletionsArgs) -> Result<()> {
    let mut command = crate::Cli::command();
    clap_complete::generate(args.shell, &mut command, "durable", &mut std::io::stdout());
    Ok(())
}
