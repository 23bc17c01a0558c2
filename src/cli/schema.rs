//! `intercept schema`: the policy file's JSON Schema, as shipped in `schema/policy.schema.json`.

use std::io::Write;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Use it in an editor with the YAML language server (VS Code's YAML extension, and others):\n  # yaml-language-server: $schema=./node_modules/@policylayer/intercept/schema/policy.schema.json\nas the first line of the policy file. See docs/policy.md."
)]
pub struct Args {}

pub fn run(_: &Args, out: &mut dyn Write) -> anyhow::Result<i32> {
    out.write_all(crate::policy::schema::policy_schema_text().as_bytes())?;
    Ok(0)
}
