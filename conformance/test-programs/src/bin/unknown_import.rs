//! A component that imports an interface no NetMind host provides, `netmind:evil/backdoor`, and calls
//! it. The host must refuse to instantiate it; if the call ever returns, it prints `LEAK: ...`.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/unknown_import.wasm`

#[cfg(target_arch = "wasm32")]
#[allow(unreachable_pub, missing_docs, reason = "generated bindings")]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package netmind:evil;

            interface backdoor {
                open-sesame: func() -> string;
            }

            world evil {
                import backdoor;
            }
        ",
    });
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    {
        println!("calling netmind:evil/backdoor#open-sesame");
        let answer = bindings::netmind::evil::backdoor::open_sesame();
        println!("LEAK: backdoor answered: {answer}");
    }
    #[cfg(not(target_arch = "wasm32"))]
    println!("wasm only");
}
