//! The policy file argument, `-c`/`--config`/`--policy FILE`, defined once for the proxy and
//! every subcommand that reads a policy, and `INTERCEPT_POLICY`, read in its place.
//!
//! The variable is not clap's `env`: clap takes a variable set to an empty value as the option
//! given without one, and then every command line fails, even those that take no policy
//! (`INTERCEPT_POLICY= intercept completions bash`). Here an empty value is unset.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches};

/// The environment variable read when no policy is given with `-c`/`--config`/`--policy`.
pub const POLICY_ENV: &str = "INTERCEPT_POLICY";

/// The argument's id; `separator` knows the policy option by it.
pub const ID: &str = "config";

/// The policy file named by `INTERCEPT_POLICY`: none when it is unset or empty.
pub fn from_env() -> Option<PathBuf> {
    std::env::var_os(POLICY_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// `-c FILE`: given once (`REPEATED = false`: the proxy, `check`, `replay`), or any number of
/// times (`validate`). Flatten it into a command's arguments with `#[command(flatten)]`.
#[derive(Debug, Default, Clone)]
pub struct PolicyArg<const REPEATED: bool = false> {
    given: Vec<PathBuf>,
}

impl<const REPEATED: bool> PolicyArg<REPEATED> {
    fn arg() -> Arg {
        let arg = Arg::new(ID)
            .short('c')
            .long("config")
            .visible_alias("policy")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf));
        if REPEATED {
            arg.action(ArgAction::Append).help(format!(
                "Policy file to check (may be repeated). With no file given, the one named by {POLICY_ENV}"
            ))
        } else {
            // Written as clap writes the variables it reads itself.
            arg.action(ArgAction::Set)
                .help(format!("Policy file (YAML) [env: {POLICY_ENV}]"))
        }
    }
}

impl PolicyArg<false> {
    /// The policy file: the one given, else `INTERCEPT_POLICY`'s.
    pub fn file(&self) -> Option<PathBuf> {
        self.given.first().cloned().or_else(from_env)
    }

    /// The policy file, for a command that cannot run without one.
    pub fn required(&self) -> anyhow::Result<PathBuf> {
        self.file().ok_or_else(no_policy)
    }
}

impl PolicyArg<true> {
    /// The files given with `-c`, then `more` (positional files); or, when neither names one,
    /// `INTERCEPT_POLICY`'s. A file given is never joined by one the caller did not mention.
    pub fn files(&self, more: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
        let files: Vec<PathBuf> = self.given.iter().chain(more).cloned().collect();
        if !files.is_empty() {
            return Ok(files);
        }
        from_env().map(|file| vec![file]).ok_or_else(no_policy)
    }
}

fn no_policy() -> anyhow::Error {
    anyhow::anyhow!("no policy file given: use -c FILE (or set {POLICY_ENV})")
}

impl<const REPEATED: bool> clap::FromArgMatches for PolicyArg<REPEATED> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(PolicyArg {
            given: matches
                .get_many::<PathBuf>(ID)
                .map(|files| files.cloned().collect())
                .unwrap_or_default(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if matches.contains_id(ID) {
            *self = Self::from_arg_matches(matches)?;
        }
        Ok(())
    }
}

impl<const REPEATED: bool> clap::Args for PolicyArg<REPEATED> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.arg(Self::arg())
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.arg(Self::arg())
    }
}
