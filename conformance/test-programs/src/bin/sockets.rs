//! Tries to use the network: `sockets [ADDR]` (default `127.0.0.1:80`) connects to `ADDR` over TCP,
//! listens on TCP and UDP, sends a UDP datagram to `ADDR` and resolves `localhost`. Each attempt prints
//! `denied: <what>: <error>` or `LEAK: <what>: <detail>`.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/sockets.wasm -- 127.0.0.1:8080`

use std::{
    net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket},
    time::Duration,
};

use netmind_test_programs::report;

fn main() {
    let arg = netmind_test_programs::first_arg().unwrap_or_else(|| "127.0.0.1:80".to_owned());
    let addr: SocketAddr = match arg.parse() {
        Ok(addr) => addr,
        Err(error) => {
            println!("usage: sockets [IP:PORT]: `{arg}`: {error}");
            std::process::exit(2);
        }
    };
    let mut leaks = 0;

    leaks += usize::from(report(
        &format!("tcp connect {addr}"),
        TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .and_then(|stream| stream.local_addr())
            .map(|local| format!("connected from {local}")),
    ));

    leaks += usize::from(report(
        "tcp listen 127.0.0.1:0",
        TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|local| format!("listening on {local}")),
    ));

    leaks += usize::from(report(
        "udp bind 127.0.0.1:0",
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|socket| socket.local_addr())
            .map(|local| format!("bound {local}")),
    ));

    leaks += usize::from(report(
        &format!("udp send to {addr}"),
        UdpSocket::bind("0.0.0.0:0")
            .and_then(|socket| socket.send_to(b"netmind", addr))
            .map(|sent| format!("sent {sent} bytes")),
    ));

    leaks += usize::from(report(
        "dns lookup localhost:80",
        "localhost:80".to_socket_addrs().map(|addrs| {
            let addrs: Vec<String> = addrs.map(|a| a.to_string()).collect();
            format!("resolved to {}", addrs.join(" "))
        }),
    ));

    println!("done: {leaks} leak(s)");
}
