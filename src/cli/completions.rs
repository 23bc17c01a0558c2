//! `intercept completions SHELL`: a completion script for the shell, from the same clap
//! command the binary parses with, so it always knows every subcommand and option.

use std::io::Write;

use clap_complete::Shell;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Install:\n  bash:        intercept completions bash > ~/.local/share/bash-completion/completions/intercept\n  zsh:         intercept completions zsh > ~/.zfunc/_intercept   (with fpath+=~/.zfunc before compinit in ~/.zshrc)\n  fish:        intercept completions fish > ~/.config/fish/completions/intercept.fish\n  PowerShell:  intercept completions powershell | Out-String | Invoke-Expression   (in $PROFILE)\n  elvish:      eval (intercept completions elvish | slurp)   (in ~/.config/elvish/rc.elv)"
)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut super::command(), "intercept", &mut script);
    out.write_all(&script)?;
    Ok(0)
}
