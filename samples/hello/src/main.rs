//! The hello sample: shows what a NetMind job sees (arguments, environment, inputs, its bundle's
//! assets) and writes a greeting.
//!
//! Run with: `netmind run samples/hello --input DIR -- ARGS`

use std::process::ExitCode;

use serde_json::json;

fn main() -> ExitCode {
    netmind_sdk::run(|| {
        let args = netmind_sdk::args();
        println!("args ({}):", args.len());
        for arg in &args {
            println!("  {arg}");
        }

        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        vars.sort();
        println!("env ({}):", vars.len());
        for (key, value) in &vars {
            println!("  {key}={value}");
        }

        let inputs = netmind_sdk::inputs()?;
        let bytes: u64 = inputs.iter().map(|input| input.size).sum();
        println!("inputs ({}, {bytes} bytes):", inputs.len());
        for input in &inputs {
            println!("  {} ({} bytes)", input.name, input.size);
        }

        // The bundle's own assets, read-only, when it has any.
        let assets = list_assets();
        if !assets.is_empty() {
            println!("assets ({}):", assets.len());
            for asset in &assets {
                println!("  {asset}");
            }
        }

        let greeting = greeting(&args).unwrap_or_else(|| "hello".to_owned());
        let text = format!(
            "{greeting}, NetMind! I saw {} input file(s).\n",
            inputs.len()
        );
        print!("{text}");
        netmind_sdk::write_output("hello.txt", text.as_bytes())?;
        netmind_sdk::progress(1, 1, "wrote hello.txt");

        Ok(json!({
            "greeting": greeting,
            "args": args.len(),
            "env": vars.len(),
            "inputs": inputs.len(),
            "input_bytes": bytes,
            "assets": assets.len(),
        }))
    })
}

/// The files directly under `/assets`, sorted (empty if there is none).
fn list_assets() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/assets")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `--greeting G` (or `--greeting=G`) from the arguments, else `$GREETING`.
fn greeting(args: &[String]) -> Option<String> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--greeting" {
            return iter.next().cloned();
        }
        if let Some(value) = arg.strip_prefix("--greeting=") {
            return Some(value.to_owned());
        }
    }
    netmind_sdk::env("GREETING")
}
