//! `intercept schema`: the policy file's JSON Schema, as shipped in `schema/policy.schema.json`;
//! with `--gateway`, the gateway file's, as shipped in `schema/gateway.schema.json`.

use std::io::Write;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Use it in an editor with the YAML language server (VS Code's YAML extension, and others):\n  # yaml-language-server: $schema=./node_modules/@policylayer/intercept/schema/policy.schema.json\nas the first line of the policy file. See docs/policy.md.\nWith --gateway: schema/gateway.schema.json, for gateway files (docs/gateway-file.md)."
)]
pub struct Args {
    /// Print the schema of the gateway file (`intercept serve FILE`) instead of the policy's.
    #[arg(long)]
    gateway: bool,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<i32> {
    let text = if args.gateway {
        crate::gateway::config::schema::gateway_schema_text()
    } else {
        crate::policy::schema::policy_schema_text()
    };
    out.write_all(text.as_bytes())?;
    Ok(0)
}
