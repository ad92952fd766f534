//! Prints every environment variable it sees as `env K=V`. `env_leak NAME` then checks for the variable
//! `NAME` (one the host has and must not pass on): `LEAK: env NAME=...` if it is visible,
//! `denied: env NAME: not set` if not.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/env_leak.wasm -- HOME`

fn main() {
    let mut vars: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    vars.sort();
    for (key, value) in &vars {
        println!("env {key}={value}");
    }
    if let Some(name) = netmind_test_programs::first_arg() {
        match vars.iter().find(|(key, _)| *key == name) {
            Some((_, value)) => println!("LEAK: env {name}={value}"),
            None => println!("denied: env {name}: not set"),
        }
    }
}
